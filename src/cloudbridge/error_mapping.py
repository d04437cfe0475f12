"""The two pieces every cloud plugin's error translation shares (imports only the standard library).

A plugin writes one ``translate(exc, action, ...)`` that maps its SDK's exceptions to
:mod:`cloudbridge.errors` types; :func:`translating` turns it into the ``with`` block its code
uses, and :func:`one_line` shortens a service's message for that one line::

    def gcp_errors(action: str, *, resource: str | None = None) -> AbstractContextManager[None]:
        return translating(lambda exc: translate(exc, action, resource=resource))

    with gcp_errors("upload object", resource=uri):
        blob.upload_from_file(...)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cloudbridge.errors import CloudbridgeError

__all__ = ["one_line", "translating"]


def one_line(message: str | None, limit: int = 300, *, strip_tags: bool = False) -> str:
    """``message`` as one short line: whitespace runs collapsed (HTML tags too, with ``strip_tags``),
    at most ``limit`` characters."""
    text = message or ""
    if strip_tags:
        text = re.sub(r"<[^>]+>", " ", text)
    text = re.sub(r"\s+", " ", text).strip()
    return text[: limit - 3] + "..." if len(text) > limit else text


@contextmanager
def translating(translate: Callable[[Exception], BaseException]) -> Iterator[None]:
    """Run a block of SDK calls; re-raise an SDK exception as ``translate(exc)`` ``from`` it.

    cloudbridge's own errors pass through unchanged, and so does an exception that ``translate``
    returns as it is (a bug is not disguised as a cloud error).
    """
    try:
        yield
    except CloudbridgeError:
        raise
    except Exception as exc:
        translated = translate(exc)
        if translated is exc:
            raise
        raise translated from exc
