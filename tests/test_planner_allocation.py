"""Batch allocation: hand-checked optima, exhaustive-search agreement, hypothesis properties (every plan
satisfies every constraint; MILP never costs more than greedy) and one-line bad-input errors."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cloudbridge.errors import InvalidSpec, ResourceUnavailable
from cloudbridge.planner.allocation import AllocationResult, Assignment, _build, allocate, verify
from cloudbridge.planner.batch import Pool, Resource, Task, fits, load_pool, load_tasks, make_pool, make_tasks


def local(name: str, gpus: int, *, mem: float = 80, accel: str | None = "A100-80GB", price: float = 0.0,
          speed: float = 1.0) -> Resource:
    return Resource(name, "local", accel, 1, gpus, mem, price, speed)


def cloud(name: str, per_unit: int, units: int, price: float, *, provider: str = "aws", mem: float = 80,
          accel: str | None = "A100-80GB", speed: float = 1.0) -> Resource:
    return Resource(name, provider, accel, per_unit, units, mem, price, speed)


def by_task(result: AllocationResult) -> dict[str, str]:
    return {a.task: a.resource for a in result.assignments}


def test_milp_beats_greedy_on_a_hand_checked_instance() -> None:
    # Local has 10 GPU-hours, the tasks need 11: one goes to the $2/h cloud GPU.
    # Sending t2 (5h) costs $10, sending t1 (6h) $12: optimum $10. Greedy serves t2 (earliest
    # deadline) first on the free GPU and must send t1: $12.
    pool = Pool((local("box", 1), cloud("c", 1, 1, 2.0)), horizon_hours=10)
    tasks = [Task("t1", 1, 6.0), Task("t2", 1, 5.0, deadline_hours=5.0)]
    plan = allocate(tasks, pool)
    assert plan.milp.status == "optimal"
    assert plan.best.cost == pytest.approx(10.0)
    assert by_task(plan.best) == {"t1": "box", "t2": "c"}
    assert plan.greedy.cost == pytest.approx(12.0)
    assert plan.greedy_ratio == pytest.approx(1.2)
    assert plan.gap == pytest.approx(0.0, abs=1e-6)
    assert verify(tasks, pool, plan.best) == [] and verify(tasks, pool, plan.greedy) == []
    assert plan.best.late == []


def test_the_lower_priority_deadline_is_given_up() -> None:
    # One GPU, two 4h tasks both due at 4h: only one can be on time; priority decides which.
    pool = Pool((local("box", 1),), horizon_hours=8)
    tasks = [Task("a", 1, 4.0, priority=0, deadline_hours=4.0), Task("b", 1, 4.0, priority=5, deadline_hours=4.0)]
    plan = allocate(tasks, pool)
    assert plan.best.missed_deadlines == ["a"]
    assert {a.task: a.on_time for a in plan.best.assignments} == {"a": False, "b": True}
    timeline = {a.task: (a.start, a.end) for a in plan.best.assignments}
    assert timeline == {"b": (0.0, 4.0), "a": (4.0, 8.0)}
    assert plan.best.cost == 0.0


def test_whole_instances_are_billed() -> None:
    # 2 GPUs for 1h: one 8-GPU instance costs $32, two 1-GPU instances $10.
    pool = Pool((cloud("p4", 8, 1, 32.0), cloud("g", 1, 2, 5.0)), horizon_hours=4)
    plan = allocate([Task("t", 2, 1.0)], pool)
    assert by_task(plan.best) == {"t": "g"}
    assert plan.best.assignments[0].units == 2 and plan.best.cost == pytest.approx(10.0)


def test_provider_quota_is_respected() -> None:
    # aws may use 1 GPU at once: 10 GPU-hours over the horizon; the second task goes to gcp.
    pool = Pool((cloud("aws1", 1, 4, 1.0), cloud("gcp1", 1, 4, 3.0, provider="gcp")), horizon_hours=10,
                quotas={"aws": 1})
    plan = allocate([Task("a", 1, 10.0), Task("b", 1, 10.0)], pool)
    assert sorted(by_task(plan.best).values()) == ["aws1", "gcp1"]
    assert plan.best.cost == pytest.approx(40.0)


def test_a_quota_is_gpus_at_once_not_on_average() -> None:
    # Two 4-GPU instances, but aws may run 4 GPUs at once: the two 4-GPU 1h tasks run one after the
    # other (0-1h, 1-2h), never both at 0 on 8 GPUs.
    pool = Pool((Resource("r", "aws", "A100", 4, 2, 40, 10.0),), horizon_hours=2, quotas={"aws": 4})
    tasks = [Task("a", 4, 1.0), Task("b", 4, 1.0)]
    plan = allocate(tasks, pool)
    spans = sorted((a.start, a.end) for a in plan.best.assignments)
    assert spans == [(0.0, 1.0), (1.0, 2.0)] and plan.best.late == []
    assert verify(tasks, pool, plan.best) == [] and verify(tasks, pool, plan.greedy) == []
    # The verifier itself catches the old layout: both at once is 8 GPUs on a quota of 4.
    both = AllocationResult("bad", [Assignment(t.name, "r", 1, 1.0, 10.0, True, 0.0, 1.0) for t in tasks],
                            20.0, 20.0, [], "feasible", 0.0)
    assert verify(tasks, pool, both) == ["provider aws runs 8 GPUs at once; its quota is 4"]
    # A third task cannot fit the 2h horizon at 4 GPUs at once: it is reported late, not overlapped.
    more = [*tasks, Task("c", 4, 0.5)]
    over = allocate(more, Pool(pool.resources, 2.5, {"aws": 4}))
    assert over.best.late == [] and verify(more, Pool(pool.resources, 2.5, {"aws": 4}), over.best) == []
    tight = Pool(pool.resources, 2.0, {"aws": 4})
    with pytest.raises(ResourceUnavailable):
        allocate(more, tight)  # 10 GPU-hours > 4 GPUs x 2 h: even the fluid model cannot hold them


def test_the_layout_backfills_gaps() -> None:
    # 2 GPUs, 2h. s1 (due 1h) runs 0-1 on one GPU; big needs both, so it runs 1-2; s2 fills the GPU
    # that is idle from 0 to 1 instead of waiting for big to finish (and ending late at 3h).
    pool = Pool((local("box", 2),), horizon_hours=2)
    tasks = [Task("s1", 1, 1.0, deadline_hours=1.0), Task("big", 2, 1.0, deadline_hours=2.0), Task("s2", 1, 1.0)]
    plan = allocate(tasks, pool)
    assert {a.task: (a.start, a.end) for a in plan.best.assignments} == {
        "s1": (0.0, 1.0), "big": (1.0, 2.0), "s2": (0.0, 1.0)}
    assert plan.best.late == [] and verify(tasks, pool, plan.best) == []


def test_quota_deadlines_are_time_indexed() -> None:
    # aws may run 2 GPUs at once. Two 2-GPU tasks of 1h both due at 1h: only one can be on time on aws
    # (4 GPU-hours due by 1h > 2 x 1); the other goes to the dearer gcp instead of being late.
    pool = Pool((cloud("aws2", 2, 2, 1.0), cloud("gcp2", 2, 1, 5.0, provider="gcp")), horizon_hours=4,
                quotas={"aws": 2})
    tasks = [Task("a", 2, 1.0, deadline_hours=1.0), Task("b", 2, 1.0, deadline_hours=1.0)]
    plan = allocate(tasks, pool)
    assert sorted(by_task(plan.best).values()) == ["aws2", "gcp2"] and plan.best.missed_deadlines == []
    assert plan.best.late == [] and plan.best.cost == pytest.approx(1.0 + 5.0)  # $/instance-hour
    assert plan.greedy.late == [] and verify(tasks, pool, plan.greedy) == []


def test_faster_resources_shorten_runs() -> None:
    pool = Pool((cloud("slow", 1, 1, 1.0), cloud("fast", 1, 1, 1.5, speed=2.0)), horizon_hours=10)
    plan = allocate([Task("t", 1, 4.0)], pool)
    assert by_task(plan.best) == {"t": "fast"} and plan.best.assignments[0].hours == 2.0
    assert plan.best.cost == pytest.approx(3.0)


def test_the_packing_margin_keeps_plans_layable_without_preemption() -> None:
    # 3 GPUs x 4h = 12 GPU-hours; four 3h one-GPU tasks fill them exactly in the fluid model, but no
    # non-preemptive layout finishes by 4h: the margin sends one task to the cloud instead.
    pool = Pool((local("box", 3), cloud("c", 1, 1, 1.0)), horizon_hours=4)
    tasks = [Task(f"t{i}", 1, 3.0) for i in range(4)]
    fluid = allocate(tasks, pool)  # the default: the model as is, lateness reported
    assert fluid.best.cost == 0 and len(fluid.best.late) == 1 and fluid.notes == []
    packed = allocate(tasks, pool, repair_rounds=3)
    assert packed.best.cost == pytest.approx(3.0) and packed.best.late == []
    assert packed.notes[0].startswith("layout repair round 1: 1 late task(s)")


def test_a_full_pool_is_one_clear_error() -> None:
    pool = Pool((local("box", 1),), horizon_hours=5)
    with pytest.raises(ResourceUnavailable, match=r"cannot hold all 2 tasks within 5h: they need 8 GPU-hours"):
        allocate([Task("a", 1, 4.0), Task("b", 1, 4.0)], pool)


def _brute_force(tasks: list[Task], pool: Pool) -> float:
    prob = _build(tasks, pool)
    options: list[list[tuple[int, bool]]] = []
    for t, task in enumerate(tasks):
        opts = []
        for p, (pt, _) in enumerate(prob.pairs):
            if pt != t:
                continue
            if prob.on_time_ok[p]:
                opts.append((p, True))
            if task.deadline_hours is not None:
                opts.append((p, False))
        options.append(opts)
    best = math.inf
    for combo in itertools.product(*options):
        assignments = []
        for p, on in combo:
            t, r = prob.pairs[p]
            assignments.append(Assignment(tasks[t].name, pool.resources[r].name, int(prob.units[p]),
                                          float(prob.hours[p]), float(prob.cost[p]), on))
        result = AllocationResult("brute", assignments, 0.0, 0.0, [], "feasible", 0.0)
        if verify(tasks, pool, result):
            continue
        objective = sum(prob.cost[p] for p, _ in combo) + prob.penalty * sum(
            1 + tasks[prob.pairs[p][0]].priority for p, on in combo if not on)
        best = min(best, objective)
    return best


ACCELS = ["A100-80GB", "T4"]


@st.composite
def problems(draw: st.DrawFn, max_tasks: int = 6, max_resources: int = 3) -> tuple[list[Task], Pool]:
    resources = []
    for i in range(draw(st.integers(1, max_resources))):
        is_local = draw(st.booleans())
        accel = draw(st.sampled_from(ACCELS))
        mem = 80.0 if accel == "A100-80GB" else 16.0
        speed = draw(st.sampled_from([0.5, 1.0, 2.0]))
        if is_local:
            resources.append(Resource(f"r{i}", "local", accel, 1, draw(st.integers(1, 3)), mem,
                                      draw(st.sampled_from([0.0, 0.5])), speed))
        else:
            resources.append(Resource(f"r{i}", draw(st.sampled_from(["aws", "gcp"])), accel,
                                      draw(st.sampled_from([1, 2, 4])), draw(st.integers(1, 2)), mem,
                                      draw(st.floats(0.5, 20, allow_nan=False)), speed))
    horizon = draw(st.sampled_from([4.0, 8.0, 24.0]))
    quotas = {"aws": draw(st.integers(1, 8))} if draw(st.booleans()) else {}
    tasks = []
    for i in range(draw(st.integers(1, max_tasks))):
        duration = draw(st.sampled_from([0.5, 1.0, 2.0, 3.0]))
        deadline = draw(st.one_of(st.none(), st.sampled_from([1.0, 2.0, 3.0, 6.0])))
        if deadline is not None and deadline < duration / 2:
            deadline = None
        tasks.append(Task(f"t{i}", draw(st.integers(1, 4)), duration, draw(st.sampled_from([0.0, 16.0, 40.0])),
                          draw(st.integers(0, 3)), deadline, draw(st.sampled_from([None, *ACCELS]))))
    return tasks, Pool(tuple(resources), horizon, quotas)


def _placeable(tasks: list[Task], pool: Pool) -> bool:
    try:
        _build(tasks, pool)
    except ResourceUnavailable:
        return False
    return all(any(fits(t, r) for r in pool.resources) for t in tasks)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(problems())
def test_every_plan_satisfies_every_constraint_and_milp_never_costs_more(problem: tuple[list[Task], Pool]) -> None:
    tasks, pool = problem
    assume(_placeable(tasks, pool))
    try:
        plan = allocate(tasks, pool)
    except ResourceUnavailable:
        return  # neither method could place every task: reported as one error
    assert verify(tasks, pool, plan.best) == []
    # Peak concurrency, recomputed here from start/end: never more units than a resource has, never
    # more GPUs at once than a provider's quota (whatever the horizon and deadlines).
    res = {r.name: r for r in pool.resources}
    for result in (plan.best, plan.milp, plan.greedy):
        if not result.feasible:
            continue
        instants = {a.start for a in result.assignments}
        for t in instants:
            running = [a for a in result.assignments if a.start <= t < a.end]
            for name, resource in res.items():
                assert sum(a.units for a in running if a.resource == name) <= resource.units
            for provider, quota in pool.quotas.items():
                gpus = sum(a.units * res[a.resource].gpus_per_unit for a in running
                           if res[a.resource].provider == provider)
                assert gpus <= quota, f"{provider} runs {gpus} GPUs at {t}h, quota {quota}"
    if plan.greedy.feasible:
        assert verify(tasks, pool, plan.greedy) == []
        assert plan.best.objective <= plan.greedy.objective + 1e-6
    if plan.milp.feasible:
        assert verify(tasks, pool, plan.milp) == []
        if plan.milp.status == "optimal" and plan.greedy.feasible:
            assert plan.milp.objective <= plan.greedy.objective + 1e-6
    assert sorted(a.task for a in plan.best.assignments) == sorted(t.name for t in tasks)
    assert plan.best.cost == pytest.approx(sum(a.cost for a in plan.best.assignments))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(problems(max_tasks=4, max_resources=2))
def test_milp_matches_exhaustive_search(problem: tuple[list[Task], Pool]) -> None:
    tasks, pool = problem
    assume(_placeable(tasks, pool))
    optimum = _brute_force(tasks, pool)
    if optimum == math.inf:
        with pytest.raises(ResourceUnavailable):
            allocate(tasks, pool, repair_rounds=0)
        return
    plan = allocate(tasks, pool, repair_rounds=0)
    assert plan.milp.status == "optimal"
    assert plan.best.objective == pytest.approx(optimum, rel=1e-6, abs=1e-6)


# ---- YAML input and bad input -----------------------------------------------------------------

POOL = """\
horizon: 12h
quotas: {aws: 16}
resources:
  - name: box
    provider: local
    accelerator: A100-80GB
    gpus: 2
    gpu_memory: 80
  - name: g5
    provider: aws
    region: us-east-1
    instance_type: ml.g5.xlarge
    quota: 4
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_yaml_pool_uses_catalog_prices(tmp_path: Path) -> None:
    pool = load_pool(write(tmp_path, "pool.yaml", POOL))
    g5 = pool.resources[1]
    assert (g5.accelerator, g5.gpus_per_unit, g5.units, g5.price_per_unit_hour) == ("A10G", 1, 4, 1.408)
    assert pool.horizon_hours == 12 and pool.quotas == {"aws": 16}
    tasks = load_tasks(write(tmp_path, "tasks.yaml", "tasks:\n  - {name: a, gpus: 1, duration: 2h}\n"
                             "  - {name: b, gpus: 1, duration: 1h30m, gpu_memory: 40, priority: 2, deadline: 3h}\n"),
                       pool)
    assert tasks[1] == Task("b", 1, 1.5, 40.0, 2, 3.0, None)


