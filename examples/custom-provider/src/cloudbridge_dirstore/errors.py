"""The one place where this provider's native errors (``OSError``) become cloudbridge errors."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

from cloudbridge.errors import AuthenticationError, NotFound, StorageError, UserError

PROVIDER = "dirstore"


@contextmanager
def translate(action: str, target: str) -> Iterator[None]:
    """Run the block; turn an ``OSError`` into the matching :mod:`cloudbridge.errors` type."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise NotFound(f"cannot {action} {target}: no such object") from exc
    except IsADirectoryError as exc:
        raise UserError(f"cannot {action} {target}: it is a prefix, not an object") from exc
    except PermissionError as exc:
        raise AuthenticationError(f"cannot {action} {target}: permission denied", provider=PROVIDER) from exc
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise StorageError(f"cannot {action} {target}: no space left on device", provider=PROVIDER) from exc
        raise StorageError(f"cannot {action} {target}: {exc.strerror or exc}", provider=PROVIDER) from exc
