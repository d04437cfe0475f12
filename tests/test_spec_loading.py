"""YAML loading: errors name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudbridge.errors import InvalidSpec
from cloudbridge.spec_loading import field_line, load_yaml_with_lines
from cloudbridge.specs import load_endpoint_spec, load_job_spec

GOOD = """\
name: sst2
provider: local
run: python train.py
resources:
  accelerators: "A100:8"
  nodes: 2
  cpus: 8+
inputs:
  data: ./data
"""


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lines_of_every_field(tmp_path: Path) -> None:
    data, lines = load_yaml_with_lines(write(tmp_path, GOOD))
    assert data["resources"]["nodes"] == 2
    assert lines[("name",)] == 1
    assert lines[("resources", "nodes")] == 6
    assert lines[("inputs", "data")] == 9
    assert field_line(lines, ("resources", "nodes", "deeper")) == 6
    assert field_line(None, ("x",)) is None


def test_good_spec_loads(tmp_path: Path) -> None:
    spec = load_job_spec(write(tmp_path, GOOD))
    assert spec.resources.accelerator_count == 8
    assert spec.source == str(tmp_path / "job.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("nodes: 2", "nodes: -1"), ":6: resources.nodes: "),
        (GOOD.replace("cpus: 8+", "cpus: many"), ":7: resources.cpus: "),
        (GOOD.replace("  nodes: 2", "  nodse: 2"), ":6: resources.nodse: unknown field (did you mean 'nodes'?)"),
        (GOOD + "max_runtime: 4h\n", ":10: max_runtime: unknown field"),
        (GOOD.replace('"A100:8"', '"A100:eight"'), ":5: resources.accelerators: "),
        ("name: [unclosed\n", "malformed YAML"),
        ("- a\n- b\n", "expected a mapping of fields at the top level, found list"),
        ("", "the file is empty"),
    ],
)
def test_errors_name_file_line_field(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InvalidSpec) as info:
        load_job_spec(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidSpec, match="file not found"):
        load_job_spec(tmp_path / "nope.yaml")
    with pytest.raises(InvalidSpec, match="is a directory"):
        load_job_spec(tmp_path)


def test_malformed_yaml_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: a\nrun: b\nresources: {nodes: 2\n")
    with pytest.raises(InvalidSpec) as info:
        load_job_spec(path)
    assert info.value.line is not None and info.value.line >= 3


def test_endpoint_spec_errors(tmp_path: Path) -> None:
    path = write(tmp_path, "name: ep\nmodel: ./m\nmax_replicas: 0\n", "ep.yaml")
    with pytest.raises(InvalidSpec) as info:
        load_endpoint_spec(path)
    assert str(info.value).startswith(f"{path}:3: max_replicas: ")
