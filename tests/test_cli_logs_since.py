"""``cloudbridge logs --since DURATION`` on local jobs: by the arrival times recorded next to job.log.

job.log lines carry no timestamps; the supervisor notes when each write arrived
(``job.log.times``), and ``--since`` starts after the last write older than the cutoff.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from fixtures_cli import assert_one_error_line, run_cli
from fixtures_local import local_compute, spec, wait_until

from cloudbridge.records import JobState

# prints, then waits for the test's go-ahead file, then prints again
TWO_PHASES = "echo early-1; echo early-2; while [ ! -e {go} ]; do sleep 0.05; done; echo late-1; echo late-2"


def test_since_keeps_only_the_lines_that_arrived_after_the_cutoff(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compute = local_compute(monkeypatch)
    job = compute.submit(spec(tmp_path, TWO_PHASES.format(go=tmp_path / "go"), name="since"))
    wait_until(lambda: "early-2" in list(compute.logs(job.id)), timeout=60)
    time.sleep(0.05)
    cutoff = time.time()
    time.sleep(0.05)
    (tmp_path / "go").touch()
    job = compute.wait(job.id, 60)
    everything = list(compute.logs(job.id))
    assert job.state is JobState.SUCCEEDED, everything
    recent = list(compute.logs(job.id, since=cutoff))
    assert recent == everything[everything.index("late-1"):], (recent, everything)
    assert recent[:2] == ["late-1", "late-2"] and recent[-1].startswith("[cloudbridge] job SUCCEEDED")
    assert list(compute.logs(job.id, since=0)) == everything
    assert list(compute.logs(job.id, since=time.time() + 1)) == []


def test_cli_since_uses_the_one_duration_grammar(tmp_path: Path) -> None:
    job_file = tmp_path / "job.yaml"
    job_file.write_text("name: since-cli\nrun: echo one; echo two\n", encoding="utf-8")
    submitted = run_cli("run", str(job_file))
    assert submitted.returncode == 0, submitted.stderr
    job_id = re.search(r"local-[0-9a-f]+", submitted.stderr + submitted.stdout).group(0)  # type: ignore[union-attr]
    plain = run_cli("logs", job_id)
    assert plain.returncode == 0 and "one\ntwo\n" in plain.stdout, plain.stderr
    assert run_cli("logs", job_id, "--since", "1h").stdout == plain.stdout
    assert run_cli("logs", job_id, "--since", "1w").stdout == plain.stdout
    time.sleep(2.2)  # every line is now older than 2 s
    old = run_cli("logs", job_id, "--since", "2s")
    assert old.returncode == 0 and old.stdout == "", old.stdout + old.stderr
    assert_one_error_line(run_cli("logs", job_id, "--since", "10 parsecs"), "--since")
