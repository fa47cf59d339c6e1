#!/usr/bin/env bash
# Installs the system libraries Craft builds against (OpenBLAS, libarchive, zlib, libpng, TurboJPEG (libjpeg-turbo), pkg-config)
# curl (the craft serve tests' HTTP client), docker-registry (the reference OCI distribution server the
# OCI tests push to) and chromium (the headless browser the picture tests render SVG, HTML and PNG output in)
# when missing.
# Used by `make test` and `make demo`; safe to run again (does nothing when all are present).
set -euo pipefail
packages="libopenblas-dev libarchive-dev zlib1g-dev libpng-dev libturbojpeg0-dev pkg-config curl docker-registry chromium"
if command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openblas libarchive zlib libpng libturbojpeg && command -v curl >/dev/null 2>&1 \
  && command -v docker-registry >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system libraries: $packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq $packages >/dev/null
  exit 0
fi
echo "Craft needs OpenBLAS, libarchive, libpng, TurboJPEG (libjpeg-turbo), pkg-config, curl, docker-registry and chromium; install them with: sudo apt-get install -y $packages" >&2
exit 1
