#!/usr/bin/env bash
# `make demo`: shows Craft working on the embedded registry (registry/). Grows with each issue.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build/release}"
craft="$bin/craft"
registry=("$bin/craft-registry" --registry registry)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The example codebook: entries, dimension, depth, metric and its hash"
"$craft" codebook examples/codebooks/tiny-codebook.safetensors

step "Six handwritten digits quantized to their nearest codes"
"$craft" codebook examples/codebooks/tiny-codebook.safetensors \
    --quantize examples/codebooks/sample-vectors.safetensors

step "The embedded registry: craft-registry list"
"${registry[@]}" list

step "Search: craft-registry search digits"
"${registry[@]}" search digits

step "Which backends share the codebook of digits-vq? craft-registry compatible digits-vq"
"${registry[@]}" compatible digits-vq

step "Verify a bundle (sizes, sha256 of every file, codebook hash recomputed)"
"${registry[@]}" verify digits-vq@^1.0

step "Pair an encoder with a backend that shares its codebook: craft-registry pair digits-vq digits-answers"
"${registry[@]}" pair digits-vq digits-answers

step "Pair it with a backend trained on another codebook: the checker refuses (exit 3)"
set +e
"${registry[@]}" pair digits-vq digits-answers-k24
status=$?
set -e
echo "exit status: $status"
[ "$status" -eq 3 ] || { echo "expected exit status 3 for an incompatible pair" >&2; exit 1; }

step "Done"
echo "Next: README.md (next steps), docs/cli.md (every command), docs/registry.md, docs/bundle-format.md."
