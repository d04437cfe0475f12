"""cloudbridge's entry point inside a Vertex AI training container (``python -m cloudbridge_gcp.entry``).

Every replica of every worker pool runs it (see :data:`cloudbridge_gcp.custom_job.BOOTSTRAP`). It

1. unpacks the job's code package ``CB_CODE_URI`` (a ``gs://`` URI, read through the Cloud Storage
   FUSE mount ``/gcs/BUCKET/KEY`` that Vertex AI gives every container) into a fresh workdir,
2. installs the workdir's own ``requirements.txt``, when there is one,
3. replaces itself with ``cloudbridge-launch -- $CB_RUN`` in that directory, which reads the Vertex
   contract (``CLUSTER_SPEC``, ``AIP_MODEL_DIR``, ``AIP_CHECKPOINT_DIR``, ``CB_INPUT_*``) and starts
   accelerate or torchrun for this node.

When emulating (``CB_EMULATE_ROOT`` set, as the Vertex fake of :mod:`cloudbridge.testing` does),
``/gcs`` lives under that root, exactly as :mod:`cloudbridge.runtime` maps it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile


def _unpack(package: str, target: str) -> None:
    with tarfile.open(package) as tar:
        tar.extractall(target, filter="data")


def main() -> int:
    """Unpack the code, install its requirements, exec cloudbridge-launch."""
    from cloudbridge.runtime._env import gcs_to_fuse

    run = os.environ.get("CB_RUN", "").strip()
    code = os.environ.get("CB_CODE_URI", "").strip()
    if not run or not code:
        print("cloudbridge: CB_RUN and CB_CODE_URI must be set by the job", file=sys.stderr)
        return 2
    package = gcs_to_fuse(code, os.environ)
    if not os.path.isfile(package):
        print(f"cloudbridge: code package {code} is not readable at {package}", file=sys.stderr)
        return 2
    workdir = os.environ.get("CB_WORKDIR") or tempfile.mkdtemp(prefix="cloudbridge-workdir-")
    os.makedirs(workdir, exist_ok=True)
    _unpack(package, workdir)
    os.chdir(workdir)
    if os.path.isfile("requirements.txt"):
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-input", "-r", "requirements.txt"])
    launcher = shutil.which("cloudbridge-launch")
    argv = [launcher, "--", run] if launcher else [sys.executable, "-m", "cloudbridge.runtime.launch", "--", run]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
