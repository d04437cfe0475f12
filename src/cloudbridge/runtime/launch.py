"""``cloudbridge-launch -- CMD...``: start a job's worker processes the way its platform expects.

Every provider runs this as the job's entrypoint. It reads the :class:`RuntimeContext`, then

* one process in total, ``distribution: none``, or workers the platform already started (Azure ML's
  per-process launch): runs ``CMD`` directly;
* otherwise builds an ``accelerate launch`` call (``--num_machines --machine_rank --main_process_ip
  --main_process_port --num_processes --multi_gpu``) or a ``torchrun`` call for this node.

Either way it exports the ``CB_*`` variables (:meth:`RuntimeContext.to_env`) so every worker reads the
same directories, and on CPU-only nodes ``ACCELERATE_USE_CPU=true``: accelerate's own ``--cpu`` flag
routes multi-process CPU runs to ``mpirun``, whereas torchrun-started workers with that variable
form a gloo process group, which needs nothing but PyTorch.

The command after ``--`` is either one string -- the job's ``run:`` line, which means what
:mod:`cloudbridge.runline` says on every platform (``distribution: none`` or a line using
``$CB_LAUNCH``: ``bash -c RUN``, with ``CB_LAUNCH`` set to this launcher; otherwise one command rewritten
below) -- or several words, an argv run as given. A python script, ``python -m module``, ``python -c
code`` (written to a temporary script for the launchers, which cannot take ``-c``) or a console script
(a file with a python shebang, such as ``cloudbridge-finetune``) is run through the launcher by path;
any other executable with ``--no_python``/``--no-python``. ``--dry-run`` prints the command instead
of running it.

Exit status: the command's own, except that a worker that stopped on bad input may write the status
it wants (``2``) to the file named by ``CB_LAUNCH_STATUS_FILE`` and exit 0, which keeps torchrun's
multi-page failure report out of a one-line error; the launcher then exits with that status.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from cloudbridge.errors import CloudbridgeError, UserError
from cloudbridge.runline import LAUNCH_VAR, classify_run
from cloudbridge.runtime._proc import die_with_parent
from cloudbridge.runtime.context import DISTRIBUTIONS, RuntimeContext

__all__ = ["LaunchPlan", "PortLease", "build_launch", "die_with_parent", "free_port", "launch_prefix", "lease_port",
           "main", "ports_folder", "split_program"]

STATUS_FILE_ENV = "CB_LAUNCH_STATUS_FILE"
_PYTHONS = {"python", "python3", os.path.basename(sys.executable)}


@dataclass(frozen=True)
class Program:
    """What to run: a python ``script``, a python ``module`` or a plain ``executable``, plus its args."""

    kind: str  # "script" | "module" | "code" | "executable"
    target: str
    args: tuple[str, ...] = ()

    def direct_argv(self, python: str) -> list[str]:
        """The argv that runs this program without a launcher."""
        if self.kind == "script":
            return [python, self.target, *self.args]
        if self.kind == "module":
            return [python, "-m", self.target, *self.args]
        if self.kind == "code":
            return [python, "-c", self.target, *self.args]
        return [self.target, *self.args]


@dataclass(frozen=True)
class LaunchPlan:
    """The argv to execute and the environment variables to add for it."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    launcher: str = "direct"  # "direct" | "bash" | "accelerate" | "torchrun"
    #: ``python -c CODE`` under a launcher: the code, written to the script ``argv`` names before it runs
    script: tuple[str, str] | None = None

    def shell(self) -> str:
        """The plan as one shell line (environment assignments first)."""
        assigns = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return f"{assigns} {shlex.join(self.argv)}".strip()


