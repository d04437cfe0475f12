"""Process hygiene: workers must not outlive the launcher that started them.

torchrun starts every worker in a session of its own, so killing a job's process group (how a
backend cancels a job, or how a machine loses a spot instance) would leave the workers running.
On Linux, ``prctl(PR_SET_PDEATHSIG)`` makes the kernel kill a process when its parent dies; the
launcher sets it on the process it starts and each worker sets it on itself.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux only).

    Returns ``True`` when set. Exits at once if the parent is already gone (re-parented to init).
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() == 1:
        os._exit(137)
    return True
