"""Storage helpers shared by every provider, and ``cb.storage(uri)``.

This module is callable: ``cloudbridge.storage("s3://bucket/key")`` returns the
:class:`~cloudbridge.interfaces.Storage` of the provider that serves the URI's scheme
(``file`` paths -> the builtin ``local`` provider).
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudbridge.interfaces import Storage, URILike

__all__ = ["storage_for"]


def storage_for(uri: URILike, *, profile: str | None = None) -> Storage:
    """The :class:`Storage` that serves ``uri``'s scheme."""
    from cloudbridge.interfaces import as_uri
    from cloudbridge.plugins import provider_for_scheme
    from cloudbridge.providers import get_provider

    parsed = as_uri(uri)
    info = provider_for_scheme(parsed.scheme)
    return get_provider(info.name, profile=profile).storage


class _CallableModule(types.ModuleType):
    def __call__(self, uri: URILike, *, profile: str | None = None) -> Storage:
        """``cloudbridge.storage(uri)``: the :class:`Storage` serving ``uri``."""
        return storage_for(uri, profile=profile)


sys.modules[__name__].__class__ = _CallableModule
