"""The compute conformance suite, run on the builtin ``local`` provider."""

from __future__ import annotations

import pytest

from cloudbridge.interfaces import Compute
from cloudbridge.testing import ComputeConformance


class TestLocalCompute(ComputeConformance):
    provider_name = "local"
    wait_timeout = 60.0

    @pytest.fixture
    def compute(self, monkeypatch: pytest.MonkeyPatch) -> Compute:
        monkeypatch.setenv("CLOUDBRIDGE_LOCAL_KILL_GRACE", "2")
        from cloudbridge.backends import get_provider

        return get_provider("local").compute