@pytest.mark.parametrize(
    ("tasks_yaml", "message"),
    [
        ("tasks:\n  - name: big\n    gpus: 1\n    gpu_memory: 100\n    duration: 1h\n",
         "tasks.yaml:4: tasks[0].gpu_memory: task 'big' needs 100 GB per GPU; the largest in the pool is 80 GB (box)"),
        ("tasks:\n  - name: rush\n    gpus: 1\n    duration: 5h\n    deadline: 2h\n",
         "tasks.yaml:5: tasks[0].deadline: task 'rush' has deadline 2h but needs at least 5h to run"),
        ("tasks:\n  - name: typo\n    accelerator: A10\n    duration: 1h\n",
         "tasks.yaml:3: tasks[0].accelerator: task 'typo': unknown accelerator 'A10'"),
        ("tasks:\n  - name: wide\n    gpus: 64\n    duration: 1h\n",
         "tasks.yaml:3: tasks[0].gpus: task 'wide' needs 64 GPUs at once; the most any suitable resource has is 4"),
        ("tasks:\n  - name: long\n    duration: 20h\n", "tasks[0].duration: task 'long' needs 20h but the pool"),
        ("tasks:\n  - name: x\n    duration: soon\n", "tasks.yaml:3: tasks.0.duration: 'soon' is not a duration"),
        ("tasks:\n  - name: x\n    duration: 1h\n    colour: red\n", "tasks.yaml:4: tasks.0.colour: unknown field"),
        ("tasks:\n  - {name: x, duration: 1h}\n  - {name: x, duration: 1h}\n",
         "tasks.yaml:3: tasks[1].name: duplicate"),
        ("tasks:\n  - name: [unclosed\n", "tasks.yaml:3: malformed YAML"),
    ],
)
def test_bad_tasks_are_one_line_with_file_and_line(tmp_path: Path, tasks_yaml: str, message: str) -> None:
    pool = load_pool(write(tmp_path, "pool.yaml", POOL))
    path = write(tmp_path, "tasks.yaml", tasks_yaml)
    with pytest.raises(InvalidSpec) as info:
        load_tasks(path, pool)
    text = str(info.value)
    assert message.replace("tasks.yaml", path) in text, text
    assert "\n" not in text and info.value.exit_code == 2
    if "A10" in tasks_yaml:
        assert "did you mean 'A10G'" in text


