#!/usr/bin/env bash
# `make demo`: shows Craft working on the embedded registry. Grows with each issue.
set -euo pipefail
bin="${1:-.build/release}"
echo "== craft codebook: the embedded example codebook =="
"$bin/craft" codebook examples/codebooks/tiny-codebook.safetensors
echo
echo "== craft codebook --quantize: six handwritten digits quantized to their nearest codes =="
"$bin/craft" codebook examples/codebooks/tiny-codebook.safetensors \
    --quantize examples/codebooks/sample-vectors.safetensors
