"""The dashboard's job page as rendered (no browser): the NER per-tag table, attempts, outputs with their
URIs, the estimated cost, and "no metrics recorded" instead of an empty chart (issue 14, items 4 and 6).

The browser tests (test_dashboard_browser.py) cover the charts, logs, Cancel and the token; these check
the rest of what the page must show, from a job record and a series written by the runtime's own logger.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

pytest.importorskip("jinja2")


def _page(job_id: str) -> str:
    from cloudbridge import sdk
    from cloudbridge.dashboard import views

    return views.render("job.html", **views.job_context(sdk.get_job(job_id), ""))


def _insert(job_id: str, outputs: Path, **fields: object) -> None:
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.records import Job, JobState

    now = time.time()
    job = Job(id=job_id, provider="local", name=job_id.removeprefix("local-"), state=JobState.SUCCEEDED,
              created_at=now - 7300, started_at=now - 7200, ended_at=now, outputs_uri=str(outputs), **fields)
    JobStore.default().insert_job(job, spec={"name": job.name, "run": "python train.py",
                                             "outputs": {"model": "s3://cb-models/ner/model"}})


def test_job_page_shows_the_ner_table_attempts_outputs_and_cost(cb_home: Path, tmp_path: Path) -> None:
    from cloudbridge.runtime.metrics import MetricsLogger

    logger = MetricsLogger(str(tmp_path / "out"))
    logger.log(10, 1, loss=0.4)
    logger.log(10, 1, f1=0.81)
    logger.table("ner_per_tag", {"PER": {"precision": 0.9, "recall": 0.8, "f1": 0.8471, "support": 31},
                                 "LOC": {"precision": 0.7, "recall": 0.75, "f1": 0.7241, "support": 12}}, epoch=1)
    logger.close()
    _insert("local-ner1", tmp_path / "out", extra={"price_per_hour": 3.0},
            attempts=[{"attempt": 1, "native_id": "ner1-a", "state": "FAILED", "reason": "spot reclaimed"},
                      {"attempt": 2, "native_id": "ner1-b", "state": "SUCCEEDED"}])
    page = _page("local-ner1")
    ner = page.split('<table id="ner">', 1)[1].split("</table>", 1)[0]
    assert "<td>PER</td><td>0.9000</td><td>0.8000</td><td>0.8471</td><td>31</td>" in ner
    assert "<td>LOC</td>" in ner
    attempts = page.split("<h3>Attempts</h3>", 1)[1].split("</table>", 1)[0]
    assert "ner1-a" in attempts and "spot reclaimed" in attempts and "ner1-b" in attempts
    outputs = page.split("<h2>Outputs</h2>", 1)[1].split("</section>", 1)[0]
    assert f"<code>{tmp_path / 'out'}</code>" in outputs and "<code>s3://cb-models/ner/model</code>" in outputs
    assert '<strong id="cost">$6.00</strong>' in page  # 2 h at $3.00/h
    assert 'id="chart-loss"' in page and "no metrics recorded" not in page


def test_job_page_without_metrics_says_how_to_record_them(cb_home: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    _insert("local-quiet1", tmp_path / "empty")
    page = _page("local-quiet1")
    assert "<strong>no metrics recorded</strong>" in page and "log_metrics(step=step" in page
    assert 'id="chart-loss"' not in page and 'id="ner"' not in page