def test_a_pool_without_gpus(tmp_path: Path) -> None:
    pool = make_pool({"resources": [{"name": "cpu", "provider": "local", "gpus": 0}]})
    with pytest.raises(InvalidSpec, match=r"tasks\[0\].gpus: task 'a' needs 2 GPU\(s\) but the pool has no GPUs"):
        make_tasks({"tasks": [{"name": "a", "gpus": 2, "duration": "1h"}]}, pool)


@pytest.mark.parametrize(
    ("pool_yaml", "message"),
    [
        ("resources:\n  - name: p\n    provider: aws\n    instance_type: ml.p4d.24xl\n",
         "pool.yaml:4: resources[0].instance_type: instance type 'ml.p4d.24xl' is not in the catalog for aws "
         "(did you mean 'ml.p4d.24xlarge'?)"),
        ("resources:\n  - name: p\n    provider: acme\n    accelerator: A100\n    gpus: 8\n",
         "pool.yaml:2: resources[0].price: price is missing for resource 'p'"),
        ("resources:\n  - name: p\n    provider: acme\n    accelerator: A100-80\n    gpus: 1\n    price: 1\n",
         "pool.yaml:4: resources[0].accelerator: unknown accelerator 'A100-80' (known: "),
        ("resources:\n  - name: w\n    provider: local\n", "resources[0].gpus: gpus is missing"),
        ("horizon: forever\nresources:\n  - {name: w, provider: local, gpus: 1}\n",
         "pool.yaml:1: horizon: 'forever' is not a duration"),
    ],
)
def test_bad_pools_are_one_line(tmp_path: Path, pool_yaml: str, message: str) -> None:
    path = write(tmp_path, "pool.yaml", pool_yaml)
    with pytest.raises(InvalidSpec) as info:
        load_pool(path)
    assert message.replace("pool.yaml", path) in str(info.value), str(info.value)


