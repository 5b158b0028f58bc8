#!/usr/bin/env bash
# Installs the Debian packages hsrl needs that are not installed yet. Idempotent; works as root or
# through sudo. Set HSRL_DEPS_PYTHON=1 to also install what scripts/gen_goldens.py and users'
# notebooks need (torch, numpy, h5py, hdf5plugin for /usr/bin/python3).
set -euo pipefail

packages=(build-essential cmake pkg-config git
          libopenmpi-dev openmpi-bin libopenblas-dev
          libhdf5-dev hdf5-tools libzstd-dev libinih-dev
          gnuplot-nox)
if [[ "${HSRL_DEPS_PYTHON:-0}" == 1 ]]; then
  packages+=(python3-torch python3-numpy python3-h5py python3-hdf5plugin)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  sudo=()
elif command -v sudo >/dev/null; then
  sudo=(sudo)
else
  echo "install-deps: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
