"""The example provider ``cloudbridge-dirstore`` (examples/custom-provider), loaded by entry point,
passes the conformance suite and works through the CLI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_dirstore import install_dirstore

from cloudbridge.testing.compute import ComputeConformance
from cloudbridge.testing.storage import StorageConformance


@pytest.fixture
def dirstore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The dirstore provider as cloudbridge builds it (entry point -> ProviderInfo -> factory)."""
    install_dirstore(monkeypatch, tmp_path)
    monkeypatch.setenv("CLOUDBRIDGE_DIRSTORE_ROOT", str(tmp_path / "dirstore-root"))
    from cloudbridge.backends import get_provider

    provider = get_provider("dirstore")
    provider.storage.create_bucket("bucket")
    return provider


class TestDirstoreStorageConformance(StorageConformance):
    """The shared storage suite, on dir://bucket/<fresh prefix>."""

    @pytest.fixture
    def storage(self, dirstore):
        return dirstore.storage

    @pytest.fixture
    def base_uri(self, storage) -> str:
        return f"dir://bucket/conformance-{uuid.uuid4().hex[:8]}"


class TestDirstoreComputeConformance(ComputeConformance):
    """The shared compute suite: real processes, logs, follow, cancel."""

    provider_name = "dirstore"

    @pytest.fixture
    def compute(self, dirstore):
        return dirstore.compute


def test_registered_by_entry_point_without_import(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths = install_dirstore(monkeypatch, tmp_path)
    probe = (
        "import sys, json; from cloudbridge.plugins import provider_infos; i = provider_infos()['dirstore'];"
        "print(json.dumps([i.distribution, sorted(i.capabilities), list(i.schemes),"
        " 'cloudbridge_dirstore.storage' in sys.modules, 'cloudbridge_dirstore.provider' in sys.modules]))"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == ["cloudbridge-dirstore", ["compute", "storage"], ["dir"], False, False]
    listing = run_cli("providers", "--json", paths=paths)
    rows = {row["name"]: row for row in json.loads(listing.stdout)}
    assert rows["dirstore"]["installed"] and rows["dirstore"]["schemes"] == ["dir"]


def test_storage_through_cb_storage(dirstore, tmp_path: Path) -> None:
    import cloudbridge as cb

    store = cb.storage("dir://bucket/data")  # scoped to that prefix, served by the plugin's storage
    assert store.inner is dirstore.storage
    local = tmp_path / "f.txt"
    local.write_text("payload")
    store.upload(local, "f.txt")
    assert store.read_bytes("dir://bucket/data/f.txt") == b"payload"
    assert [i.key for i in store.list()] == ["f.txt"]


def test_missing_bucket_says_how_to_create_it(dirstore) -> None:
    from cloudbridge.errors import NotFound

    with pytest.raises(NotFound, match="bucket dir://nope does not exist.*mkdir"):
        dirstore.storage.write_bytes("dir://nope/k", b"x")


def test_check(dirstore) -> None:
    report = dirstore.check()
    assert report.ok and any(item.name == "buckets" and "bucket" in item.detail for item in report.items)


def test_cli_bad_input_for_dirstore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    paths = install_dirstore(monkeypatch, tmp_path)
    spec = tmp_path / "job.yaml"
    spec.write_text("name: g\nprovider: dirstore\nrun: echo hi\nresources: {accelerators: 'T4:1'}\n")
    assert_one_error_line(run_cli("run", str(spec), paths=paths), "CPU only")
    spec.write_text("name: g\nprovider: dirstore\nrun: echo hi\ninputs: {data: 'dir://bucket/../x'}\n")
    assert_one_error_line(run_cli("run", str(spec), paths=paths), "inputs.data", "'..'")


def test_cli_run_streams_logs_and_moves_data(dirstore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``cloudbridge run`` on dirstore: dir:// input staged, output uploaded, logs streamed, exit 0."""
    import cloudbridge as cb

    paths = install_dirstore(monkeypatch, tmp_path)
    dirstore.storage.write_bytes("dir://bucket/in/numbers.txt", b"1\n2\n3\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "sum.py").write_text(
        "import os, pathlib\n"
        "nums = pathlib.Path(os.environ['CB_INPUT_DATA'], 'numbers.txt').read_text().split()\n"
        "total = sum(map(int, nums))\n"
        "print('total', total)\n"
        "pathlib.Path(os.environ['CB_OUTPUT_RESULT'], 'total.txt').write_text(str(total))\n"
    )
    spec = work / "job.yaml"
    spec.write_text(
        "name: sum\nprovider: dirstore\nrun: python sum.py\n"
        "inputs: {data: dir://bucket/in}\noutputs: {result: dir://bucket/out}\n"
    )
    result = run_cli("run", str(spec), paths=paths)
    assert result.returncode == 0, result.stderr
    assert "total 6" in result.stdout
    assert "SUCCEEDED" in result.stderr
    assert dirstore.storage.read_bytes("dir://bucket/out/total.txt") == b"6"
    (job,) = cb.jobs(provider="dirstore")
    assert job.state.value == "SUCCEEDED" and job.id.startswith("dirstore-")

    spec.write_text("name: boom\nprovider: dirstore\nrun: echo about to fail; exit 7\n")
    failed = run_cli("run", str(spec), paths=paths)
    assert "about to fail" in failed.stdout
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    line = failed.stderr.strip().splitlines()[-1]
    assert line.startswith("error: job dirstore-") and "FAILED: the command exited with status 7" in line
    job_id = line.split()[2]
    status = run_cli("status", job_id, "--json", paths=paths)
    record = json.loads(status.stdout)
    assert record["exit_code"] == 7 and "about to fail" in record["detail"]
    assert [e["state"] for e in record["events"]][-1] == "FAILED"