def _is_python_file(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            first = handle.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"python" in first


def split_program(command: Sequence[str], which: object = shutil.which) -> Program:
    """Classify ``command`` (already split into words) as a script, module or executable."""
    words = list(command)
    if len(words) == 1 and " " in words[0].strip():
        words = shlex.split(words[0])
    if not words:
        raise UserError("cloudbridge-launch: no command given; usage: cloudbridge-launch [OPTIONS] -- CMD [ARGS...]")
    head = words[0]
    if os.path.basename(head) in _PYTHONS:
        rest = words[1:]
        while rest and rest[0].startswith("-") and rest[0] not in ("-m", "-c"):
            flag, rest = rest[0], rest[1:]  # interpreter flags such as -u: the launcher runs its own interpreter
            if flag in ("-W", "-X") and rest:
                rest = rest[1:]
        if not rest:
            raise UserError("cloudbridge-launch: 'python' needs a script, '-m MODULE' or '-c CODE' to run")
        if rest[0] in ("-m", "-c"):
            if len(rest) < 2:
                what = "a module name" if rest[0] == "-m" else "the code"
                raise UserError(f"cloudbridge-launch: 'python {rest[0]}' needs {what}")
            return Program("module" if rest[0] == "-m" else "code", rest[1], tuple(rest[2:]))
        return Program("script", rest[0], tuple(rest[1:]))
    if head.endswith(".py"):
        return Program("script", head, tuple(words[1:]))
    resolved = head if os.sep in head else which(head)  # type: ignore[operator]
    if not resolved and which is shutil.which:  # console scripts of this interpreter's environment
        resolved = shutil.which(head, path=os.path.dirname(sys.executable))
    if not resolved:
        raise UserError(f"cloudbridge-launch: command not found: {head}")
    if _is_python_file(resolved):
        return Program("script", resolved, tuple(words[1:]))
    return Program("executable", resolved, tuple(words[1:]))


def _worker_env(ctx: RuntimeContext) -> dict[str, str]:
    env = ctx.to_env()
    if ctx.gpus_per_node == 0:
        env["ACCELERATE_USE_CPU"] = "true"
    return env


def build_launch(
    ctx: RuntimeContext,
    command: Sequence[str],
    *,
    python: str = sys.executable,
    which: object = shutil.which,
) -> LaunchPlan:
    """The launch plan for ``command`` on this node (a pure function of its inputs).

    One string is a ``run:`` line (:func:`cloudbridge.runline.classify_run`); several words are an argv.
    """
    words = list(command)
    env = _worker_env(ctx)
    if len(words) == 1:
        try:
            line = classify_run(words[0], ctx.distribution)
        except ValueError as exc:
            raise UserError(f"cloudbridge-launch: {exc}") from None
        if line.kind == "bash":
            env[LAUNCH_VAR] = launch_prefix(python)
            return LaunchPlan([_bash(), "-c", words[0]], env, "bash")
        words = list(line.words)
    program = split_program(words, which)
    if ctx.is_launched or ctx.distribution == "none" or ctx.total_processes == 1:
        return LaunchPlan(program.direct_argv(python), env, "direct")
    script = None
    if program.kind == "code":  # accelerate and torchrun take a script, not -c: write the code to one
        path = os.path.join(tempfile.gettempdir(), f"cb-run-code-{os.getpid()}-{ctx.node_rank}.py")
        script = (path, "import sys; sys.path[0] = ''  # as under python -c\n" + program.target)
        program = Program("script", path, program.args)
    total = ctx.num_nodes * ctx.processes_per_node
    if ctx.distribution == "torchrun":
        argv = [
            python, "-m", "torch.distributed.run",
            "--nnodes", str(ctx.num_nodes),
            "--nproc_per_node", str(ctx.processes_per_node),
            "--node_rank", str(ctx.node_rank),
            "--master_addr", ctx.master_addr,
            "--master_port", str(ctx.master_port),
        ]
        if program.kind == "module":
            argv.append("-m")
        elif program.kind == "executable":
            argv.append("--no-python")
        return LaunchPlan([*argv, program.target, *program.args], env, "torchrun", script)
    argv = [
        python, "-m", "accelerate.commands.launch",
        "--multi_gpu",
        "--num_machines", str(ctx.num_nodes),
        "--machine_rank", str(ctx.node_rank),
        "--num_processes", str(total),
        "--main_process_ip", ctx.master_addr,
        "--main_process_port", str(ctx.master_port),
        "--mixed_precision", "no",
        "--dynamo_backend", "no",
    ]
    if program.kind == "module":
        argv.append("--module")
    elif program.kind == "executable":
        argv.append("--no_python")
    return LaunchPlan([*argv, program.target, *program.args], env, "accelerate", script)


def _bash() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else (shutil.which("bash") or "/bin/sh")


def launch_prefix(python: str = sys.executable) -> str:
    """The value of ``$CB_LAUNCH``: this launcher as a command prefix (``... -m cloudbridge.runtime.launch --``).

    A bash run line writes ``$CB_LAUNCH python train.py``; the unquoted expansion splits on spaces, so
    the console script next to ``python`` is preferred (its path is the shortest to get right).
    """
    script = os.path.join(os.path.dirname(python), "cloudbridge-launch")
    if os.path.isfile(script) and " " not in script:
        return f"{script} --"
    return f"{python} -m cloudbridge.runtime.launch --"


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as handle:
            low, high = (int(part) for part in handle.read().split())
        return low, high
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    import socket

    for host in ("127.0.0.1", ""):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A TCP port that was free a moment ago, chosen **outside** the ephemeral range.

    A rendezvous port is bound seconds after it is chosen (once torch is imported). A port handed
    out by ``bind(0)`` lies in the ephemeral range, where any outgoing connection made meanwhile
    (gloo's worker links, another job's) may take it, and the rendezvous then fails with "address
    already in use". Ports below that range are only taken by explicit binds. See :func:`lease_port`
    for the cross-process reservation that keeps two concurrent emulations apart.
    """
    import random
    import socket

    low, _ = _ephemeral_range()
    if low > 21000:
        for _ in range(64):
            port = random.randint(20000, low - 1)
            if _bindable(port):
                return port
    with socket.socket() as sock:  # nothing free below the range (or a tiny range): let the kernel pick
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortLease:
    """A port from :func:`free_port`, reserved across processes until :meth:`release` (a held ``flock``).

    Two emulations started at the same moment each hold a lock file ``<tmp>/cloudbridge-ports-<uid>/<port>``
    for their whole run, so they never pick the same rendezvous port.
    """

    def __init__(self, port: int, handle: int | None) -> None:
        """Hold ``port``; ``handle`` is the open lock file (a descriptor) whose ``flock`` reserves it."""
        self.port = port
        self._handle = handle

    def release(self) -> None:
        """Give the port back (the lock file stays, unlocked)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            os.close(handle)  # closing the file drops the flock


def ports_folder() -> str:
    """This user's private lease folder, ``<tmp>/cloudbridge-ports-<uid>`` (mode 0700), made if missing.

    Raises :class:`UserError` if it exists but is not a real folder owned by this user: in a shared
    ``/tmp`` another user could have made it first, to watch or block our leases.
    """
    import stat

    uid = os.getuid()
    folder = os.path.join(tempfile.gettempdir(), f"cloudbridge-ports-{uid}")
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    info = os.lstat(folder)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid:
        raise UserError(f"{folder} is not a folder of this user (uid {uid}); remove it or set TMPDIR elsewhere")
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(folder, 0o700)
    return folder


def lease_port(attempts: int = 32) -> PortLease:
    """A :class:`PortLease` on a free port no other cloudbridge process of this user holds."""
    import fcntl

    folder = ports_folder()
    for _ in range(attempts):
        port = free_port()
        # held open (and locked) for the lease; never through a link planted in the folder
        handle = os.open(os.path.join(folder, str(port)), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            continue
        return PortLease(port, handle)
    return PortLease(free_port(), None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudbridge-launch",
        description="Run CMD on every process of this job, the way the platform expects.",
        usage="cloudbridge-launch [--distribution D] [--processes N] [--dry-run] -- CMD [ARGS...]",
    )
    parser.add_argument("--distribution", choices=DISTRIBUTIONS,
                        help="launcher (default: CB_DISTRIBUTION, else accelerate)")
    parser.add_argument("--processes", type=int, help="processes per node (default: GPUs per node, or 1)")
    parser.add_argument("--dry-run", action="store_true", help="print the command and environment; run nothing")
    parser.add_argument("--print-context", action="store_true", help="print the detected context as JSON and exit")
    return parser


def _split_argv(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Launcher options before ``--`` and the command after it (``--`` may be left out)."""
    args = list(argv)
    if "--" in args:
        index = args.index("--")
        return args[:index], args[index + 1 :]
    own: list[str] = []
    while args and args[0].startswith("-"):
        own.append(args.pop(0))
        if own[-1] in ("--distribution", "--processes") and args:
            own.append(args.pop(0))
    return own, args


def _ensure_dirs(ctx: RuntimeContext) -> None:
    for path in (ctx.output_dir, ctx.model_dir, ctx.checkpoint_dir):
        if path:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError:
                pass  # the program reports unusable directories itself, naming the option


def run_plan(plan: LaunchPlan, base_env: Mapping[str, str] | None = None) -> int:
    """Execute ``plan``, forwarding SIGTERM/SIGINT to it; return the job's exit status."""
    env = dict(os.environ if base_env is None else base_env)
    env.update(plan.env)
    fd, status_file = tempfile.mkstemp(prefix="cb-launch-status-")
    os.close(fd)
    env[STATUS_FILE_ENV] = status_file
    if plan.script is not None:
        with open(plan.script[0], "w", encoding="utf-8") as handle:
            handle.write(plan.script[1])
    try:
        process = subprocess.Popen(plan.argv, env=env, preexec_fn=die_with_parent)
        previous = {}

        def forward(signum: int, _frame: object) -> None:
            if process.poll() is None:
                process.send_signal(signum)

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, forward)
        try:
            code = process.wait()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        with open(status_file, encoding="utf-8") as handle:
            text = handle.read().strip()
        if text.split(maxsplit=1) and text.split(maxsplit=1)[0].isdigit():
            return int(text.split(maxsplit=1)[0])
        return code if code >= 0 else 128 - code
    finally:
        os.unlink(status_file)
        if plan.script is not None and os.path.exists(plan.script[0]):
            os.unlink(plan.script[0])


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point of ``cloudbridge-launch``."""
    own, command = _split_argv(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(own)
    try:
        ctx = RuntimeContext.detect()
        if args.processes is not None:
            if args.processes < 1:
                raise UserError("cloudbridge-launch: --processes must be at least 1")
            ctx = replace(ctx, processes_per_node=args.processes)
        if args.distribution:
            ctx = replace(ctx, distribution=args.distribution)
        if ctx.num_nodes == 1 and not os.environ.get("MASTER_PORT"):
            ctx = replace(ctx, master_port=free_port())  # concurrent single-node jobs must not collide
        if args.print_context:
            import json

            print(json.dumps(ctx.to_dict(), indent=2, sort_keys=True))
            return 0
        plan = build_launch(ctx, command)
        if args.dry_run:
            print(plan.shell())
            return 0
        _ensure_dirs(ctx)
        print(
            f"cloudbridge-launch: platform={ctx.platform} node {ctx.node_rank + 1}/{ctx.num_nodes} "
            f"processes={ctx.total_processes} via {plan.launcher}",
            file=sys.stderr,
            flush=True,
        )
        return run_plan(plan)
    except CloudbridgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
