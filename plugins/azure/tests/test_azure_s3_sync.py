"""Sync between ``az://`` (Azurite) and ``s3://`` (moto server) works unchanged, both ways.

(SyncConformance runs for az<->local in test_azure_storage_conformance.py; across the two clouds a round trip
and an idempotent re-sync are enough to show the engine treats both schemes alike.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from cloudbridge.testing.emulators import MotoServer, moto_available, moto_server
from cloudbridge.testing.sync import SAMPLE, put_tree, read_tree
from cloudbridge.transfers.sync import sync


@pytest.fixture(scope="module")
def moto_s3() -> Iterator[MotoServer]:
    if not moto_available():
        pytest.skip("moto[server] is not installed")
    with moto_server() as server:
        yield server


def test_az_to_s3_and_back(container: str, azure_env: object, moto_s3: MotoServer, monkeypatch) -> None:
    for name, value in moto_s3.env().items():
        monkeypatch.setenv(name, value)
    s3_bucket = f"cb-sync-{uuid.uuid4().hex[:10]}"
    moto_s3.client("s3").create_bucket(Bucket=s3_bucket)
    source = f"az://devstoreaccount1/{container}/src-{uuid.uuid4().hex[:8]}"
    put_tree(source, SAMPLE)
    middle = f"s3://{s3_bucket}/mid"
    first = sync(source, middle, progress=False)
    assert sorted(first.copied) == sorted(SAMPLE) and not first.failures
    assert read_tree(middle) == SAMPLE
    assert sync(source, middle, progress=False).copied == [], "unchanged objects are not copied again"
    back = f"az://devstoreaccount1/{container}/back"
    again = sync(middle, back, progress=False)
    assert sorted(again.copied) == sorted(SAMPLE) and not again.failures
    assert read_tree(back) == SAMPLE
