"""Two processes of one local job printing at once never splice their lines in the job's log.

``PYTHONUNBUFFERED`` makes ``print`` write the text and its newline in two ``write()`` calls,
so concurrent ranks interleave mid-line; the local backend line-buffers every Python process of
the job instead (``cloudbridge.runtime.linebuffer``), and a user's own ``sitecustomize`` still runs.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from fixtures_local import local_compute, spec

from cloudbridge.records import JobState

WORKERS = textwrap.dedent(
    """
    import subprocess, sys
    child = "import sys\\nfor n in range(3000):\\n    print(f'worker={sys.argv[1]} line={n} ' + 'x' * 40)"
    procs = [subprocess.Popen([sys.executable, "-c", child, str(k)]) for k in range(2)]
    sys.exit(max(p.wait() for p in procs))
    """
)
LINE = re.compile(r"^worker=[01] line=\d+ x{40}$")


def test_concurrent_writers_keep_whole_lines(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    compute = local_compute(monkeypatch)
    (tmp_path / "workers.py").write_text(WORKERS)
    job = compute.wait(compute.submit(spec(tmp_path, "python workers.py", name="lines")).id, 120)
    lines = [line for line in compute.logs(job.id) if "worker=" in line or "line=" in line]
    assert job.state is JobState.SUCCEEDED, lines[-5:]
    spliced = [line for line in lines if not LINE.match(line)]
    assert not spliced, f"{len(spliced)} spliced lines, e.g. {spliced[:2]}"
    assert len(lines) == 6000


def test_a_users_sitecustomize_still_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("print('user sitecustomize ran')\n")
    compute = local_compute(monkeypatch)
    job_spec = spec(tmp_path, "python -c 'print(42)'", name="site", env={"PYTHONPATH": str(site)})
    job = compute.wait(compute.submit(job_spec).id, 60)
    lines = list(compute.logs(job.id))
    assert job.state is JobState.SUCCEEDED, lines
    assert "user sitecustomize ran" in lines and "42" in lines
