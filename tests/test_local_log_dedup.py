"""Library warnings that rank 0 already printed are dropped from ranks above 0 in ``job.log``.

See ``backends/local/logdedup.py``: a real two-process job prints the same Python warning (with its
source line) and the same ``logging`` warning on both ranks, plus one warning only rank 1 prints.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_local import local_compute, spec

from cloudbridge.backends.local.logdedup import WarningDedup, warning_key
from cloudbridge.records import JobState

CHILD = """\
import logging, sys, warnings
rank = sys.argv[1]
warnings.warn("old_api is deprecated", FutureWarning)
logging.basicConfig(format="%(levelname)s:%(name)s:%(message)s")
logging.getLogger("transformers.modeling_utils").warning("Some weights were not initialized")
if rank == "1":
    warnings.warn("only rank 1 sees this", UserWarning)
print("done", rank)
"""
# rank 0 first, then rank 1: the order the filter relies on (rank 0's lines are never dropped)
WORKERS = """\
import os, subprocess, sys
for k in range(2):
    subprocess.run([sys.executable, "child.py", str(k)], env={**os.environ, "RANK": str(k)}, check=True)
"""


def _log(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **env: str) -> list[str]:
    compute = local_compute(monkeypatch)
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "workers.py").write_text(WORKERS)
    job = compute.wait(compute.submit(spec(tmp_path, "python workers.py", name="warn",
                                           resources={"processes": 2}, env=env)).id, 60)
    lines = [line for line in compute.logs(job.id) if line.startswith("[rank")]
    assert job.state is JobState.SUCCEEDED, lines
    return lines


def test_warnings_rank_0_printed_are_dropped_from_rank_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lines = _log(monkeypatch, tmp_path)
    rank0 = [line for line in lines if line.startswith("[rank0] ")]
    rank1 = [line for line in lines if line.startswith("[rank1] ")]
    # the warning's path is the job's copy of child.py
    assert rank0[0].endswith("/child.py:3: FutureWarning: old_api is deprecated"), lines
    assert rank0[1:] == ['[rank0]   warnings.warn("old_api is deprecated", FutureWarning)',
                         "[rank0] WARNING:transformers.modeling_utils:Some weights were not initialized",
                         "[rank0] done 0"]
    assert rank1[0].endswith("/child.py:7: UserWarning: only rank 1 sees this"), lines
    assert rank1[1:] == ['[rank1]   warnings.warn("only rank 1 sees this", UserWarning)', "[rank1] done 1"]
    # opted out: rank 1 keeps every line
    assert sum(line.startswith("[rank1] ") for line in _log(monkeypatch, tmp_path, CB_LOG_DEDUP_WARNINGS="0")) == 6


def test_the_filter_gives_the_same_lines_wherever_the_pipe_cuts_them() -> None:
    data = (b"[rank0] /a.py:1: UserWarning: w\n[rank0]   warn()\n[rank1] /a.py:1: UserWarning: w\n"
            b"[rank1]   warn()\n[rank1] step 1\n[rank0] [W1207 21:00:01.5 4242 gloo.cpp:9] slow link\n"
            b"[rank1] [W1207 21:00:02.7 4343 gloo.cpp:9] slow link\n[rank2] x - WARNING - y - z\n"
            b"[rank1] x - WARNING - y - z\nplain\n[rank1] tail")
    expected = (b"[rank0] /a.py:1: UserWarning: w\n[rank0]   warn()\n[rank1] step 1\n"
                b"[rank0] [W1207 21:00:01.5 4242 gloo.cpp:9] slow link\n[rank2] x - WARNING - y - z\nplain\n"
                b"[rank1] tail")
    for cut in range(len(data) + 1):
        dedup = WarningDedup()
        assert dedup.feed(data[:cut]) + dedup.feed(data[cut:]) + dedup.flush() == expected, cut
    assert warning_key(b"epoch 1 WARNINGS none") is None and warning_key(b"loss 0.5") is None


def test_transformers_own_warning_lines_are_recognised() -> None:
    """transformers' default handler prints a warning as ``[transformers] message`` (no level name):
    the line the real library prints is a warning for the filter, its other output is not."""
    import subprocess
    import sys

    code = ("from transformers.utils import logging\n"
            "logging.get_logger('transformers.modeling_utils').warning('Some weights were not initialized')\n"
            "logging.get_logger('transformers.modeling_utils').info('not shown at the default level')\n")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120, check=True).stderr
    lines = [line for line in printed.splitlines() if line.strip()]
    assert lines == [b"[transformers] Some weights were not initialized"], printed
    assert warning_key(lines[0]) is not None
    dedup = WarningDedup()
    out = dedup.feed(b"[rank0] " + lines[0] + b"\n[rank1] " + lines[0] + b"\n[rank1] [transformers]x\n")
    assert out == b"[rank0] " + lines[0] + b"\n[rank1] [transformers]x\n"


def test_a_multi_line_warning_of_rank_1_is_dropped_whole() -> None:
    """transformers' load report is one record over several lines: rank 1's copy goes as a block, up to
    the first line that differs from what followed rank 0's copy (seen in the quickstart's job.log)."""
    report = [b"[transformers] BertForSequenceClassification LOAD REPORT from: /m", b"Key               | Status  |",
              b"classifier.bias   | MISSING |", b"Notes:"]
    data = b"".join(b"[rank0] " + line + b"\n" for line in [*report, b"step 15/75 loss 0.6"])
    data += b"".join(b"[rank1] " + line + b"\n" for line in [*report, b"Notes:", b"rank 1 is ready"])
    expected = b"".join(b"[rank0] " + line + b"\n" for line in [*report, b"step 15/75 loss 0.6"])
    expected += b"[rank1] Notes:\n[rank1] rank 1 is ready\n"  # a repeated line past the block is kept
    for cut in range(0, len(data) + 1, 7):
        dedup = WarningDedup()
        assert dedup.feed(data[:cut]) + dedup.feed(data[cut:]) + dedup.flush() == expected, cut
