"""Planner commands: ``catalog``, ``resources``, ``plan``, ``queue`` and ``cost``.

A thin layer over :mod:`cloudbridge.planner`; everything heavy (numpy, scipy, pydantic) is
imported inside the command bodies so ``cloudbridge --help`` stays fast.
"""

from __future__ import annotations

import time
from typing import Any

import typer

__all__ = ["register"]

PANEL = "Planning and cost"


def _money(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"${value:,.{digits}f}"


def catalog_command(
    accelerator: str = typer.Option(None, "--accelerator", "-a", help="GPU type, e.g. A100 (a family) or A100-80GB."),
    provider: str = typer.Option(None, "--provider", "-p", help="Only this provider (aws, gcp, azure, ...)."),
    region: str = typer.Option(None, "--region", help="Only this region."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List instance types and prices from the planner catalog (list prices: estimates)."""
    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.planner.catalog import load_catalog

    catalog = load_catalog()
    rows = sorted(catalog.filter(provider=provider, accelerator=accelerator, region=region),
                  key=lambda r: (r.provider, r.accelerator or "", r.accelerator_count, r.price_hour, r.region))
    if json_output:
        echo_json({"version": catalog.version, "sources": [s for s, _ in catalog.sources],
                   "rows": [r.to_dict() for r in rows]})
        return
    print_table(
        ["PROVIDER", "REGION", "INSTANCE", "GPUS", "GPU MEM", "VCPUS", "MEMORY", "$/H", "SPOT $/H", "PRICE DATE"],
        [[r.provider, r.region, r.instance_type, f"{r.accelerator_count}x{r.accelerator}" if r.accelerator else "-",
          f"{r.gpu_memory_gb:g} GB" if r.accelerator else "", f"{r.vcpus:g}", f"{r.memory_gb:g} GB",
          _money(r.price_hour, 3), _money(r.spot_price_hour, 3) or "-", r.price_date] for r in rows],
    )
    typer.echo(f"{len(rows)} offerings; catalog version {catalog.version}; list prices are estimates "
               "(see price_source in --json)", err=True)


def _provider_resources(provider: str, json_output: bool) -> None:
    """``resources --provider NAME``: the provider's own machines (e.g. a Slurm cluster's partitions)."""
    from cloudbridge.backends import get_provider
    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.reasons import fmt_duration

    rows = get_provider(provider).resources()
    if json_output:
        echo_json({"provider": provider, "rows": rows})
        return
    print_table(
        ["PARTITION", "NODES", "USABLE", "GPUS/NODE", "CPUS", "MEMORY", "MAX TIME", "STATE"],
        [[r.get("partition", ""), r.get("nodes", ""), r.get("usable", ""),
          f"{r['gpus_per_node']}x{r.get('gpu_type') or 'GPU'}" if r.get("gpus_per_node") else "-",
          r.get("cpus", ""), f"{r.get('memory_gb', 0):g} GB",
          "unlimited" if r.get("max_time_s") is None else fmt_duration(r["max_time_s"]),
          ",".join(r.get("node_states") or [str(r.get("state", ""))])] for r in rows],
    )


def resources_command(
    provider: str = typer.Option(None, "--provider", "-p",
                                 help="A provider with machines of its own (e.g. slurm) instead of this machine."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show this machine's GPUs, CPUs and memory as the planner sees them, or (--provider) a provider's machines.

    With ``--provider``: the machines a provider owns (a Slurm cluster's partitions from sinfo).
    """
    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.planner.probe import local_rows, probe_local

    if provider and provider != "local":
        _provider_resources(provider, json_output)
        return

    res = probe_local()
    rows = local_rows(res)
    if json_output:
        echo_json({**res.to_dict(), "rows": [r.to_dict() for r in rows]})
        return
    typer.echo(f"CPUs: {res.cpus}  memory: {res.memory_gb:g} GB  GPUs: {len(res.gpus)} (probe: {res.gpu_source})")
    if res.gpus:
        print_table(
            ["INDEX", "NAME", "ACCELERATOR", "MEMORY", "FREE", "UTIL"],
            [[g.index, g.name, g.accelerator, f"{g.memory_gb:g} GB",
              "" if g.free_memory_gb is None else f"{g.free_memory_gb:g} GB",
              "" if g.utilization is None else f"{g.utilization:g}%"] for g in res.gpus],
        )


def _vocabulary() -> set[str]:
    """Every accelerator name the planner knows: builtin, catalog and this machine's GPUs."""
    from cloudbridge.planner.accelerators import KNOWN_ACCELERATORS
    from cloudbridge.planner.catalog import load_catalog
    from cloudbridge.planner.probe import probe_local

    vocabulary = set(KNOWN_ACCELERATORS) | load_catalog().accelerators()
    return vocabulary | {g.accelerator for g in probe_local().gpus if g.accelerator}


def _rates(text: str, vocabulary: set[str] | None = None) -> dict[str, float]:
    """``--throughput`` parsed (names normalised against ``vocabulary``, default :func:`_vocabulary`)."""
    from cloudbridge.planner.throughput import parse_throughput

    return parse_throughput(text, vocabulary=_vocabulary() if vocabulary is None else vocabulary)


def _plan_job(path: str, providers: str | None, max_price: float | None, limit: int, json_output: bool,
              throughput: str | None = None, samples: float | None = None) -> None:
    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.errors import ResourceUnavailable, UserError
    from cloudbridge.planner.placement import plan_job
    from cloudbridge.specs import load_job_spec

    spec = load_job_spec(path)
    if (throughput is None) != (samples is None):
        raise UserError("--throughput and --samples go together: the run time is samples / throughput")
    rates = _rates(throughput) if throughput else None
    wanted = [p.strip() for p in providers.split(",") if p.strip()] if providers else None
    from_spec = wanted is None and spec.provider != "auto"  # the spec's provider is a filter; auto considers all
    if from_spec:
        wanted = [spec.provider]
    report = plan_job(spec, providers=wanted, max_price=max_price, throughput=rates, samples=samples)
    if from_spec and not json_output and report.placements:  # an error below stays one line
        typer.echo(f"provider: {spec.provider} (from the spec); --provider a,b or provider: auto for others", err=True)
    if json_output:
        echo_json(report.to_dict())
    elif report.placements:
        shown = report.placements[:limit] if limit > 0 else report.placements
        if shown:
            print_table(
                ["#", "PROVIDER", "REGION", "INSTANCE", "NODES", "GPUS/NODE", "$/H", "EST. HOURS", "EST. TOTAL",
                 "INSTALLED"],
                [[i + 1, p.provider, p.region, p.instance_type, p.nodes,
                  f"{p.gpus_per_node}x{p.accelerator}" if p.accelerator else "-", _money(p.hourly),
                  "" if p.runtime_hours is None else f"{p.runtime_hours:.2f}",
                  _money(p.total_cost) or ("(no rate)" if rates else "(no max_runtime)"),
                  "yes" if p.installed else f"no: {p.install_hint}"]
                 for i, p in enumerate(shown)],
            )
        more = len(report.placements) - len(shown)
        typer.echo(f"{len(report.placements)} feasible of {report.considered} offerings"
                   + (f" ({more} more: --limit 0)" if more > 0 else "") + "; prices are estimates", err=True)
        if rates:
            typer.echo(f"run time = {samples:g} samples / measured throughput (linear in GPUs, capped at "
                       "max_runtime); ranked by estimated total", err=True)
        for line in report.explain():
            typer.echo(f"excluded: {line}", err=True)
    if not report.placements:
        reasons = "; ".join(report.explain()[:2]) or "no offerings"
        scope = f" (only provider {spec.provider}, from the spec; --provider a,b widens it)" if from_spec else ""
        raise ResourceUnavailable(f"no feasible placement for job {spec.name!r}{scope}: {reasons}")


def _plan_batch(tasks_path: str, pool_path: str | None, time_limit: float, json_output: bool,
                repair: int = 0) -> None:
    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.errors import UserError
    from cloudbridge.planner.allocation import allocate
    from cloudbridge.planner.batch import load_pool, load_tasks

    if not pool_path:
        raise UserError("--batch needs --pool POOL.yaml (the resources to allocate)")
    pool = load_pool(pool_path)
    tasks = load_tasks(tasks_path, pool)
    plan = allocate(tasks, pool, time_limit=time_limit, repair_rounds=repair)
    if json_output:
        echo_json(plan.to_dict())
        return
    best = plan.best
    print_table(
        ["TASK", "RESOURCE", "UNITS", "START", "END", "COST", "DEADLINE"],
        [[a.task, a.resource, a.units, f"{a.start:g}h", f"{a.end:g}h", _money(a.cost),
          "given up" if not a.on_time else ("late in timeline" if a.task in best.late else "ok")]
         for a in best.assignments],
    )
    gap = plan.gap
    ratio = plan.greedy_ratio
    typer.echo(f"plan: {best.method} ({best.status}), estimated cost {_money(best.cost)}; greedy "
               f"{_money(plan.greedy.cost) if plan.greedy.feasible else 'infeasible'}"
               + (f" (x{ratio:.3f})" if ratio else "")
               + (f"; optimality gap {gap:.2%}" if gap is not None else ""), err=True)
    if best.missed_deadlines:
        typer.echo(f"deadlines that cannot be met: {', '.join(best.missed_deadlines)}", err=True)
    if best.late:
        shown = ", ".join(best.late[:20]) + (f", ... ({len(best.late) - 20} more)" if len(best.late) > 20 else "")
        typer.echo(f"{len(best.late)} task(s) end late in the non-preemptive timeline (on time only with "
                   f"checkpoint/resume, more room, or --repair N): {shown}", err=True)
    for note in plan.notes:
        typer.echo(f"note: {note}", err=True)


def _partition(global_batch: int, throughput: str | None, gpus: str | None, json_output: bool) -> None:
    from cloudbridge.cli._output import echo_json, print_table
    from cloudbridge.errors import UserError
    from cloudbridge.planner.partition import partition_batch
    from cloudbridge.planner.throughput import rate_for

    if not throughput:
        raise UserError("--partition needs --throughput (samples/s per GPU), e.g. --throughput A100=1200,T4=300")
    vocabulary = _vocabulary()  # catalog + GPU probe: once, for --throughput and --gpus
    rates = _rates(throughput, vocabulary)
    workers: list[tuple[str, str]] = []  # (name, accelerator)
    if gpus is None:
        workers = [(name, name) for name in rates]
    elif gpus.strip().lower() == "local":
        from cloudbridge.planner.probe import probe_local

        workers = [(f"gpu{g.index}", g.accelerator) for g in probe_local().gpus]
        if not workers:
            raise UserError("--gpus local: this machine has no GPUs")
    else:
        from cloudbridge.planner.accelerators import UnknownAccelerator, normalize_accelerator
        from cloudbridge.specs import parse_accelerators

        for part in (p.strip() for p in gpus.split(",") if p.strip()):
            try:
                name, count = parse_accelerators(part) or ("", 0)
                accel = normalize_accelerator(name, vocabulary)
            except ValueError as exc:
                raise UserError(f"--gpus: {exc}") from None
            except UnknownAccelerator as exc:
                raise UserError(f"--gpus: {exc.message}", hint=exc.hint) from None
            workers += [(f"{accel}#{i}", accel) for i in range(count)]
    speeds = {}
    for name, accel in workers:
        rate = rate_for(accel, rates)
        if rate is None:
            raise UserError(f"--throughput has no rate for {accel} (worker {name})",
                            hint=f"add {accel}=SAMPLES_PER_SECOND to --throughput")
        speeds[name] = rate
    sizes: dict[str, int] = partition_batch(global_batch, speeds)  # type: ignore[assignment]
    step = max(sizes[n] / speeds[n] for n in speeds)
    equal = global_batch / len(speeds) / min(speeds.values())
    data = {"global_batch": global_batch, "step_seconds": step, "equal_split_step_seconds": equal,
            "workers": [{"name": n, "accelerator": a, "samples_per_second": speeds[n], "batch": sizes[n]}
                        for n, a in workers]}
    if json_output:
        echo_json(data)
        return
    print_table(["WORKER", "ACCELERATOR", "SAMPLES/S", "BATCH"],
                [[w["name"], w["accelerator"], f"{w['samples_per_second']:g}", w["batch"]] for w in data["workers"]])
    typer.echo(f"global batch {global_batch}: a step takes ~{step:.3g}s at the measured rates "
               f"(an equal split: ~{equal:.3g}s, waiting for the slowest GPU)", err=True)


def plan_command(
    job: str = typer.Argument(None, help="Job spec YAML to place."),
    providers: str = typer.Option(None, "--provider", "--providers", "-p",
                                  help="Only these providers (comma-separated), e.g. aws or aws,gcp."),
    max_price: float = typer.Option(None, "--max-price", min=0, help="Highest USD per hour for the whole job."),
    limit: int = typer.Option(10, "--limit", help="Placements to show (0 = all)."),
    batch: str = typer.Option(None, "--batch", help="Tasks YAML: allocate many tasks to --pool."),
    pool: str = typer.Option(None, "--pool", help="Pool YAML: local GPUs and cloud offerings with quotas."),
    time_limit: float = typer.Option(10.0, "--time-limit", min=0.1, help="MILP time limit in seconds."),
    repair: int = typer.Option(
        0, "--repair", min=0, max=20,
        help="With --batch: re-solve up to N times with less capacity where tasks end late without preemption."),
    throughput: str = typer.Option(
        None, "--throughput",
        help="Measured samples/s per GPU: A100=1200,T4=300 (a number, a metrics.json path or a job id each)."),
    samples: float = typer.Option(None, "--samples", min=1,
                                  help="Samples the job processes (dataset x epochs); with --throughput."),
    partition: int = typer.Option(None, "--partition", min=1,
                                  help="Split this global batch across GPUs by --throughput (no JOB.yaml)."),
    gpus: str = typer.Option(None, "--gpus", help="With --partition: A100:2,T4:1, or 'local' (this machine)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Where could a job run, cheapest first (and why not elsewhere); or allocate tasks, or split a batch.

    --batch TASKS.yaml --pool POOL.yaml allocates many tasks; --partition N splits a global
    batch across unequal GPUs by their measured throughput.
    """
    from cloudbridge.errors import UserError

    if gpus is not None and partition is None:
        raise UserError("--gpus is used with --partition GLOBAL_BATCH")
    if partition is not None:
        if job or batch:
            raise UserError("--partition stands alone: give no JOB.yaml or --batch with it")
        _partition(partition, throughput, gpus, json_output)
        return
    if batch:
        if job:
            raise UserError("give either JOB.yaml or --batch TASKS.yaml --pool POOL.yaml, not both")
        _plan_batch(batch, pool, time_limit, json_output, repair)
        return
    if not job:
        raise UserError("missing JOB.yaml (or --batch TASKS.yaml --pool POOL.yaml)")
    if pool:
        raise UserError("--pool is used with --batch TASKS.yaml")
    _plan_job(job, providers, max_price, limit, json_output, throughput, samples)


def _queue_rows() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The local queue in arrival order, and the GPU allocations (``{"gpu", "job_id"}``)."""
    from cloudbridge.jobstore.store import JobStore

    store = JobStore.default()
    with store.connect() as conn:
        rows = conn.execute(
            "SELECT q.seq, q.job_id, q.gpus, q.enqueued_at, q.priority, q.gpu_memory_gb, q.accelerator, "
            "j.name, j.state "
            "FROM local_queue q LEFT JOIN jobs j ON j.id = q.job_id ORDER BY q.seq"
        ).fetchall()
        held = conn.execute("SELECT gpu, job_id FROM local_gpu_allocations ORDER BY gpu").fetchall()
    queued = [{"id": row["job_id"], "name": row["name"], "state": row["state"], "gpus": row["gpus"],
               "enqueued_at": row["enqueued_at"], "priority": row["priority"],
               "gpu_memory_gb": row["gpu_memory_gb"], "accelerator": row["accelerator"]} for row in rows]
    return queued, [{"gpu": h["gpu"], "job_id": h["job_id"]} for h in held]


def _gpus_label(row: dict[str, Any]) -> str:
    """``2xA100 >=40GB``: count, required type and minimum memory per GPU."""
    label = f"{row['gpus']}x{row['accelerator']}" if row["accelerator"] else str(row["gpus"])
    return label + (f" >={row['gpu_memory_gb']:g}GB" if row["gpu_memory_gb"] else "")


def queue_command(json_output: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Show the local GPU queue in the order the scheduler will start jobs, and who holds which GPU."""
    from cloudbridge.cli._output import echo_json, format_duration, print_table
    from cloudbridge.planner.scheduler import DEFAULT_POLICY, effective_priority, queue_order

    now = time.time()
    queued, allocations = _queue_rows()
    order = queue_order(queued, now)
    by_id = {r["id"]: r for r in queued}
    data = [{"position": i + 1, "id": j.id, "name": by_id[j.id]["name"], "gpus": j.gpus,
             "accelerator": j.accelerator, "gpu_memory_gb": j.gpu_memory_gb, "priority": j.priority,
             "effective_priority": round(effective_priority(j, now), 3), "waiting_s": round(now - j.queued_at, 1),
             "reserving": now - j.queued_at >= DEFAULT_POLICY.reserve_after and i == 0}
            for i, j in enumerate(order)]
    if json_output:
        echo_json({"queue": data, "allocations": allocations})
        return
    if not data:
        typer.echo("the local queue is empty", err=True)
    else:
        print_table(["#", "JOB", "NAME", "GPUS", "PRIORITY", "EFFECTIVE", "WAITING"],
                    [[d["position"], d["id"], d["name"], _gpus_label(d), d["priority"],
                      f"{d['effective_priority']:.2f}", format_duration(d["waiting_s"])] for d in data])
    if allocations:
        typer.echo("GPUs in use: " + ", ".join(f"{a['gpu']}={a['job_id']}" for a in allocations), err=True)


def cost_command(
    since: str = typer.Option("7d", "--since", help="Window: 30m, 12h, 7d, 1w, ... ('all' for everything)."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Estimated spend per job and provider from job records x catalog prices (an estimate)."""
    from cloudbridge.cli._output import echo_json, format_duration, parse_duration, print_table
    from cloudbridge.planner.cost import ESTIMATE_LABEL, spend_report

    now = time.time()
    start = None if since.strip().lower() == "all" else now - (parse_duration(since, "--since") or 0)
    report = spend_report(since=start, now=now)
    if json_output:
        echo_json(report.to_dict())
        return
    if report.jobs:
        print_table(["JOB", "NAME", "PROVIDER", "STATE", "RAN", "INSTANCE", "$/H", "COST", "NOTE"],
                    [[j.job_id, j.name, j.provider, j.state, format_duration(j.hours * 3600), j.instance_type or "",
                      _money(j.hourly), _money(j.cost) if j.cost is not None else "unknown", j.note]
                     for j in report.jobs])
    for provider, total in report.by_provider.items():
        typer.echo(f"{provider}: {_money(total)}")
    typer.echo(f"total: {_money(report.total)} over {len(report.jobs)} job(s) since "
               f"{'the beginning' if start is None else since + ' ago'} (ESTIMATE -- {ESTIMATE_LABEL})")
    if report.unpriced:
        typer.echo(f"warning: {len(report.unpriced)} job(s) have no price and are not in the total: "
                   f"{', '.join(report.unpriced)}", err=True)


def register(app: typer.Typer) -> None:
    """Add ``catalog``, ``resources``, ``plan``, ``queue`` and ``cost`` to ``app``."""
    app.command("catalog", rich_help_panel=PANEL)(catalog_command)
    app.command("resources", rich_help_panel=PANEL)(resources_command)
    app.command("plan", rich_help_panel=PANEL)(plan_command)
    app.command("queue", rich_help_panel=PANEL)(queue_command)
    app.command("cost", rich_help_panel=PANEL)(cost_command)
