#!/usr/bin/env bash
# `make demo`: shows Craft working on the embedded registry. Grows with each issue.
set -euo pipefail
bin="${1:-.build/release}"
echo "== craft codebook: the embedded example codebook =="
"$bin/craft" codebook examples/codebooks/tiny-codebook.safetensors
