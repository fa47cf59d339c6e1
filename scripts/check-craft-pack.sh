#!/usr/bin/env bash
# `make test`'s check of the CraftPack command plugin: `swift package craft-pack` packs an example bundle
# directory with the debug craft-registry the test build already made, and the packed file verifies.
# (It runs after `swift test`: a plugin run needs the package's build directory, which the tests hold.)
set -euo pipefail
cd "$(dirname "$0")/.."
SWIFT="${SWIFT:-swift}"
output="$(mktemp -d)"
trap 'rm -rf "$output"' EXIT
status=0
"$SWIFT" package --allow-writing-to-package-directory craft-pack --configuration debug \
    examples/bundles/digits-vq --output-directory "$output" >"$output/log" 2>&1 || status=$?
# Dependencies' warnings about their CMakeLists.txt files are noise here.
grep -v -E "unhandled; explicitly declare|CMakeLists.txt$" "$output/log" || true
if [[ $status -ne 0 ]]; then
    echo "check-craft-pack: swift package craft-pack failed (exit $status)" >&2
    exit 1
fi
packed="$output/digits-vq-1.0.0.craft"
if [[ ! -f "$packed" ]]; then
    echo "check-craft-pack: swift package craft-pack wrote no $packed" >&2
    exit 1
fi
.build/debug/craft-registry verify "$packed"
