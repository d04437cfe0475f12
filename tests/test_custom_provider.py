"""The example provider ``cloudbridge-dirstore`` (examples/custom-provider), loaded by entry point,
passes the conformance suite and works through the CLI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_dirstore import install_dirstore

from cloudbridge.testing.storage import StorageConformance


@pytest.fixture
def dirstore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The dirstore provider as cloudbridge builds it (entry point -> ProviderInfo -> factory)."""
    install_dirstore(monkeypatch, tmp_path)
    monkeypatch.setenv("CLOUDBRIDGE_DIRSTORE_ROOT", str(tmp_path / "dirstore-root"))
    from cloudbridge.providers import get_provider

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

    store = cb.storage("dir://bucket/x")
    assert store is dirstore.storage
    local = tmp_path / "f.txt"
    local.write_text("payload")
    store.upload(local, "dir://bucket/data/f.txt")
    assert store.read_bytes("dir://bucket/data/f.txt") == b"payload"
    assert [i.key for i in store.list("dir://bucket/data")] == ["f.txt"]


def test_missing_bucket_says_how_to_create_it(dirstore) -> None:
    from cloudbridge.errors import NotFound

    with pytest.raises(NotFound, match="bucket 'nope' does not exist.*mkdir"):
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
