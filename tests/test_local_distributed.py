"""``distribution: torchrun|accelerate`` on the local backend: real gloo processes on CPU.

The supervisor exports ``CB_NUM_PROCESSES``, ``CB_GPU_IDS``, ``MASTER_ADDR``/``MASTER_PORT`` and
``CB_DISTRIBUTION`` and runs ``cloudbridge-launch -- RUN``, which starts one worker per process.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from fixtures_local import local_compute, spec

from cloudbridge.records import JobState

ALL_REDUCE = textwrap.dedent(
    """
    import os
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    value = torch.tensor([dist.get_rank() + 1.0])
    dist.all_reduce(value)
    print(f"rank={dist.get_rank()} world={dist.get_world_size()} local_rank={os.environ['LOCAL_RANK']} "
          f"sum={value.item():g} master={os.environ['MASTER_ADDR']}", flush=True)
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("distribution", ["torchrun", "accelerate"])
def test_two_gloo_processes_on_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, distribution: str) -> None:
    pytest.importorskip("torch")
    compute = local_compute(monkeypatch)
    (tmp_path / "allreduce.py").write_text(ALL_REDUCE)
    job = compute.submit(spec(tmp_path, "python allreduce.py", name=f"dist-{distribution}",
                              distribution=distribution, resources={"processes": 2}))
    job = compute.wait(job.id, 300)
    lines = list(compute.logs(job.id))
    assert job.state == JobState.SUCCEEDED, "\n".join(lines)
    # a multi-process job's lines carry their rank by default (tagged or not, every such line is kept)
    ranks = sorted(line for line in lines if line.startswith("rank=") or "] rank=" in line)
    assert ranks == [
        "[rank0] rank=0 world=2 local_rank=0 sum=3 master=127.0.0.1",
        "[rank1] rank=1 world=2 local_rank=1 sum=3 master=127.0.0.1",
    ], lines
