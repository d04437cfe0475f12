"""Accelerator names: one canonical spelling, aliases, families and "did you mean" suggestions.

Canonical names follow the convention most tools use: ``A100`` is the 40 GB part and
``A100-80GB`` the 80 GB one; ``H100`` is the 80 GB SXM/PCIe part. Clouds spell the same GPU in
many ways (``NVIDIA_TESLA_T4``, ``nvidia-tesla-a100``, ``a100-80gb``); :func:`normalize_accelerator`
maps them all to one name and refuses an unknown one with the nearest known names.

A request for a *family* (``A100``) is satisfied by every member of the family (``A100`` and
``A100-80GB``); a request for a member (``A100-80GB``) only by that member. See :func:`satisfies`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from cloudbridge.errors import UserError

__all__ = [
    "KNOWN_ACCELERATORS",
    "UnknownAccelerator",
    "accelerator_family",
    "canonical_spelling",
    "from_device_name",
    "normalize_accelerator",
    "satisfies",
    "suggest_accelerators",
]

#: Canonical accelerator name -> memory per device in GB (the builtin vocabulary).
KNOWN_ACCELERATORS: dict[str, float] = {
    "K80": 12,
    "P100": 16,
    "T4": 16,
    "V100": 16,
    "V100-32GB": 32,
    "A10": 24,
    "A10G": 24,
    "L4": 24,
    "L40S": 48,
    "A100": 40,
    "A100-80GB": 80,
    "H100": 80,
    "H100-NVL": 94,
    "H200": 141,
}

#: Spellings seen in cloud APIs and on the command line -> canonical name (after
#: :func:`canonical_spelling`).
_ALIASES: dict[str, str] = {
    "A100-40GB": "A100",
    "A100-40G": "A100",
    "A100-80G": "A100-80GB",
    "A100-SXM4-40GB": "A100",
    "A100-SXM4-80GB": "A100-80GB",
    "A100-PCIE-40GB": "A100",
    "A100-PCIE-80GB": "A100-80GB",
    "H100-80GB": "H100",
    "H100-80G": "H100",
    "H100-SXM": "H100",
    "H100-PCIE": "H100",
    "H100-MEGA-80GB": "H100",
    "H100-94GB": "H100-NVL",
    "V100-16GB": "V100",
    "V100-SXM2-16GB": "V100",
    "V100-SXM2-32GB": "V100-32GB",
    "T4G": "T4",
    "L40-S": "L40S",
}

_PREFIXES = ("NVIDIA-", "TESLA-", "GEFORCE-")


class UnknownAccelerator(UserError):
    """An accelerator name that neither the builtin vocabulary nor the catalog knows."""


def canonical_spelling(name: str) -> str:
    """Upper-case ``name``, use ``-`` as the only separator and drop vendor prefixes.

    ``"nvidia_tesla_t4"`` -> ``"T4"``; ``"a100 80gb"`` -> ``"A100-80GB"``.
    """
    text = re.sub(r"[\s_]+", "-", name.strip().upper())
    text = re.sub(r"-+", "-", text).strip("-")
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if text.startswith(prefix):
                text = text[len(prefix) :]
                changed = True
    return text


def _lookup(spelled: str, vocabulary: Iterable[str]) -> str | None:
    vocab = set(vocabulary)
    if spelled in vocab:
        return spelled
    alias = _ALIASES.get(spelled)
    if alias is not None:
        return alias
    return None


#: Names people type for a GPU the clouds sell under another name (suggestions only).
_NEAR: dict[str, tuple[str, ...]] = {
    "A10": ("A10G",),
    "A100-40": ("A100",),
    "A100-80": ("A100-80GB",),
    "H100-NVL-94GB": ("H100-NVL",),
    "L40": ("L40S",),
}


def suggest_accelerators(name: str, vocabulary: Iterable[str] | None = None, n: int = 2) -> list[str]:
    """The names in ``vocabulary`` (default: builtin) closest to ``name``, best first; maybe empty."""
    vocab = sorted(set(KNOWN_ACCELERATORS if vocabulary is None else vocabulary))
    spelled = canonical_spelling(name)
    near = [v for v in _NEAR.get(spelled, ()) if v in vocab]
    # A prefix match ("H1" -> "H100") is a strong hint even when the similarity ratio is low.
    prefixed = sorted((v for v in vocab if v.startswith(spelled)), key=lambda v: (len(v), v))
    close = difflib.get_close_matches(spelled, vocab, n=n, cutoff=0.5)
    ordered: list[str] = []
    for candidate in [*near, *prefixed[:1], *close]:
        if candidate not in ordered:
            ordered.append(candidate)
    return ordered[:n]


def normalize_accelerator(name: str, vocabulary: Iterable[str] | None = None, *, where: str = "") -> str:
    """The canonical name of ``name``, or :class:`UnknownAccelerator` with the nearest names.

    ``vocabulary`` is the set of names that exist (e.g. every accelerator in the loaded catalog);
    default: the builtin :data:`KNOWN_ACCELERATORS`. A family name (``A100``) is accepted when a
    member (``A100-80GB``) is in the vocabulary. ``where`` prefixes the error
    (``"job.yaml:4: resources.accelerators: "``).
    """
    vocab = set(KNOWN_ACCELERATORS if vocabulary is None else vocabulary)
    spelled = canonical_spelling(name)
    found = _lookup(spelled, vocab)
    if found is not None and (found in vocab or any(accelerator_family(v) == found for v in vocab)):
        return found
    if any(accelerator_family(v) == spelled for v in vocab):
        return spelled
    close = suggest_accelerators(name, vocab)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}?" if close else None
    known = ", ".join(sorted(vocab)) or "none"
    raise UnknownAccelerator(f"{where}unknown accelerator {name!r} (known: {known})", hint=hint)


def accelerator_family(name: str) -> str:
    """The family of a canonical name: the part before the first ``-`` (``A100-80GB`` -> ``A100``)."""
    return name.split("-", 1)[0]


def satisfies(offered: str | None, requested: str | None) -> bool:
    """True when a device ``offered`` fulfils a request for ``requested`` (both canonical).

    ``None`` requested means "no GPU needed" and is satisfied only by no GPU. A family request
    (``A100``) accepts every member (``A100-80GB``); a member request accepts only itself.
    """
    if requested is None:
        return offered is None
    if offered is None:
        return False
    if offered == requested:
        return True
    return "-" not in requested and accelerator_family(offered) == requested


def from_device_name(device_name: str, memory_gb: float | None = None) -> str:
    """Canonical name for a driver-reported device (``"NVIDIA A100-SXM4-80GB"`` -> ``A100-80GB``).

    Unknown devices keep a tidy spelling of their own name (``"RTX-4090"``), so local GPUs always
    get a usable name.
    """
    spelled = canonical_spelling(device_name)
    found = _lookup(spelled, KNOWN_ACCELERATORS)
    if found is not None:
        return found
    tokens = spelled.split("-")
    for token in tokens:
        if token in KNOWN_ACCELERATORS:
            base = token
            if base == "A100" and memory_gb is not None and memory_gb > 48:
                return "A100-80GB"
            if base == "V100" and memory_gb is not None and memory_gb > 20:
                return "V100-32GB"
            if base == "H100" and "NVL" in tokens:
                return "H100-NVL"
            return base
    return spelled
