"""What SageMaker does not enforce by itself, enforced whenever a job is read (``get``).

* **start_timeout** -- a job still provisioning (``Pending``/``Starting``/``Downloading``...,
  never ``Training``) longer than ``resources.start_timeout`` after it was created is tagged
  ``cloudbridge:stopped-by=start_timeout`` and stopped; it reads ``FAILED``,
  ``timed out: provisioning exceeded start_timeout 15m`` from then on, in every process.
* **max_restarts** -- a spot job with ``checkpoints`` that SageMaker ended for lack of spot capacity
  (``Stopped``/``MaxWaitTimeExceeded``) is resubmitted as ``<name>-r<N>`` with the same request
  (see :mod:`cloudbridge_aws.restarts`), up to ``max_restarts`` times, within what is left of
  ``max_runtime`` and the budget. Restarts are found again by name (``ListTrainingJobs
  NameContains``), so any process sees the same attempts.
* the budget and ``max_runtime`` are enforced by SageMaker itself (``StoppingCondition``, see
  :mod:`cloudbridge_aws.limits`); here a job stopped by that cap is named ``budget exceeded`` or
  ``timed out: running stage exceeded max_runtime 4h``.

Everything needed is in the job's tags, so no local state is required.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from cloudbridge.errors import CloudbridgeError, ConflictError, StageTimeout
from cloudbridge.records import Job, JobState
from cloudbridge_aws.errors import aws_errors
from cloudbridge_aws.limits import LIMITS_TAG, MIN_BUDGET_SECONDS, STOPPED_BY_TAG, Limits, fmt_duration
from cloudbridge_aws.logs import read_logs
from cloudbridge_aws.restarts import request_from_description, restart_number, restart_request
from cloudbridge_aws.states import SPOT_REASONS, attempt_record, ever_trained, job_from_description, used_seconds

__all__ = ["SageMakerLifecycle", "follow_logs"]

_LIMIT_STOPS = ("MaxRuntimeExceeded", "MaxWaitTimeExceeded")


class SageMakerLifecycle:
    """Attempt tracking, ``start_timeout`` and spot restarts for :class:`~cloudbridge_aws.compute.SageMakerCompute`."""

    sagemaker: Any
    _tag_cache: dict[str, dict[str, str]]
    _stopped: dict[str, str]
    _requests: dict[str, dict[str, Any]]
    _spec_names: dict[str, str]

    def _describe_name(self, name: str) -> dict[str, Any]:  # pragma: no cover - implemented by the compute
        raise NotImplementedError

    # ---- tags ------------------------------------------------------------------------------------
    def _tags(self, desc: dict[str, Any], fresh: bool = False) -> dict[str, str]:
        """The job's tags (read once per job unless ``fresh``); ``{}`` when they cannot be read."""
        name = desc["TrainingJobName"]
        if name in self._tag_cache and not fresh:
            return self._tag_cache[name]
        arn = desc.get("TrainingJobArn")
        if not arn:
            return {}
        try:
            with aws_errors("read the job's tags", resource=name):
                tags: dict[str, str] = {}
                for page in self.sagemaker.get_paginator("list_tags").paginate(ResourceArn=arn):
                    tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
        except CloudbridgeError:
            return {}  # tags add names and limits; a job without them still reads correctly
        self._tag_cache[name] = tags
        return tags

    def _stopped_by(self, desc: dict[str, Any]) -> str | None:
        """Why cloudbridge stopped this job (``start_timeout``), or ``None`` (a user's cancel, or running)."""
        name = desc["TrainingJobName"]
        if name in self._stopped:
            return self._stopped[name] or None
        if desc.get("TrainingJobStatus") not in ("Stopping", "Stopped") or desc.get("SecondaryStatus") in _LIMIT_STOPS:
            return None
        found = self._tags(desc, fresh=True).get(STOPPED_BY_TAG, "")
        self._stopped[name] = found
        return found or None

    # ---- attempts --------------------------------------------------------------------------------
    def _restart_names(self, original: str) -> list[str]:
        """Names of the restarts of ``original``, oldest first."""
        found: dict[int, str] = {}
        paginator = self.sagemaker.get_paginator("list_training_jobs")
        with aws_errors("list the job's restarts", resource=original):
            for page in paginator.paginate(NameContains=f"{original}-r"):
                for summary in page.get("TrainingJobSummaries", []):
                    number = restart_number(original, summary["TrainingJobName"])
                    if number is not None:
                        found[number] = summary["TrainingJobName"]
        return [found[n] for n in sorted(found)]

    def track(self, original: str) -> Job:
        """The job whose first SageMaker job is ``original``: every attempt read, limits enforced."""
        first = self._describe_name(original)
        tags = self._tags(first)
        runtime = (first.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        limits = Limits.from_tag(tags.get(LIMITS_TAG), max_runtime=runtime)
        chain = [first]
        if limits.max_restarts:
            chain += [self._describe_name(name) for name in self._restart_names(original)]
        chain[-1] = self._enforce_start_timeout(chain[-1], limits)
        jobs = self._jobs(chain, limits)
        while self._may_restart(chain, jobs, limits):
            chain.append(self._restart(chain, tags, limits))
            chain[-1] = self._enforce_start_timeout(chain[-1], limits)
            jobs = self._jobs(chain, limits)
        return self._merge(original, tags, chain, jobs, limits)

    def _jobs(self, chain: list[dict[str, Any]], limits: Limits) -> list[Job]:
        jobs, used = [], 0.0
        for desc in chain:
            attempt_limits = limits.for_attempt(used) if limits.tagged else limits
            jobs.append(job_from_description(desc, attempt_limits, self._stopped_by(desc)))
            used += used_seconds(desc)
        return jobs

    def _enforce_start_timeout(self, desc: dict[str, Any], limits: Limits) -> dict[str, Any]:
        """Stop a job still provisioning past ``start_timeout``; returns its fresh description."""
        timeout = limits.start_timeout
        if not timeout or desc.get("TrainingJobStatus") != "InProgress" or ever_trained(desc):
            return desc
        created = desc.get("CreationTime")
        if created is None or time.time() - created.timestamp() < timeout:
            return desc
        name = desc["TrainingJobName"]
        with aws_errors("tag the job stopped after start_timeout", resource=name):
            self.sagemaker.add_tags(ResourceArn=desc["TrainingJobArn"],
                                    Tags=[{"Key": STOPPED_BY_TAG, "Value": "start_timeout"}])
        self._stopped[name] = "start_timeout"
        with aws_errors(f"stop the training job after start_timeout {fmt_duration(timeout)}", resource=name):
            self.sagemaker.stop_training_job(TrainingJobName=name)
        return self._describe_name(name)

    def _may_restart(self, chain: list[dict[str, Any]], jobs: list[Job], limits: Limits) -> bool:
        """True when the newest attempt ended for lack of spot capacity and a restart is allowed.

        When one is not allowed, the newest attempt's detail says why.
        """
        newest = jobs[-1]
        if not limits.max_restarts or newest.state is not JobState.FAILED or newest.reason not in SPOT_REASONS:
            return False
        restarts = len(chain) - 1
        left, binding = limits.runtime_left(sum(used_seconds(d) for d in chain))
        if restarts >= limits.max_restarts:
            why = f"no restart left (max_restarts {limits.max_restarts} used)"
        elif left < MIN_BUDGET_SECONDS:
            why = f"not restarted: only {left}s of {'the budget' if binding == 'budget' else 'max_runtime'} left"
        else:
            return True
        newest.detail = f"{newest.detail}; {why}" if newest.detail else why
        return False

    def _restart(self, chain: list[dict[str, Any]], tags: dict[str, str], limits: Limits) -> dict[str, Any]:
        """Submit the next attempt (resuming from the same checkpoints); returns its description."""
        original = chain[0]["TrainingJobName"]
        base = self._requests.get(original) or request_from_description(chain[0], tags)
        request = restart_request(base, len(chain), limits, sum(used_seconds(d) for d in chain))
        name = request["TrainingJobName"]
        try:
            with aws_errors("resubmit the job after spot interruption", resource=name):
                self.sagemaker.create_training_job(**request)
        except ConflictError:
            pass  # another process restarted it a moment ago: same name, same request
        return self._describe_name(name)

    def _merge(self, original: str, tags: dict[str, str], chain: list[dict[str, Any]], jobs: list[Job],
               limits: Limits) -> Job:
        """One cloudbridge job: the newest attempt's state, the first one's id, name and times."""
        first, newest = jobs[0], jobs[-1]
        job = replace(newest, id=f"aws-{original}", metrics=dict(newest.metrics), extra=dict(newest.extra))
        job.name = tags.get("cloudbridge:name") or self._spec_names.get(original) or first.name
        job.created_at = first.created_at
        job.started_at = next((j.started_at for j in jobs if j.started_at is not None), None)
        job.attempts = [attempt_record(desc, n, j) for n, (desc, j) in enumerate(zip(chain, jobs, strict=True), 1)]
        if len(chain) > 1:
            job.extra["native_ids"] = [d["TrainingJobName"] for d in chain]
            job.extra["restarts"] = len(chain) - 1
        if limits.tagged:
            job.extra["limits"] = limits.to_tag()
            if limits.budget_cap is not None:
                job.extra["budget_cap_seconds"] = limits.budget_cap
        return job


def follow_logs(compute: Any, job_id: str, *, follow: bool, timeout: float | None) -> Iterator[str]:
    """The job's log lines, attempt after attempt; ``follow`` keeps reading until the job ends.

    A restart starts with a ``[cloudbridge] attempt N: ...`` line. Past ``timeout`` seconds a follow
    raises :class:`StageTimeout` (stage ``log follow``) naming the job's state; the job keeps running.
    """
    deadline = time.monotonic() + timeout if (follow and timeout is not None) else None
    client = compute.session.client("logs")
    done: list[str] = []
    while True:
        job = compute.get(job_id)
        names = [a["native_id"] for a in job.attempts] or [job.native_id]
        if follow and all(name in done for name in names):
            if job.state.is_terminal:
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise StageTimeout(f"log follow timed out after {timeout:g}s: job {job_id} is still {job.state} "
                                   "and keeps running", stage="log follow")
            time.sleep(compute.poll_interval)
            continue
        for number, name in enumerate(names, 1):
            if name in done:
                continue
            if number > 1:
                previous = job.attempts[number - 2].get("reason") or "the previous attempt ended"
                yield f"[cloudbridge] attempt {number}: SageMaker job {name} (resubmitted after {previous})"
            live = follow and number == len(names) and not job.state.is_terminal

            def is_done(name: str = name) -> bool:
                now = compute.get(job_id)
                return now.state.is_terminal or now.native_id != name

            try:
                yield from read_logs(client, name, follow=live, is_done=is_done,
                                     poll_interval=compute.poll_interval, deadline=deadline)
            except StageTimeout:
                state = compute.get(job_id).state
                raise StageTimeout(
                    f"log follow timed out after {timeout:g}s: job {job_id} is still {state} and keeps running "
                    f"(follow again: cloudbridge logs -f {job_id}; stop it: cloudbridge cancel {job_id})",
                    stage="log follow",
                ) from None
            done.append(name)
        if not follow:
            return