def test_catalog_rows_missing_prices_stop_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cloudbridge.planner.catalog import COLUMNS, CatalogError

    bad = write(tmp_path, "bad.csv", ",".join(COLUMNS) + "\nacme,r1,big,A100,8,40,96,1000,,,acme,2025-01-01\n")
    monkeypatch.setenv("CLOUDBRIDGE_CATALOG", bad)
    with pytest.raises(CatalogError, match=r"bad.csv:2: acme/r1/big: price_hour is missing"):
        load_pool(write(tmp_path, "pool.yaml", POOL))


def test_plan_batch_cli_reports_late_tasks_and_repairs_on_request(tmp_path: Path) -> None:
    from fixtures_cli import assert_one_error_line, run_cli

    pool = write(tmp_path, "pool.yaml", "horizon: 4h\nquotas: {acme: 4}\nresources:\n"
                 "  - {name: box, provider: local, gpus: 3}\n"
                 "  - {name: c, provider: acme, accelerator: A100, gpus: 4, gpu_memory: 40, price: 1, quota: 2}\n")
    tasks = write(tmp_path, "tasks.yaml", "tasks:\n" + "".join(
        f"  - {{name: t{i}, duration: 3h}}\n" for i in range(4)) + "  - {name: w, gpus: 4, duration: 1h}\n")
    default = run_cli("plan", "--batch", tasks, "--pool", pool, "--json")
    assert default.returncode == 0, default.stderr
    best = json.loads(default.stdout)["best"]
    # Fluid model: the four 3h tasks fill box's 12 GPU-hours (w takes one $1/h instance for 1h); laid
    # out without preemption, one of them ends late.
    assert best["cost"] == pytest.approx(1.0) and len(best["late_in_timeline"]) == 1
    text = run_cli("plan", "--batch", tasks, "--pool", pool)
    assert "1 task(s) end late in the non-preemptive timeline" in text.stderr and "--repair N" in text.stderr
    repaired = json.loads(run_cli("plan", "--batch", tasks, "--pool", pool, "--repair", "3",
                                                "--json").stdout)
    # Repaired: one 3h task moves to c ($3). The acme quota (4 GPUs at once) lets only one 4-GPU
    # instance run at a time, so it and w run back to back on c: 0-3h and 3-4h, or the other way round.
    assert repaired["best"]["late_in_timeline"] == [] and repaired["best"]["cost"] == pytest.approx(4.0)
    assert any(n.startswith("layout repair round 1") for n in repaired["notes"])
    on_c = sorted((a["start"], a["end"]) for a in repaired["best"]["assignments"] if a["resource"] == "c")
    assert len(on_c) == 2 and on_c[0][1] <= on_c[1][0] and on_c[1][1] <= 4.0
    assert_one_error_line(run_cli("plan", "--batch", tasks, "--pool", pool, "--repair", "-1"), "--repair")
