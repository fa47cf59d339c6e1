#!/usr/bin/env bash
# Rebuilds the embedded registry `registry/` from the bundle directories in examples/bundles/ and
# examples/publish-an-encoder/ (run by hand after changing them; the result is committed). The
# miniature's trained bundles (digits-siglip-vq, digits-llama, digits-gpt2; made by `make reproduce`,
# docs/experiment.md) are carried over from the current registry as they are.
# Usage: scripts/make_embedded_registry.sh [CRAFT_REGISTRY_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
tool="${1:-.build/debug/craft-registry}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
rm -rf registry.new
for dir in examples/bundles/digits-vq examples/bundles/digits-answers examples/bundles/digits-answers-k24 \
           examples/publish-an-encoder/encoder examples/publish-an-encoder/backend; do
  "$tool" pack "$dir" --output-directory "$work" >/dev/null
done
for name in digits-siglip-vq digits-llama digits-gpt2; do
  for bundle in registry/bundles/"$name"/*.craft; do
    if [ -f "$bundle" ]; then cp "$bundle" "$work/"; fi
  done
done
for bundle in "$work"/*.craft; do
  "$tool" --registry registry.new publish "$bundle" >/dev/null
done
rm -rf registry.new/.staging registry.new/.lock
rm -rf registry && mv registry.new registry
"$tool" --registry registry list
