"""Managed online endpoints and deployments of the Azure ML fake (filled in with deploy support)."""

from __future__ import annotations

from typing import Any

from cloudbridge.testing.azureml.http import ApiError, Reply, Router

__all__ = ["Endpoints"]


class Endpoints:
    """Online endpoints of the fake workspace."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def routes(self, router: Router) -> None:
        """Add the online endpoint routes to ``router``."""

    def score(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        """Answer a scoring request."""
        raise ApiError(404, "NotFound", f"no endpoint serves {path}")

    def stop(self) -> None:
        """Stop every serving process."""
