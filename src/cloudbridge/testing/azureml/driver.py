"""``AzureMLDriver``: the Azure ML fake's back door for :class:`~cloudbridge.testing.managed.ManagedComputeConformance`.

With ``fake.hold_jobs = True`` new jobs stay Queued and run nothing; the driver then sets each job's
status, run times and Azure-shaped error the way Azure ML would report them:

* run-time cap: ``Failed`` with ``JobTimeout`` ("exceeded its time limit" of ``limits.timeout``);
* low-priority preemption: ``Failed`` with ``JobPreempted`` ("preempted N time(s)"), or with
  ``NoLowPriorityCapacity`` when no low-priority node could be had at all.
"""

from __future__ import annotations

import re
import time
from typing import Any

from cloudbridge.reasons import NON_ZERO_EXIT, OUT_OF_MEMORY, QUOTA_EXCEEDED
from cloudbridge.testing.managed import ManagedDriver

__all__ = ["AzureMLDriver"]


class AzureMLDriver(ManagedDriver):
    """Moves held jobs of an :class:`~cloudbridge.testing.azureml.server.AzureMLFake` between states."""

    failure_messages = {
        "Execution failed. User process exited with status code 3.": f"{NON_ZERO_EXIT} (code 3)",
        "The job ran out of memory: process killed (OOMKilled).": OUT_OF_MEMORY,
        "Not enough quota available for Standard_D4s_v3 in this region.": QUOTA_EXCEEDED,
    }

    def __init__(self, fake: Any) -> None:
        self.fake = fake

    def _run(self, name: str) -> Any:
        return self.fake.runs[name]

    def provisioning(self, native_id: str) -> None:
        self._run(native_id).status = "Preparing"

    def running(self, native_id: str) -> None:
        run = self._run(native_id)
        run.started_at, run.status = time.time(), "Running"

    def _end(self, native_id: str, used: float, code: str, message: str) -> None:
        run = self._run(native_id)
        now = time.time()
        run.started_at, run.ended_at = now - used, now
        run.error = {"code": code, "message": message}
        run.status = "Failed"

    def failed(self, native_id: str, message: str) -> None:
        self._end(native_id, 5, "UserError", message)

    def hit_runtime_cap(self, native_id: str, used: int) -> None:
        cap = self.runtime_cap(native_id)
        self._end(native_id, used, "JobTimeout", f"The job exceeded its time limit of {cap} seconds (limits.timeout) "
                  "and was stopped.")

    def spot_gave_up(self, native_id: str, interruptions: int, used: int) -> None:
        if interruptions:
            self._end(native_id, used, "JobPreempted", f"The low priority node running the job was preempted "
                      f"{interruptions} time(s); the job was stopped.")
        else:
            self._end(native_id, used, "NoLowPriorityCapacity", "No low priority capacity was available for the "
                      "job; it was stopped.")

    def age(self, native_id: str, seconds: float) -> None:
        self.fake.jobs[native_id]["created"] -= seconds

    def runtime_cap(self, native_id: str) -> int:
        timeout = self.fake.jobs[native_id]["properties"]["limits"]["timeout"]
        h, m, s = (int(x or 0) for x in re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", timeout).groups())
        return h * 3600 + m * 60 + s

    def was_stopped(self, native_id: str) -> bool:
        return bool(self._run(native_id).cancel_requested)
