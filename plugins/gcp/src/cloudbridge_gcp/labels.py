"""cloudbridge's ``cloudbridge:*`` tags as GCP labels, and back. Pure.

GCP label keys and values hold only ``[a-z0-9_-]`` (keys start with a letter), at most 63 characters
each. A tag key ``cloudbridge:job-id`` becomes ``cb_job-id``; a value is escaped reversibly
(lower-case letters, digits and ``-`` stay, any other character becomes ``_`` plus its UTF-8 bytes
in hex, e.g. ``A`` -> ``_41``) and split over ``KEY``, ``KEY__1``, ``KEY__2``... when longer than 63.
"""

from __future__ import annotations

import re

__all__ = ["decode_labels", "encode_tags", "encode_value"]

_PREFIX = "cloudbridge:"
_KEY_PREFIX = "cb_"
_PLAIN = re.compile(r"[a-z0-9-]")
_MAX = 63


def encode_value(value: str) -> str:
    """``value`` in label characters (reversible)."""
    return "".join(ch if _PLAIN.fullmatch(ch) else "".join(f"_{b:02x}" for b in ch.encode()) for ch in value)


def _decode_value(value: str) -> str:
    raw = bytearray()
    i = 0
    while i < len(value):
        if value[i] == "_" and i + 3 <= len(value) and re.fullmatch(r"[0-9a-f]{2}", value[i + 1:i + 3]):
            raw.append(int(value[i + 1:i + 3], 16))
            i += 3
        else:
            raw.extend(value[i].encode())
            i += 1
    return raw.decode(errors="replace")


def _key(tag: str) -> str:
    name = tag[len(_PREFIX):] if tag.startswith(_PREFIX) else tag
    key = _KEY_PREFIX + re.sub(r"[^a-z0-9-]", "-", name.lower())
    return key[:56]


def encode_tags(tags: dict[str, str]) -> dict[str, str]:
    """``cloudbridge:*`` tags as labels (each value split into pieces of at most 63 characters)."""
    labels: dict[str, str] = {}
    for tag, value in tags.items():
        key = _key(tag)
        encoded = encode_value(value)
        pieces = _split_safe(encoded)  # never cut inside an escape (_xx)
        for index, piece in enumerate(pieces):
            labels[key if index == 0 else f"{key}__{index}"] = piece
    return labels


def _split_safe(encoded: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    while start < len(encoded):
        end = min(start + _MAX, len(encoded))
        while end < len(encoded) and "_" in encoded[max(start, end - 2):end]:
            end -= 1  # an escape would be cut: end the piece before its '_'
        pieces.append(encoded[start:end])
        start = end
    return pieces or [""]


def decode_labels(labels: dict[str, str], tags: tuple[str, ...]) -> dict[str, str]:
    """The tags among ``labels`` (only those named in ``tags``), decoded; other labels are ignored."""
    found: dict[str, str] = {}
    for tag in tags:
        key = _key(tag)
        if key not in labels:
            continue
        parts = [labels[key]]
        index = 1
        while f"{key}__{index}" in labels:
            parts.append(labels[f"{key}__{index}"])
            index += 1
        found[tag] = _decode_value("".join(parts))
    return found
