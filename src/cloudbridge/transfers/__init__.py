"""Storage helpers shared by every provider: the sync engine, copy/list/remove operations, retries.

:func:`storage_for` returns the :class:`~cloudbridge.interfaces.Storage` of the provider that serves a
URI's scheme (``file`` paths -> the builtin ``local`` provider). The SDK's ``cb.storage(uri)`` is built on
it; code that runs inside a job (``training/``, ``serving/``, ``runtime/``) calls it directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudbridge.interfaces import Storage, URILike

__all__ = ["storage_for"]


def storage_for(uri: URILike, *, profile: str | None = None) -> Storage:
    """The :class:`Storage` that serves ``uri``'s scheme."""
    from cloudbridge.backends import get_provider
    from cloudbridge.interfaces import as_uri
    from cloudbridge.plugins import provider_for_scheme

    parsed = as_uri(uri)
    info = provider_for_scheme(parsed.scheme)
    return get_provider(info.name, profile=profile).storage
