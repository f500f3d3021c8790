#!/usr/bin/env bash
# Installs what the tests need on a fresh machine: the Debian packages that provide the real
# Jupyter side (server, client, nbclient, nbconvert, classic Notebook and its `jupyter notebook`
# command), the upstream kernel test suite, chromium for the browser tests (driven by
# puppeteer-core), openssh-server for the SSH launcher test, iproute2 for test hosts in network
# namespaces, util-linux and mount (unshare, mount) for a server that cannot see the caller's
# files, slurm-wlm and munge for a real Slurm (test/slurm.ts), podman with runc and mmdebstrap to
# build and run the server image (test/containers.test.ts), and the npm packages. Safe to run
# again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(openssh-server systemd jupyter-server jupyter-client jupyter-core python3-jupyter-server python3-jupyter-client
  python3-nbclient jupyter-nbconvert python3-notebook jupyter-notebook python3-ipykernel iproute2 python3-jupyter-kernel-test chromium
  util-linux mount slurm-wlm munge podman runc mmdebstrap)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test setup: missing Debian packages: ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "test setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
