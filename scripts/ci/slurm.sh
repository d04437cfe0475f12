#!/usr/bin/env bash
# Install what the Slurm plugin's tests need when it is missing: Debian's slurmctld, slurmd, slurm-client
# and munge (Slurm 22.05, ~10 s), openssh-server for the ssh login-mode test, and accounting for the sacct
# test: slurmdbd with MariaDB's server and client cores only (no perl, no galera, no server postinst:
# 16 s measured from the apt cache, where the full mariadb-server took 85 s). Idempotent; needs root
# and apt-get (elsewhere it says what is missing and the tests skip with that reason). Nothing is started
# here: the tests start munged, slurmctld, slurmd (and slurmdbd, mariadbd) and an sshd on 127.0.0.1 and
# stop them by PID.
set -euo pipefail
need=()
for pair in slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge sshd:openssh-server \
    slurmdbd:slurmdbd mariadbd:mariadb-server-core mariadb:mariadb-client-core; do
    prog="${pair%%:*}" pkg="${pair##*:}"
    command -v "$prog" >/dev/null 2>&1 || [ -x "/usr/sbin/$prog" ] || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "warning: Slurm tests will skip: missing ${need[*]} (install them as root with apt-get)" >&2
    exit 0
fi
echo "==> installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
