"""The dashboard in a real browser (Debian's chromium via Playwright) against real local jobs.

A real tiny fine-tune shows in the list and its loss chart draws every logged step; the log view
follows a running job; Cancel stops a running job and the page says CANCELLED; a wrong or missing
token gets 403; a store of 10,000 job records renders its first page in under a second.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from fixtures_browser import (  # noqa: F401 - browser_fixture and page_fixture are fixtures
    Dashboard,
    browser_fixture,
    page_fixture,
    screenshot,
    start_dashboard,
    stop_dashboard,
)
from fixtures_local import local_compute, spec, wait_until
from fixtures_training import BIN, TINY_CONFIG, write_classification

from cloudbridge.records import Job, JobState


@pytest.fixture
def compute(monkeypatch: pytest.MonkeyPatch) -> object:
    """The local backend with fast test settings (exported, so the dashboard process uses them too)."""
    return local_compute(monkeypatch)


@pytest.fixture
def dashboard(compute: object) -> Iterator[Dashboard]:
    """A ``cloudbridge dashboard --port 0`` over this test's CLOUDBRIDGE_HOME."""
    server = start_dashboard()
    yield server
    stop_dashboard(server.process)


def test_fine_tune_in_list_with_a_loss_chart_of_every_logged_step(compute, dashboard, page, tmp_path) -> None:
    import cloudbridge as cb

    write_classification(tmp_path / "data", n_train=80, n_test=20)
    job = compute.submit(spec(
        tmp_path,
        f"{BIN}/cloudbridge-finetune --task text-classification --model-config '{TINY_CONFIG}' "
        f"--train {tmp_path / 'data'} "
        "--epochs 2 --batch-size 8 --learning-rate 3e-3 --log-steps 2",
        name="tiny-sentiment", distribution="none", env={"HF_HUB_OFFLINE": "1"}))
    done = compute.wait(job.id, 300)
    assert done.state is JobState.SUCCEEDED, "\n".join(compute.logs(job.id))[-3000:]
    logged = len(cb.get_job(job.id).metric_history().series("loss"))
    assert logged == 10  # 80 examples / 8 per batch x 2 epochs = 20 steps, one loss every 2

    page.goto(dashboard.url("/"))
    row = page.locator("#jobs tbody tr", has_text=job.id)
    assert "SUCCEEDED" in row.inner_text() and "tiny-sentiment" in row.inner_text()
    assert "accuracy" in row.inner_text()  # the METRIC column
    screenshot(page, "dashboard-jobs.png", tmp_path)
    row.locator("a").click()
    page.wait_for_selector("#chart-loss canvas")
    points = int(page.get_attribute("#chart-loss", "data-points"))
    assert points >= logged
    drawn = page.evaluate("window.cbCharts['chart-loss'].data[1].filter(v => v !== null).length")
    assert drawn >= logged
    assert page.evaluate("window.cbCharts['chart-epoch'].data[0]") == [1, 2]
    page.wait_for_function("document.getElementById('log').dataset.ended === 'SUCCEEDED'")
    assert "cloudbridge-finetune: task=text-classification" in page.inner_text("#log")
    assert "SUCCEEDED" in page.inner_text("#events") and "RUNNING" in page.inner_text("#events")
    assert "tiny-sentiment" in page.inner_text("#spec")
    data = json.loads(urllib.request.urlopen(dashboard.url(f"/api/jobs/{job.id}/metrics"), timeout=30).read())
    assert len(data["loss"]) == logged and data["state"] == "SUCCEEDED"
    # another run overlaid on the same charts
    (tmp_path / "other.py").write_text(
        "from cloudbridge.runtime import log_metrics\n"
        "for s in range(1, 21):\n    log_metrics(step=s, epoch=1 + (s > 10), loss=1 / s)\n"
        "log_metrics(step=20, epoch=2, accuracy=0.9)\n")
    other = compute.submit(spec(tmp_path, f"{sys.executable} other.py", name="other"))
    assert compute.wait(other.id, 60).state is JobState.SUCCEEDED
    page.goto(dashboard.url(f"/jobs/{job.id}?compare={other.id}"))
    page.wait_for_selector("#chart-loss canvas")
    labels = page.evaluate("window.cbCharts['chart-loss'].series.map(s => s.label)")
    assert f"{job.id} loss" in labels and f"{other.id} loss" in labels
    assert f"{other.id} accuracy" in page.evaluate("window.cbCharts['chart-epoch'].series.map(s => s.label)")
    screenshot(page, "dashboard-job.png", tmp_path)


SLOW_PRINTER = textwrap.dedent(
    """
    import os, sys, time
    n = 0
    while not os.path.exists(sys.argv[1]):
        n += 1
        print(f"tick {n}", flush=True)
        time.sleep(0.2)
    print("gate open, bye", flush=True)
    """
)


