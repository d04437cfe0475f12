"""Sync between ``gs://`` (gcp-storage-emulator) and ``s3://`` (moto server) works unchanged, both ways.

(The whole SyncConformance suite runs for gs<->local and gs<->gs in test_gcp_storage_conformance.py; across
the two clouds a round trip and an idempotent re-sync keep this file under half a minute.)"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cloudbridge.testing.emulators import MotoServer, moto_available, moto_server
from cloudbridge.testing.sync import SAMPLE, put_tree, read_tree
from cloudbridge.transfers.sync import sync


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    if not moto_available():
        pytest.skip("moto[server] is not installed")
    with moto_server() as server:
        yield server


@pytest.fixture
def s3_bucket(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    name = f"cb-sync-{uuid.uuid4().hex[:10]}"
    moto.client("s3").create_bucket(Bucket=name)
    return name


def test_gs_to_s3_and_back(bucket: str, gcs_env: Any, s3_bucket: str) -> None:
    source = f"gs://{bucket}/src-{uuid.uuid4().hex[:8]}"
    put_tree(source, SAMPLE)
    middle = f"s3://{s3_bucket}/mid-{uuid.uuid4().hex[:8]}"
    first = sync(source, middle, progress=False)
    assert sorted(first.copied) == sorted(SAMPLE) and not first.failures
    assert read_tree(middle) == SAMPLE
    assert sync(source, middle, progress=False).copied == [], "unchanged objects are not copied again"
    back = f"gs://{bucket}/back-{uuid.uuid4().hex[:8]}"
    assert sorted(sync(middle, back, progress=False).copied) == sorted(SAMPLE)
    assert read_tree(back) == SAMPLE
