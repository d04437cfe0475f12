"""Running Slurm commands (and small file operations) on the cluster: here, or over ``ssh``.

``login = ""`` runs every command on this machine (a login node). ``login = "user@host[:port]"``
runs it through the system ``ssh`` with connection sharing (``ControlMaster=auto``,
``ControlPersist``): the first command opens one connection and every later one reuses it, so a
poll costs a round trip, not a handshake. ``BatchMode=yes``: ssh never prompts; keys or an agent
must be set up (``cloudbridge check slurm`` says so).

Every failure becomes a :mod:`cloudbridge.errors` type raised ``from`` its cause: a missing
command is :class:`~cloudbridge.errors.ProviderError` naming it, ssh that cannot connect is
:class:`~cloudbridge.errors.ProviderError` (``ssh to HOST failed: ...``), a command past
``command_timeout`` is :class:`~cloudbridge.errors.TransientError`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence

from cloudbridge.errors import ProviderError, TransientError
from cloudbridge_slurm.settings import SlurmSettings

__all__ = ["CommandFailed", "Runner", "SshFailed"]

#: ssh exits with 255 when it could not connect or authenticate (the remote command's own status otherwise).
SSH_FAILED = 255


class CommandFailed(ProviderError):
    """A Slurm (or shell) command on the cluster exited non-zero; ``stderr`` holds what it said."""

    def __init__(self, message: str, *, returncode: int, stderr: str, hint: str | None = None) -> None:
        super().__init__(message, provider="slurm", hint=hint)
        self.returncode = returncode
        self.stderr = stderr


class SshFailed(ProviderError):
    """``ssh`` could not reach or log in to the login host."""


class Runner:
    """Runs commands where the Slurm commands live (see the module docstring)."""

    def __init__(self, settings: SlurmSettings, env: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.login = settings.login
        self.timeout = settings.command_timeout
        self._env = dict(os.environ if env is None else env)
        self._control_dir: str | None = None

    @property
    def local(self) -> bool:
        """True when commands run on this machine."""
        return not self.login

    # ---- ssh ---------------------------------------------------------------------------------
    def _control_path(self) -> str:
        """A short socket path, private to this user, one per login: every cloudbridge process of the user
        shares the connection while it persists (unix socket paths are limited to ~100 bytes)."""
        if self._control_dir is None:
            folder = os.path.join(tempfile.gettempdir(), f"cb-ssh-{os.getuid()}")
            os.makedirs(folder, mode=0o700, exist_ok=True)
            if os.stat(folder).st_uid != os.getuid() or os.stat(folder).st_mode & 0o077:
                folder = tempfile.mkdtemp(prefix="cb-ssh-")  # someone else's or too open: a fresh private one
            self._control_dir = folder
        digest = hashlib.sha256(f"{self.login} {self.settings.ssh_options}".encode()).hexdigest()[:12]
        return os.path.join(self._control_dir, digest)

    def ssh_argv(self) -> list[str]:
        """``ssh ... user@host`` with connection sharing, ready for a remote command."""
        target, _, port = self.login.partition(":") if self.login.count(":") == 1 else (self.login, "", "")
        argv = [
            "ssh", "-o", "BatchMode=yes", "-o", "ControlMaster=auto", "-o", f"ControlPath={self._control_path()}",
            "-o", "ControlPersist=120", "-o", f"ConnectTimeout={max(1, int(min(self.timeout, 30)))}",
            "-o", "ServerAliveInterval=15",
        ]
        if port:
            argv += ["-p", port]
        argv += [os.path.expanduser(o) if o.startswith("~") else o for o in self.settings.ssh_options]
        return [*argv, target]

    def close(self) -> None:
        """Close the shared ssh connection now (``ssh -O exit``) instead of after ``ControlPersist``."""
        if self._control_dir is None:
            return
        if os.path.exists(self._control_path()):
            subprocess.run([*self.ssh_argv()[:-1], "-O", "exit", self.ssh_argv()[-1]], capture_output=True,
                           timeout=10, check=False)
        self._control_dir = None

    # ---- running -------------------------------------------------------------------------------
    def argv_for(self, argv: Sequence[str]) -> list[str]:
        """The local argv that runs ``argv`` on the cluster."""
        if self.local:
            return list(argv)
        return [*self.ssh_argv(), "--", shlex.join(argv)]

    def run(self, argv: Sequence[str], *, what: str, input: bytes | None = None, check: bool = True,
            timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run ``argv`` on the cluster and return the finished process (stdout/stderr as bytes).

        ``what`` says what the command was for, in error messages. With ``check``, a non-zero exit
        is :class:`CommandFailed`.
        """
        full = self.argv_for(argv)
        try:
            proc = subprocess.run(full, input=input, capture_output=True, timeout=timeout or self.timeout,
                                  env=self._env, check=False)
        except FileNotFoundError as exc:
            name = full[0]
            where = "on this machine" if self.local else "(the ssh client)"
            raise ProviderError(f"cannot {what}: {name} is not installed {where}", provider="slurm",
                                hint="install the Slurm client commands or set login = user@login-node") from exc
        except subprocess.TimeoutExpired as exc:
            raise TransientError(f"cannot {what}: {argv[0]} did not answer within {timeout or self.timeout:g}s"
                                 + ("" if self.local else f" (over ssh to {self.login})"), provider="slurm") from exc
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        if not self.local and proc.returncode == SSH_FAILED:
            first = stderr.splitlines()[-1] if stderr else "no message"
            raise SshFailed(f"ssh to {self.login} failed: {first}", provider="slurm",
                            hint="check the host, your key (ssh-add) and that `ssh HOST` works without a prompt")
        if proc.returncode == 127 and "command not found" in stderr:
            raise ProviderError(f"cannot {what}: {argv[0]} is not installed on {self.login or 'this machine'}",
                                provider="slurm", hint="install the Slurm client commands there")
        if check and proc.returncode != 0:
            last = stderr.splitlines()[-1] if stderr else f"exit status {proc.returncode}"
            raise CommandFailed(f"cannot {what}: {argv[0]}: {last}", returncode=proc.returncode, stderr=stderr)
        return proc

    def text(self, argv: Sequence[str], *, what: str, input: bytes | None = None,
             timeout: float | None = None) -> str:
        """``run(...)``'s stdout as text (the command must succeed)."""
        return self.run(argv, what=what, input=input, timeout=timeout).stdout.decode("utf-8", "replace")

    def shell(self, script: str, *, what: str, input: bytes | None = None, check: bool = True,
              timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a bash script on the cluster (``bash -c``)."""
        return self.run(["bash", "-c", script], what=what, input=input, check=check, timeout=timeout)

    def which(self, names: Sequence[str]) -> list[str]:
        """Which of ``names`` are missing on the cluster's ``PATH``."""
        if self.local:
            return [n for n in names if shutil.which(n, path=self._env.get("PATH")) is None]
        script = "; ".join(f"command -v {shlex.quote(n)} >/dev/null || echo {shlex.quote(n)}" for n in names)
        out = self.shell(script, what="look for the Slurm commands", check=False).stdout.decode()
        return out.split()
