"""The local GPU probe's ``nvidia-smi`` fallback, through a stand-in ``nvidia-smi`` executable on
PATH (this machine has no GPU), and the answer when neither NVML nor ``nvidia-smi`` is there."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from cloudbridge.backends.local import gpus
from cloudbridge.backends.local.gpus import GpuInfo, machine_info, probe_gpus

#: The real driver's output for ``--query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits``,
#: plus a header-like line and a line with an unknown memory size.
SMI_OUTPUT = (
    "0, NVIDIA A100-SXM4-80GB, 81920, GPU-5a1b2c3d-0000-1111-2222-333344445555\n"
    "1, NVIDIA A100-SXM4-80GB, 81920, GPU-6b2c3d4e-0000-1111-2222-333344445555\n"
    "2, Tesla T4, [N/A], GPU-7c3d4e5f-0000-1111-2222-333344445555\n"
    "index, name, memory.total [MiB], uuid\n"
)


def _install_smi(bindir: Path, body: str) -> Path:
    bindir.mkdir(parents=True, exist_ok=True)
    script = bindir / "nvidia-smi"
    script.write_text(body, encoding="utf-8")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def no_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    """No NVML (as on a machine without nvidia-ml-py), no fake GPUs, an empty probe cache."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # ``import pynvml`` raises ImportError
    monkeypatch.delenv(gpus.FAKE_GPUS_ENV, raising=False)
    monkeypatch.setattr(gpus, "_cache", {})


def test_nvidia_smi_fallback_parses_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_nvml: None) -> None:
    # the stand-in answers only the exact query the probe must send; anything else fails like a bad flag
    args_log = tmp_path / "args.txt"
    _install_smi(
        tmp_path / "bin",
        "#!/bin/sh\n"
        f'echo "$*" >> "{args_log}"\n'
        'if [ "$1" = "--query-gpu=index,name,memory.total,uuid" ] && '
        '[ "$2" = "--format=csv,noheader,nounits" ]; then\n'
        f"  printf '{SMI_OUTPUT}'\n"
        "  exit 0\n"
        "fi\n"
        "echo 'unknown option' >&2; exit 2\n",
    )
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")

    found, source = probe_gpus()
    assert source == "nvidia-smi"
    assert found == (
        GpuInfo(0, "NVIDIA A100-SXM4-80GB", 81920, "GPU-5a1b2c3d-0000-1111-2222-333344445555"),
        GpuInfo(1, "NVIDIA A100-SXM4-80GB", 81920, "GPU-6b2c3d4e-0000-1111-2222-333344445555"),
        GpuInfo(2, "Tesla T4", 0, "GPU-7c3d4e5f-0000-1111-2222-333344445555"),
    )
    # cached per process: a second probe does not run nvidia-smi again
    assert probe_gpus() == (found, source)
    assert args_log.read_text(encoding="utf-8").splitlines() == [
        "--query-gpu=index,name,memory.total,uuid --format=csv,noheader,nounits"
    ]

    info = machine_info(allowed=[1, 7])
    assert info.gpu_source == "nvidia-smi" and [g.index for g in info.gpus] == [1]
    assert info.notes == ("configured GPUs [7] do not exist on this machine",)


def test_failing_nvidia_smi_means_no_gpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_nvml: None) -> None:
    # nvidia-smi present but the driver is not loaded: it fails, the probe reports no GPUs
    _install_smi(tmp_path / "bin", "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    assert probe_gpus() == ((), "none")


def test_neither_nvml_nor_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_nvml: None) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert probe_gpus() == ((), "none")
    info = machine_info()
    assert info.gpus == () and info.gpu_source == "none" and info.cpus >= 1 and info.memory_gb > 0
