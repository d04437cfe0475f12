"""A dependency-free writer of TensorBoard scalar event files.

TensorBoard reads ``events.out.tfevents.*`` files: TFRecord frames (length, masked CRC-32C of the
length, payload, masked CRC-32C of the payload) around ``tensorflow.Event`` protocol buffers. A
scalar is ``Event{wall_time, step, summary{value{tag, simple_value}}}``. Writing those few fields
by hand takes ~40 lines and means :func:`cloudbridge.runtime.log_metrics` works in any job, with
neither TensorFlow, torch nor the ``tensorboard`` package installed.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Mapping

__all__ = ["ScalarWriter", "crc32c"]


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``, as TFRecord frames use it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked(data: bytes) -> bytes:
    crc = crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int | None = None, *, file_version: str | None = None,
           scalars: Mapping[str, float] | None = None) -> bytes:
    body = b"\x09" + struct.pack("<d", wall_time)  # field 1, fixed64: wall_time
    if step is not None:
        body += b"\x10" + _varint(int(step))  # field 2, varint: step
    if file_version is not None:
        body += _field_bytes(3, file_version.encode())
    if scalars:
        values = b"".join(
            _field_bytes(1, _field_bytes(1, tag.encode()) + b"\x15" + struct.pack("<f", float(value)))
            for tag, value in scalars.items()
        )
        body += _field_bytes(5, values)  # field 5: summary
    return body


def _frame(record: bytes) -> bytes:
    length = struct.pack("<Q", len(record))
    return length + _masked(length) + record + _masked(record)


class ScalarWriter:
    """Appends scalar summaries to one new event file in ``logdir`` (created on first write)."""

    def __init__(self, logdir: str) -> None:
        """Remember ``logdir``; nothing is written until :meth:`add_scalars`."""
        self.logdir = logdir
        self._handle = None

    def _open(self) -> None:
        os.makedirs(self.logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.cloudbridge"
        self._handle = open(os.path.join(self.logdir, name), "ab")
        self._handle.write(_frame(_event(time.time(), file_version="brain.Event:2")))

    def add_scalars(self, step: int, scalars: Mapping[str, float], wall_time: float | None = None) -> None:
        """Write one event holding every ``tag -> value`` of ``scalars`` at ``step``; flushed at once."""
        numeric = {k: float(v) for k, v in scalars.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        if not numeric:
            return
        if self._handle is None:
            self._open()
        assert self._handle is not None
        self._handle.write(_frame(_event(wall_time or time.time(), step, scalars=numeric)))
        self._handle.flush()

    def close(self) -> None:
        """Close the event file."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
