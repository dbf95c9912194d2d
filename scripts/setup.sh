#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine: system packages
# (the Python container library and its tests, a Docker engine for the Docker backend and its
# tests, wrk for the benchmarks, Redis, ip/tc and kubectl for the cluster tests, promtool to check
# the metrics) when missing, then the npm dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(python3-zmq python3-numpy python3-sklearn python3-yaml python3-prometheus-client python3-cloudpickle python3-grpcio python3-grpc-tools docker.io wrk redis-server iproute2 openssl prometheus)
# kubectl: Debian's kubernetes-client, unless a kubectl is already installed (they conflict).
command -v kubectl >/dev/null || DEBS+=(kubernetes-client)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
