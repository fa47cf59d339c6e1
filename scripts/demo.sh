#!/usr/bin/env bash
# `make demo`: shows Craft working on the embedded registry (registry/). Grows with each issue.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build/release}"
craft="$bin/craft"
registry=("$bin/craft-registry" --registry registry)
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

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

step "Ask the checked pair about digit images: craft run (table runtimes, image = index into the encoder's table)"
labels=(1 7 4 6 3 1 3 9 1 7 6 8)  # provenance.labels of examples/bundles/digits-vq/craft.json
for image in 0 1 3 7 11; do
  answer=$("$craft" run --registry registry --encoder digits-vq --backend digits-answers \
      --image "$image" --prompt "Which digit is this?")
  printf '  image %-2s (a %s): %s\n' "$image" "${labels[$image]}" "$answer"
done

step "Done"
echo "Next: README.md (next steps), docs/cli.md (every command), docs/registry.md, docs/bundle-format.md."
