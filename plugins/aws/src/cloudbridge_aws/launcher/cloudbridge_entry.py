"""cloudbridge's entry point inside a SageMaker training container.

The SageMaker Training Toolkit of the PyTorch Deep Learning Container runs this file on every host
(hyperparameter ``sagemaker_program``) after installing ``requirements.txt`` from the same package
(``cloudbridge-ai``). It then

1. unpacks the job's code package (input channel ``cbcode``) into ``/opt/ml/code/workdir``,
2. installs the workdir's own ``requirements.txt``, when there is one,
3. replaces itself with ``cloudbridge-launch -- $CB_RUN`` in that directory, which reads the SageMaker
   contract (``SM_HOSTS``, ``SM_CURRENT_HOST``, channels, ``/opt/ml/model``, ``/opt/ml/checkpoints``) and
   starts accelerate or torchrun for this node.

It uses only the standard library, so it runs before anything else is installed.
"""

import glob
import os
import shutil
import subprocess
import sys
import tarfile

CODE_CHANNEL = "cbcode"


def _unpack(package: str, target: str) -> None:
    with tarfile.open(package) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, filter="data")
            return
        # Python < 3.10.12 / 3.11.4: no extraction filters. cloudbridge packages hold regular files and
        # folders only, so anything else -- a symlink or hard link (which a later member could be
        # written through, out of the workdir), a device, a fifo -- is refused, as is any path outside.
        root = os.path.realpath(target)
        for member in tar.getmembers():
            path = os.path.realpath(os.path.join(root, member.name))
            if path != root and not path.startswith(root + os.sep):
                raise SystemExit(f"cloudbridge: unsafe path in code package: {member.name}")
            if member.issym() or member.islnk():
                raise SystemExit(f"cloudbridge: link in code package refused: {member.name} -> {member.linkname}")
            if not (member.isfile() or member.isdir()):
                raise SystemExit(f"cloudbridge: special file in code package refused: {member.name}")
        tar.extractall(root)


def main() -> int:
    """Unpack the code, install its requirements, exec cloudbridge-launch."""
    run = os.environ.get("CB_RUN", "").strip()
    if not run:
        print("cloudbridge: CB_RUN (the job's run command) is not set", file=sys.stderr)
        return 2
    channel = os.environ.get("SM_CHANNEL_" + CODE_CHANNEL.upper(), f"/opt/ml/input/data/{CODE_CHANNEL}")
    workdir = os.environ.get("CB_WORKDIR", "/opt/ml/code/workdir")
    os.makedirs(workdir, exist_ok=True)
    for package in sorted(glob.glob(os.path.join(channel, "**", "*.tar.gz"), recursive=True)):
        _unpack(package, workdir)
    os.chdir(workdir)
    if os.path.isfile("requirements.txt"):
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--no-input", "-r", "requirements.txt"])
    launcher = shutil.which("cloudbridge-launch")
    argv = [launcher, "--", run] if launcher else [sys.executable, "-m", "cloudbridge.runtime.launch", "--", run]
    sys.stdout.flush()
    os.execv(argv[0], argv)
    return 0  # pragma: no cover - execv does not return


if __name__ == "__main__":
    sys.exit(main())
