"""What accelerators this machine has, found without importing a deep-learning library (cheap enough
for ``hyperhive up`` and the worker supervisor to check ``--gpus`` before starting anything)."""

from __future__ import annotations

from pathlib import Path

NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")


def nvidia_gpu_count() -> int:
    """How many NVIDIA GPUs the driver lists (0 without the driver: no GPU for CUDA)."""
    try:
        return sum(1 for _ in NVIDIA_GPUS.iterdir())
    except OSError:
        return 0


def missing_gpus(gpus: list[str]) -> list[str]:
    """The requested GPU ids (CUDA ordinals) this machine does not have."""
    count = nvidia_gpu_count()
    return [g for g in gpus if not (g.isdigit() and int(g) < count)]


def missing_gpu_warning(gpus: list[str]) -> str | None:
    """``--gpus 0: this machine has no NVIDIA GPU 0 (0 found); its worker trains on the CPU``, or None."""
    missing = missing_gpus(gpus)
    if not missing:
        return None
    return (
        f"--gpus {','.join(gpus)}: this machine has no NVIDIA GPU {', '.join(missing)} "
        f"({nvidia_gpu_count()} found); its worker trains on the CPU (the trials record the device used)"
    )
