#!/usr/bin/env bash
# A virtual environment with the official Python clients and libraries Craft's tests use as peers (the openai
# client for craft serve), installed from PyPI into .build/peers-venv. Prints the venv's python.
# Safe to run again and from concurrent tests: does nothing when the pinned versions are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${CRAFT_PEERS_VENV:-.build/peers-venv}"
requirements="openai==3.63.0 numpy==2.4.6 oras==0.2.43"
marker="$venv/.craft-peers"
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$requirements" ]; then
  echo "$(pwd)/$venv/bin/python"
  exit 0
fi
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! [ -f "$marker" ] || [ "$(cat "$marker")" != "$requirements" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $requirements >&2
  echo "$requirements" > "$marker"
fi
echo "$(pwd)/$venv/bin/python"
