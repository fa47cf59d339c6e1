#!/usr/bin/env bash
# Publishing a domain encoder, the way a publishing team does it: pack, key generate, sign, trust,
# publish, verify, search, find partners, prove the pairing, pull. See README.md beside this file.
#
# Usage: examples/publish-an-encoder/publish.sh [WORK_DIR]
#   CRAFT_REGISTRY_BIN  the craft-registry executable (default: craft-registry on PATH, else
#                       .build/debug/craft-registry of this repository)
#   WORK_DIR            where the registry, keys and packed bundles go (default: a new temporary dir)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tool="${CRAFT_REGISTRY_BIN:-}"
if [[ -z "$tool" ]]; then
  if command -v craft-registry >/dev/null 2>&1; then tool="$(command -v craft-registry)"
  elif [[ -x "$repo/.build/debug/craft-registry" ]]; then tool="$repo/.build/debug/craft-registry"
  else echo "error: craft-registry not found; build it (swift build) or set CRAFT_REGISTRY_BIN" >&2; exit 1
  fi
fi
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/craft-publish-example.XXXXXX")}"
mkdir -p "$work"
registry="$work/registry"
export CRAFT_CACHE="$work/cache"
step() { printf '\n== %s\n' "$*"; }
cr() { "$tool" --registry "$registry" "$@"; }

step "1. Pack the encoder directory (sizes and sha256 filled in, codebook hash recomputed)"
cr pack "$here/encoder" --output-directory "$work/dist"
bundle="$work/dist/derm-vq-1.0.0.craft"

step "2. Create the team's signing key (private key 0600, public key .pub)"
cr key generate --out "$work/keys/derm-team"

step "3. Sign the bundle (writes $bundle.sig)"
cr sign "$bundle" --key "$work/keys/derm-team"

step "4. The registry trusts the team's public key"
cr key trust "$work/keys/derm-team.pub"

step "5. Publish (the signature travels with the bundle)"
cr publish "$bundle"
# A backend reading the same codebook, so the pairing can be shown.
cr pack "$here/backend" --output-directory "$work/dist"
cr publish "$work/dist/tiny-answers-0.1.0.craft"

step "6. Verify what the registry serves, requiring a trusted signature"
cr verify derm-vq@1.0.0 --require-signature

step "7. Find it"
cr search dermatology

step "8. Which backends share its codebook?"
cr compatible derm-vq

step "9. Prove the pairing (recomputes the codebook hash from the tensor)"
cr pair derm-vq tiny-answers

step "10. Pull it, as an integrator would"
cr pull derm-vq@^1.0 --require-signature

step "Done: registry at $registry"