def test_log_view_follows_a_running_job(compute, dashboard, page, tmp_path) -> None:
    (tmp_path / "printer.py").write_text(SLOW_PRINTER)
    gate = tmp_path / "gate"
    job = compute.submit(spec(tmp_path, f"{sys.executable} printer.py {gate}", name="printer"))
    try:
        wait_until(lambda: compute.get(job.id).state is JobState.RUNNING, timeout=60)
        page.goto(dashboard.url(f"/jobs/{job.id}"))
        page.wait_for_function("document.getElementById('log').textContent.includes('tick 3')")
        # lines written after the page loaded keep arriving (server-sent events)
        seen = page.evaluate("document.getElementById('log').textContent.split('\\n').length")
        page.wait_for_function(f"document.getElementById('log').textContent.split('\\n').length > {seen + 3}")
        assert page.inner_text("#state") == "RUNNING"
        assert "no metrics recorded" in page.inner_text("#no-metrics")  # and how to record them
        assert "log_metrics(step=step" in page.inner_text("#no-metrics")
        assert page.locator("#chart-loss").count() == 0  # never an empty chart
    finally:
        gate.touch()
    page.wait_for_function("document.getElementById('log').dataset.ended === 'SUCCEEDED'")
    assert "gate open, bye" in page.inner_text("#log")
    assert page.inner_text("#state") == "SUCCEEDED"


TWO_RANKS = textwrap.dedent(
    """
    import os, subprocess, sys
    child = "import os\\nfor n in range(5):\\n    print(f'hello {n} from', os.environ['RANK'])"
    procs = [subprocess.Popen([sys.executable, "-c", child], env={**os.environ, "RANK": str(r)}) for r in (0, 1)]
    sys.exit(max(p.wait() for p in procs))
    """
)


def test_log_view_filters_by_rank(compute, dashboard, page, tmp_path) -> None:
    (tmp_path / "ranks.py").write_text(TWO_RANKS)
    job = compute.submit(spec(tmp_path, f"{sys.executable} ranks.py", name="ranks", env={"CB_LOG_RANK_TAGS": "1"}))
    assert compute.wait(job.id, 60).state is JobState.SUCCEEDED
    page.goto(dashboard.url(f"/jobs/{job.id}"))
    page.wait_for_function("document.getElementById('log').dataset.ended === 'SUCCEEDED'")
    everything = page.inner_text("#log")
    assert everything.count("[rank0] hello") == 5 and everything.count("[rank1] hello") == 5
    page.select_option("#rank", "1")
    page.wait_for_function("document.getElementById('log').dataset.ended === 'SUCCEEDED' && "
                           "document.getElementById('log').textContent.includes('hello 4 from 1')")
    lines = [line for line in page.inner_text("#log").splitlines() if line.strip()]
    assert lines == [f"[rank1] hello {n} from 1" for n in range(5)]


def test_cancel_stops_a_running_job(compute, dashboard, page, tmp_path) -> None:
    (tmp_path / "printer.py").write_text(SLOW_PRINTER)
    job = compute.submit(spec(tmp_path, f"{sys.executable} printer.py {tmp_path / 'never'}", name="to-cancel"))
    wait_until(lambda: compute.get(job.id).state is JobState.RUNNING, timeout=60)
    page.goto(dashboard.url(f"/jobs/{job.id}"))
    page.wait_for_function("document.getElementById('log').textContent.includes('tick')")
    page.click("#cancel")
    page.wait_for_url(f"**/jobs/{job.id}")
    page.wait_for_selector("#state.CANCELLED")
    assert page.inner_text("#state") == "CANCELLED"
    assert page.locator("#cancel").count() == 0
    record = compute.get(job.id)
    assert record.state is JobState.CANCELLED and record.reason
    assert "CANCELLED" in page.inner_text("#events")


