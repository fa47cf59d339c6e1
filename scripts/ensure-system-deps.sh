#!/usr/bin/env bash
# Installs, when missing, the system libraries Craft builds against (OpenBLAS, libarchive, zlib, libpng,
# TurboJPEG (libjpeg-turbo), libcurl (the registry's HTTP client), pkg-config) and curl. With --tests, also what the test suite runs beside
# Craft: docker-registry (the reference OCI distribution server the OCI tests push to) and chromium
# (the headless browser the picture tests render SVG, HTML and PNG output in).
# Used by `make demo` and `make build` (without --tests) and `make test` (with); safe to run again
# (does nothing when all are present).
set -euo pipefail
packages="libopenblas-dev libarchive-dev zlib1g-dev libpng-dev libturbojpeg0-dev libcurl4-openssl-dev pkg-config curl"
commands="curl"
if [ "${1:-}" = "--tests" ]; then
  packages="$packages docker-registry chromium"
  commands="$commands docker-registry chromium"
fi
present=1
command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openblas libarchive zlib libpng libturbojpeg libcurl || present=0
for command in $commands; do command -v "$command" >/dev/null 2>&1 || present=0; done
[ "$present" = "1" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: $packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $packages >/dev/null
  exit 0
fi
echo "Craft needs these Debian packages; install them with: sudo apt-get install -y $packages" >&2
exit 1
