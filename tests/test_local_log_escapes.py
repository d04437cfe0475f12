"""A local job's ``job.log`` holds no raw terminal escapes (colours, titles, cursor moves).

The supervisor pipes the command's output through ``backends.local.logpump``: CSI and OSC
sequences are removed, a lone carriage return (a progress bar's redraw) becomes a line break.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_local import local_compute, spec

from cloudbridge.backends.local.logpump import EscapeStripper
from cloudbridge.records import JobState

COLOURS = (
    "printf '\\033[1;31mred error\\033[0m plain\\n'; "
    "printf '\\033]0;a window title\\007\\033]8;;https://x.test\\033\\\\link\\033]8;;\\033\\\\ done\\n'; "
    "printf 'step 1\\rstep 2\\rstep 3\\r\\n'; "
    "python -c \"print('\\x1b[32mgreen\\x1b[39m \\x1b[2K\\x1b[1Acursor')\""
)


def test_a_job_that_prints_colour_codes_leaves_none_in_job_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compute = local_compute(monkeypatch)
    job = compute.wait(compute.submit(spec(tmp_path, COLOURS, name="colours")).id, 60)
    raw = (Path(job.extra["job_dir"]) / "job.log").read_bytes()
    assert job.state is JobState.SUCCEEDED, raw.decode(errors="replace")
    assert b"\x1b" not in raw and b"\x07" not in raw and b"\r" not in raw, raw
    lines = raw.decode().splitlines()
    for expected in ("red error plain", "link done", "step 1", "step 2", "step 3", "green cursor"):
        assert expected in lines, (expected, lines)
    assert lines.index("step 1") + 2 == lines.index("step 3")


def test_an_escape_cut_by_the_pipe_is_still_removed() -> None:
    data = b"a\x1b[38;5;196mred\x1b[0m b\x1b]0;title\x07c\r\nd\re\n"
    for cut in range(len(data) + 1):
        stripper = EscapeStripper()
        out = stripper.feed(data[:cut]) + stripper.feed(data[cut:]) + stripper.flush()
        assert out == b"ared bc\nd\ne\n", (cut, out)


def test_an_unfinished_escape_at_the_end_loses_its_esc_byte() -> None:
    stripper = EscapeStripper()
    out = stripper.feed(b"tail \x1b[31") + stripper.flush()
    assert b"\x1b" not in out and out.startswith(b"tail ")


# ---- rank tags: a job of several processes says which rank printed each line -------------------
WORKERS = (
    "import os, subprocess, sys\n"
    "child = \"import sys\\nprint('hello from', sys.argv[1]); print('second line', file=sys.stderr)\"\n"
    "procs = [subprocess.Popen([sys.executable, '-c', child, str(k)], env={**os.environ, 'RANK': str(k)})\n"
    "         for k in range(2)]\n"
    "sys.exit(max(p.wait() for p in procs))\n"
)


def _worker_lines(compute, tmp_path: Path, name: str, **fields) -> list[str]:  # type: ignore[no-untyped-def]
    (tmp_path / "workers.py").write_text(WORKERS)
    job = compute.wait(compute.submit(spec(tmp_path, "python workers.py", name=name, **fields)).id, 60)
    lines = list(compute.logs(job.id))
    assert job.state is JobState.SUCCEEDED, lines
    return sorted(line for line in lines if "hello from" in line or "second line" in line)


def test_a_multi_process_jobs_lines_carry_their_rank_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compute = local_compute(monkeypatch)
    assert _worker_lines(compute, tmp_path, "tagged", resources={"processes": 2}) == [
        "[rank0] hello from 0", "[rank0] second line", "[rank1] hello from 1", "[rank1] second line",
    ]


def test_rank_tags_off_for_one_process_or_when_the_job_says_0(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compute = local_compute(monkeypatch)
    plain = ["hello from 0", "hello from 1", "second line", "second line"]
    assert _worker_lines(compute, tmp_path, "single") == plain
    assert _worker_lines(compute, tmp_path, "optout", resources={"processes": 2},
                         env={"CB_LOG_RANK_TAGS": "0"}) == plain