def test_wrong_or_missing_token_is_403(dashboard, page) -> None:
    for url in (dashboard.base + "/", dashboard.base + "/?token=wrong", dashboard.base + "/jobs/x?token=",
                dashboard.base + "/static/uPlot.iife.min.js", dashboard.base + "/spend?token=" + dashboard.token[:-1],
                dashboard.base + "/?token=%C3%A9t%C3%A9"):
        response = page.goto(url)
        assert response.status == 403, url
        assert "missing or wrong token" in page.inner_text("body")
    request = urllib.request.Request(dashboard.base + "/jobs/x/cancel", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 403
    assert page.goto(dashboard.url("/")).status == 200
    assert page.goto(dashboard.base + "/spend").status == 200  # the cookie set by the good URL


def _insert_jobs(count: int) -> None:
    """``count`` finished job records of three providers, straight into the job store (one transaction)."""
    from cloudbridge.jobstore.store import JobStore, _job_to_row

    now = time.time()
    states = [JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]
    rows = []
    for n in range(count):
        provider = ("local", "aws", "gcp")[n % 3]
        job = Job(id=f"{provider}-{n:08x}", provider=provider, name=f"sweep-{n}", state=states[(n // 3) % 3],
                  created_at=now - n * 60, started_at=now - n * 60 + 5, ended_at=now - n * 60 + 600,
                  metrics={"accuracy": 0.5 + (n % 50) / 100}, reason=None if n % 3 == 0 else "exit status 1",
                  extra={"price_per_hour": 1.5 if provider != "local" else 0})
        rows.append(_job_to_row(job, now))
    store = JobStore.default()
    with store.transaction() as conn:
        columns = ", ".join(rows[0])
        conn.executemany(f"INSERT INTO jobs ({columns}) VALUES ({', '.join('?' for _ in rows[0])})",
                         [list(r.values()) for r in rows])


def _load_seconds(page: object) -> float:
    """The browser's own measure of the last navigation: request start to the end of the load event."""
    return page.evaluate(  # type: ignore[attr-defined]
        "(e => (e.loadEventEnd - e.startTime) / 1000)(performance.getEntriesByType('navigation')[0])")


def test_ten_thousand_jobs_page_loads_under_a_second(compute, page, tmp_path) -> None:
    _insert_jobs(10_000)
    server = start_dashboard()
    try:
        timings = []  # the first load counts too: the server warms itself up before it prints its URL
        for _ in range(5):  # best of five: the machine's two cores may be shared with other work
            page.goto(server.url("/?page=2"), wait_until="load")
            timings.append(_load_seconds(page))
        assert min(timings) < 1.0, timings
        assert page.inner_text("#count").startswith("10000 jobs · page 2 of 200")
        assert page.locator("#jobs tbody tr").count() == 50
        page.select_option("select[name=provider]", "aws")
        page.select_option("select[name=state]", "CANCELLED")
        page.fill("input[name=q]", "sweep-99")
        with page.expect_navigation(wait_until="load"):
            page.click("form.filters button")
        rows = page.locator("#jobs tbody tr").all_inner_texts()
        assert rows and all("aws" in r and "CANCELLED" in r and "sweep-99" in r for r in rows)
        filtered = page.url
        timings = []
        for _ in range(5):  # best of five: the machine's two cores may be shared with other work
            page.goto(filtered, wait_until="load")
            timings.append(_load_seconds(page))
        assert min(timings) < 1.0, timings
        page.goto(server.url("/spend"))
        assert "aws" in page.inner_text("#spend") and "gcp" in page.inner_text("#spend")
        screenshot(page, "dashboard-spend.png", tmp_path)
        response = page.goto(server.url("/jobs/local-nope"))
        assert response.status == 404 and "No job local-nope" in page.inner_text("h1")
    finally:
        stop_dashboard(server.process)


def test_endpoint_row_invoke_box_and_server_counters(dashboard, page, tmp_path) -> None:
    from fixtures_deploy import write_custom_model

    from cloudbridge.backends.local.deploy import LocalDeploy
    from cloudbridge.specs import EndpointSpec

    deployer = LocalDeploy()
    deployer.deploy(EndpointSpec(name="words", model=str(write_custom_model(tmp_path / "words"))))
    try:
        page.goto(dashboard.url("/endpoints"))
        row = page.locator("#endpoints tbody tr", has_text="words")
        assert "InService" in row.inner_text() and "local" in row.inner_text()
        row.locator("input[name=payload]").fill('{"text": "great film"}')
        row.locator("button").click()
        page.wait_for_function("document.querySelector('form.invoke .reply').textContent.includes('positive')")
        page.reload()
        cells = page.locator("#endpoints tbody tr", has_text="words").locator("td").all_inner_texts()
        assert cells[4] == "1" and cells[6].endswith(" ms") and cells[7].endswith(" ms")  # requests, p50, p99
    finally:
        deployer.delete("words")


def test_gpus_page_shows_holders_and_the_queue(monkeypatch, page, tmp_path) -> None:
    compute = local_compute(monkeypatch, fake_gpus="1")
    (tmp_path / "printer.py").write_text(SLOW_PRINTER)
    run = f"{sys.executable} printer.py {tmp_path / 'gate'}"
    holder = compute.submit(spec(tmp_path, run, name="holder", resources={"accelerators": "FAKE:1"}))
    waiting = compute.submit(spec(tmp_path, run, name="waiting", resources={"accelerators": "FAKE:1"}))
    server = start_dashboard()
    try:
        wait_until(lambda: compute.get(holder.id).state is JobState.RUNNING, timeout=60)
        page.goto(server.url("/gpus"))
        assert holder.id in page.inner_text("#gpus")
        assert waiting.id in page.inner_text("#queue")
    finally:
        (tmp_path / "gate").touch()
        stop_dashboard(server.process)
        for job in (holder, waiting):
            compute.wait(job.id, 60)


def test_the_stack_is_offline(dashboard, page) -> None:
    """Every asset the pages load comes from the dashboard itself (no CDN)."""
    hosts = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.goto(dashboard.url("/"))
    page.goto(dashboard.base + "/jobs/local-x")
    assert hosts == {dashboard.base.split("/")[2]}
