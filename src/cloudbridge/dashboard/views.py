"""Rendering the dashboard's pages: Jinja2 templates (autoescaped) and the data each page needs."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from cloudbridge.dashboard.data import job_cost
from cloudbridge.metrics import HOW_TO_RECORD, MetricHistory

__all__ = ["chart_data", "job_context", "provider_names", "render", "warm_up"]

TEMPLATES = Path(__file__).parent / "templates"
#: Per-epoch chart: every one of these a job recorded.
EPOCH_METRICS = ("accuracy", "f1", "f1_macro", "eval_loss")


def _age(timestamp: float | None) -> str:
    from cloudbridge.cli._output import format_age

    return format_age(timestamp)


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp)) if timestamp else ""


def _money(value: float | None) -> str:
    if value is None:
        return ""
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def _metric(values: dict[str, Any]) -> str:
    from cloudbridge.metrics import main_metric

    found = main_metric(values or {})
    return f"{found[0]} {found[1]:.4g}" if found else ""


def _script_json(value: Any) -> Any:
    """JSON safe inside ``<script type="application/json">`` (no ``</script>`` can close it early)."""
    from markupsafe import Markup

    text = json.dumps(value, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def _query_string(filters: dict[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in filters.items() if k not in ("page", "token") and v})


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    # static/ too: base.html inlines dashboard.css (one request less per page)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader([str(TEMPLATES), str(TEMPLATES.parent / "static")]),
                             autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters.update(age=_age, when=_when, money=_money, metric=_metric, cost=job_cost,
                       tojson_attr=_script_json, qs=_query_string)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``template`` with ``context``."""
    return _environment().get_template(template).render(**context)


def warm_up() -> None:
    """Compile every template and load the plugins now, so that the first page is as fast as the rest."""
    env = _environment()
    for template in [*env.list_templates(extensions=["html"]), "dashboard.css"]:
        env.get_template(template)
    provider_names()
    from cloudbridge.dashboard.data import page_of_jobs

    page_of_jobs(size=1)  # opens the store (schema check) and imports what a page of jobs needs
    import cloudbridge.sdk  # noqa: F401 - job pages and Cancel use it


def provider_names() -> list[str]:
    """Every registered provider plus any provider that has recorded jobs."""
    from cloudbridge.jobstore.store import JobStore
    from cloudbridge.plugins import provider_infos

    names = set(provider_infos())
    with JobStore.default().connect() as conn:
        names.update(row[0] for row in conn.execute("SELECT DISTINCT provider FROM jobs"))
    return sorted(names)


def chart_data(job_id: str, history: MetricHistory) -> dict[str, Any]:
    """What the charts draw for one job: loss per step, eval metrics per epoch, the NER table."""
    epoch = {name: history.per_epoch(name) for name in EPOCH_METRICS if history.per_epoch(name)}
    return {"job_id": job_id, "loss": history.series("loss"), "eval_loss": history.series("eval_loss"),
            "epoch": epoch, "points": len(history), "tables": history.tables}


def job_context(job: Any, compare: str) -> dict[str, Any]:
    """Everything ``job.html`` shows about ``job``; ``compare`` is a comma-separated list of job ids to overlay."""
    import yaml

    from cloudbridge import sdk
    from cloudbridge.errors import CloudbridgeError
    from cloudbridge.jobstore.store import JobStore

    store = JobStore.default()
    history = job.metric_history()
    overlays, missing = [], []
    for other in [c.strip() for c in compare.split(",") if c.strip() and c.strip() != job.id][:5]:
        try:
            other_job = sdk.get_job(other)
        except CloudbridgeError:
            missing.append(other)
            continue
        overlays.append(chart_data(other_job.id, other_job.metric_history()))
    try:
        spec = store.spec(job.id)
    except CloudbridgeError:
        spec = None
    events = job.extra.get("events") or store.events(job.id)
    recent = [j.id for j in store.list(limit=30) if j.id != job.id]
    return {
        "job": job,
        "events": events,
        "spec_yaml": yaml.safe_dump(spec, sort_keys=False, default_flow_style=False) if spec else "",
        "outputs": (spec or {}).get("outputs") or {},
        "cost": job_cost(job),
        "history": history,
        "charts": {"main": chart_data(job.id, history), "overlays": overlays},
        "compare": compare,
        "missing": missing,
        "recent": recent,
        "how_to_record": HOW_TO_RECORD,
        "ner": history.tables.get("ner_per_tag"),
        "latest": history.latest(),
    }
