"""A job migrated to Slurm reads an ``s3://`` input the cluster downloads itself and a local input that
``cloudbridge migrate --to slurm`` staged: one small job on the real cluster, against a moto server.

The object store's credentials reach the job the way the plugin intends: through the submitting
environment (sbatch passes it on), never written into the staged files.
"""

from __future__ import annotations

import os
import shlex
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from cloudbridge_slurm.localcluster import LocalCluster

from cloudbridge.testing.emulators import MotoServer, moto_available, moto_server

READER = textwrap.dedent('''
    import os, pathlib
    for channel in ("LOCAL", "REMOTE"):
        root = pathlib.Path(os.environ["CB_INPUT_" + channel])
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            text = path.read_text().strip().replace("\\n", " | ")
            print("READ", channel, path.relative_to(root).as_posix(), text, flush=True)
''')


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    """A moto server (S3) on 127.0.0.1 for this module."""
    if not moto_available():
        pytest.skip("moto[server] is not installed: pip install 'moto[server]'")
    with moto_server() as server:
        yield server


def test_migrated_job_reads_a_staged_input_and_an_s3_input_downloaded_on_the_cluster(
        slurm_cluster: LocalCluster, staging_root: Path, moto: MotoServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"cb-sentinel-{uuid.uuid4().hex}"  # moto takes any key; this one must never land in a file
    for name, value in {**moto.env(), "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": secret}.items():
        monkeypatch.setenv(name, value)
    staging = staging_root / "uri-inputs"
    for name, value in {"CLOUDBRIDGE_HOME": str(tmp_path / "home"), "CLOUDBRIDGE_SLURM_STAGING_DIR": str(staging),
                        "CLOUDBRIDGE_SLURM_NODE_LOCAL": '["/dev/shm"]', "CLOUDBRIDGE_SLURM_POLL_INTERVAL": "0.3",
                        "CLOUDBRIDGE_SLURM_SETUP": f"export PATH={shlex.quote(os.path.dirname(sys.executable))}:$PATH",
                        }.items():
        monkeypatch.setenv(name, value)
    s3 = moto.client("s3")
    bucket = f"cb-slurm-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="prefix/rows.csv", Body=b"text,label\nfine,1\n")
    s3.put_object(Bucket=bucket, Key="prefix/sub/more.txt", Body=b"from the bucket\n")
    s3.put_object(Bucket=bucket, Key="prefix-other/not-mine.txt", Body=b"outside the prefix\n")
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    (project / "data" / "notes.txt").write_text("staged by migrate\n")
    (project / "read.py").write_text(READER)
    job_yaml = project / "job.yaml"
    job_yaml.write_text(yaml.safe_dump({
        "name": "uri-inputs", "provider": "local", "workdir": ".", "run": "python read.py", "distribution": "none",
        "inputs": {"local": "./data", "remote": f"s3://{bucket}/prefix"}, "resources": {"max_runtime": "5m"},
    }))

    import cloudbridge.sdk as sdk
    from cloudbridge.migrate import migrate
    from cloudbridge.records import JobState

    plan = migrate(job_yaml, to="slurm")
    migrated = yaml.safe_load(Path(plan.spec_path).read_text())  # type: ignore[arg-type]
    assert migrated["inputs"]["remote"] == f"s3://{bucket}/prefix", "a URI input stays a URI"
    assert migrated["inputs"]["local"] == f"{plan.prefix}/inputs/local"
    staged = staging / plan.prefix.removeprefix("slurm://staging/") / "inputs" / "local"
    assert (staged / "notes.txt").read_text() == "staged by migrate\n"

    job = sdk.run(plan.spec_path, wait=True, timeout=120)  # type: ignore[arg-type]
    logs = list(sdk.logs(job.id))
    assert job.state is JobState.SUCCEEDED, (job.reason, job.detail, logs[-20:])
    read = sorted(line for line in logs if line.startswith("READ "))
    assert read == ["READ LOCAL notes.txt staged by migrate", "READ REMOTE rows.csv text,label | fine,1",
                    "READ REMOTE sub/more.txt from the bucket"], logs
    assert "[cloudbridge] downloading input remote" in logs
    job_dir = Path(job.extra["job_dir"])
    downloaded = job_dir / "inputs" / "remote"
    assert sorted(p.relative_to(downloaded).as_posix() for p in downloaded.rglob("*") if p.is_file()) == \
        ["rows.csv", "sub/more.txt"], "downloaded on the cluster, into the job's folder"
    written = [job_yaml.with_name("job.slurm.yaml"), *(p for p in job_dir.rglob("*") if p.is_file()),
               *(p for p in (tmp_path / "home").rglob("*") if p.is_file())]
    leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
    assert not leaks, f"the secret key was written to {leaks}"
    assert "AWS_SECRET_ACCESS_KEY" not in (job_dir / "job.sbatch").read_text()
    assert job_dir.stat().st_mode & 0o777 == 0o700, "the job's folder is private"
