"""Keep secrets out of stored job records, reprs, failure details and anything else printed.

A value is secret when **its name** looks secret or **the value itself** looks like a credential:

* Names are split into words (``_``, ``-``, ``.``, spaces and camelCase humps): ``HF_TOKEN``,
  ``secretAccessKey``, ``DB_PASS``, ``SMTP_PWD``, ``GPG_PASSPHRASE``, ``AZURE_STORAGE_CONNECTION_STRING``,
  ``DATABASE_URL``, ``API_KEY``, ``apikey``. A word must match whole, so ``KEYWORDS``,
  ``MONKEY_COUNT``, ``TOKENIZERS_PARALLELISM`` and ``AUTHOR`` are not secret.
* Values shaped like well-known tokens, whatever their name: Hugging Face ``hf_…``, AWS access key ids
  ``AKIA…``/``ASIA…``, GitHub ``ghp_…``/``gho_…``/``ghs_…``/``ghu_…``/``ghr_…``/``github_pat_…``, OpenAI-style
  ``sk-…``, Slack ``xox?-…``, JSON Web Tokens (``eyJ….eyJ….…``), PEM private keys, and URLs carrying a
  password (``scheme://user:password@host``).

Such values are replaced by :data:`REDACTED` wherever they appear in a spec: ``env``,
``overrides.<provider>`` and any nested mapping. Free text (a failed job's last log lines) goes
through :func:`redact_text`. The job itself still receives the real values (the local backend hands
them to its supervisor through the process environment, never through a file or the database).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["REDACTED", "is_secret", "is_secret_name", "is_secret_value", "redact_mapping", "redact_spec",
           "redact_text", "secret_values"]

REDACTED = "***redacted***"

#: Words that make a name secret on their own.
_SECRET_WORDS = frozenset({
    "KEY", "APIKEY", "ACCESSKEY", "SECRETKEY", "PRIVATEKEY", "SECRET", "SECRETS", "TOKEN", "TOKENS",
    "AUTHTOKEN", "ACCESSTOKEN", "PASSWORD", "PASSWORDS", "PASSWD", "PASS", "PWD", "PASSPHRASE", "CREDENTIAL",
    "CREDENTIALS", "CREDS", "AUTH", "AUTHORIZATION", "COOKIE", "SESSIONID", "DSN", "SAS", "SIGNATURE",
    "CONNECTIONSTRING", "CONNSTR",
})
#: Consecutive words that make a name secret together.
_SECRET_PAIRS = frozenset({("CONNECTION", "STRING"), ("DATABASE", "URL"), ("DB", "URL"), ("CONN", "STR"),
                           ("PRIVATE", "KEY"), ("SAS", "URL")})
#: Well-known names that would match but hold no secret.
_NOT_SECRET = frozenset({"TOKENIZERS_PARALLELISM", "AUTHOR", "PWD", "OLDPWD"})

_WORD_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

_TOKEN_PATTERNS = (
    r"hf_[A-Za-z0-9]{20,}",
    r"(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[A-Z0-9]{16}",
    r"gh[pousr]_[A-Za-z0-9]{20,}",
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}",
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}",
    r"glpat-[A-Za-z0-9_-]{20,}",
    r"AIza[0-9A-Za-z_-]{35}",
)
_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])(?:" + "|".join(_TOKEN_PATTERNS) + r")")
_PEM_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----(?:.*?-----END [A-Z ]*PRIVATE KEY-----)?", re.DOTALL)
#: ``scheme://user:password@`` -- group 1 is kept, the password is replaced.
_URL_CREDENTIALS_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s/@]+)(@)")
#: ``NAME=value`` / ``NAME: value`` in free text, for :func:`redact_text`.
_ASSIGNMENT_RE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_.-]*)(\s*[=:]\s*)(['\"]?)([^\s'\"]+)")


def _words(name: str) -> list[str]:
    return [w.upper() for w in _WORD_RE.findall(name)]


def is_secret_name(name: str) -> bool:
    """True when a variable or setting called ``name`` probably holds a secret (whole words only)."""
    if name.upper() in _NOT_SECRET:
        return False
    words = _words(name)
    if any(w in _SECRET_WORDS for w in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in zip(words, words[1:], strict=False))


def is_secret_value(value: Any) -> bool:
    """True when ``value`` is a string shaped like a well-known credential or holds a URL password."""
    if not isinstance(value, str) or len(value) < 8:
        return False
    return bool(_TOKEN_RE.search(value) or _PEM_RE.search(value) or _URL_CREDENTIALS_RE.search(value))


def is_secret(name: Any, value: Any) -> bool:
    """True when the pair ``name: value`` must not be shown (by its name or by its value's shape)."""
    if value in (None, ""):
        return False
    return (isinstance(name, str) and is_secret_name(name)) or is_secret_value(value)


def redact_mapping(data: Any) -> Any:
    """A copy of ``data`` with secret values (by name or by shape) replaced, recursively."""
    if isinstance(data, dict):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_name(key) and value not in (None, "", {}, [])
            else redact_mapping(value)
            for key, value in data.items()
        }
    if isinstance(data, list):
        return [redact_mapping(item) for item in data]
    if isinstance(data, str) and is_secret_value(data):
        return REDACTED  # whole: a stored REDACTED is never replayed as a value (see sdk._stored_overrides)
    return data


def redact_text(text: str, known: Iterable[str] = (), *, assignments: bool = True) -> str:
    """``text`` with credential-shaped substrings, URL passwords, ``SECRET_NAME=value`` assignments
    (unless ``assignments`` is false) and every value in ``known`` (the job's own secret values, when
    the caller has them) replaced."""
    for value in sorted({v for v in known if isinstance(v, str) and len(v) >= 4}, key=len, reverse=True):
        text = text.replace(value, REDACTED)
    text = _PEM_RE.sub(REDACTED, text)
    text = _TOKEN_RE.sub(REDACTED, text)
    text = _URL_CREDENTIALS_RE.sub(lambda m: m.group(1) + REDACTED + m.group(3), text)
    if not assignments:
        return text

    def assignment(match: re.Match[str]) -> str:
        name, sep, quote, value = match.groups()
        if value == REDACTED or not is_secret_name(name):
            return match.group(0)
        return f"{name}{sep}{quote}{REDACTED}"

    return _ASSIGNMENT_RE.sub(assignment, text)


def secret_values(env: dict[str, Any] | None) -> list[str]:
    """The values of ``env`` that are secret (by name or shape): what :func:`redact_text` should hide."""
    return [v for k, v in (env or {}).items() if isinstance(v, str) and is_secret(k, v)]


def redact_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready job spec dict safe to store: secret ``env``/``overrides`` values redacted.

    The ``run`` command is kept as written (the local supervisor runs it from the record): put secrets
    in ``env``, not in the command line.
    """
    safe = dict(spec)
    for section in ("env", "overrides"):
        if isinstance(safe.get(section), dict):
            safe[section] = redact_mapping(safe[section])
    return safe
