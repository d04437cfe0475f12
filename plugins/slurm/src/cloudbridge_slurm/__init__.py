"""cloudbridge's Slurm provider: sbatch jobs on a cluster you own, staged on its shared filesystem."""

__all__: list[str] = []
