"""Keep secrets out of stored job records.

A value is secret when its name looks secret: it contains ``KEY``, ``SECRET``, ``TOKEN``,
``PASSWORD``/``PASSWD``, ``CREDENTIAL`` or ``AUTH`` (case-insensitive). Such values are replaced by
:data:`REDACTED` wherever they appear in a spec: ``env``, ``overrides.<provider>`` and any nested
mapping. The job itself still receives the real values (the local backend hands them to its
supervisor through the process environment, never through a file or the database).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["REDACTED", "is_secret_name", "redact_mapping", "redact_spec"]

REDACTED = "***redacted***"
_SECRET_RE = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.IGNORECASE)
#: Well-known names that match the pattern but hold no secret.
_NOT_SECRET = frozenset({"TOKENIZERS_PARALLELISM", "AUTHOR"})


def is_secret_name(name: str) -> bool:
    """True when a variable or setting called ``name`` probably holds a secret."""
    return name.upper() not in _NOT_SECRET and bool(_SECRET_RE.search(name))


def redact_mapping(data: Any) -> Any:
    """A copy of ``data`` with the values of secret-looking keys replaced, recursively."""
    if isinstance(data, dict):
        return {
            key: (REDACTED if isinstance(key, str) and is_secret_name(key) and value not in (None, "") else
                  redact_mapping(value))
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact_mapping(item) for item in data]
    return data


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready job spec dict safe to store: secret ``env``/``overrides`` values redacted.

    The ``run`` command is kept as written: put secrets in ``env``, not in the command line.
    """
    safe = dict(spec)
    for section in ("env", "overrides"):
        if isinstance(safe.get(section), dict):
            safe[section] = redact_mapping(safe[section])
    return safe
