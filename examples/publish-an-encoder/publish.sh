#!/usr/bin/env bash
# Publishing a domain encoder, the way a publishing team does it: train, pack, verify, key generate,
# sign, trust, publish, verify again, prove the pairing with two backends, answer. See README.md.
#
# Usage: examples/publish-an-encoder/publish.sh [WORK_DIR]
#   CRAFT_BIN           the craft executable (default: craft on PATH, else .build/debug/craft here)
#   CRAFT_REGISTRY_BIN  the craft-registry executable (default: craft-registry on PATH, else
#                       .build/debug/craft-registry of this repository)
#   WORK_DIR            where the training output, keys, packed bundles and the scratch registry go
#                       (default: a new temporary directory)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
find_tool() { # NAME OVERRIDE
  if [[ -n "$2" ]]; then echo "$2"
  elif command -v "$1" >/dev/null 2>&1; then command -v "$1"
  elif [[ -x "$repo/.build/debug/$1" ]]; then echo "$repo/.build/debug/$1"
  else echo "error: $1 not found; build it (swift build) or set the variable named in the usage" >&2; return 1
  fi
}
craft="$(find_tool craft "${CRAFT_BIN:-}")"
tool="$(find_tool craft-registry "${CRAFT_REGISTRY_BIN:-}")"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/craft-publish-example.XXXXXX")}"
mkdir -p "$work"
base_registry="$repo/registry"    # where the base encoder and the backends come from
registry="$work/registry"         # the scratch registry we publish into
export CRAFT_CACHE="$work/cache"
step() { printf '\n== %s\n' "$*"; }
cr() { "$tool" --registry "$registry" "$@"; }

step "1. Train: adapt digits-siglip-vq@1.0.0 to the strong shift with CRAFT, digits-llama as the surrogate"
# 32 questions about 16 shifted-domain images, one epoch of 4 steps: a demonstration of the flow, not
# of the gain (the full run is the miniature's, docs/experiment.md). Seeded: same bytes every time.
"$craft" train --registry "$base_registry" \
  --encoder digits-siglip-vq@1.0.0 --surrogate digits-llama \
  --data "$here/data/train.jsonl" --validation "$here/data/val.jsonl" \
  --epochs 1 --batch-size 8 --learning-rate 3e-4 --seed 0 --output-directory "$work/train"
trained="$work/train/digits-siglip-vq-1.1.0"

step "2. Pack the trained bundle directory (the same bytes craft train packed)"
"$tool" pack "$trained" --output-directory "$work/dist"
bundle="$work/dist/digits-siglip-vq-1.1.0.craft"
cmp "$bundle" "$trained.craft" && echo "identical to $trained.craft"

step "3. Verify it (archive safety, every file's sha256, the codebook hash recomputed from the tensor)"
"$tool" verify "$bundle"

step "4. Create the team's signing key (private key 0600, public key .pub)"
"$tool" key generate --output "$work/keys/digits-team"

step "5. Sign the bundle (writes $bundle.sig)"
"$tool" sign "$bundle" --key "$work/keys/digits-team"

step "6. The scratch registry trusts the team's public key"
cr key trust "$work/keys/digits-team.pub"

step "7. Publish the encoder (its signature travels with it) and the two backends it is meant for"
cr publish "$bundle"
for backend in digits-llama digits-gpt2; do
  cr publish "$base_registry/bundles/$backend/$backend-1.0.0.craft"
done

step "8. Verify what the registry serves, requiring a trusted signature"
cr verify digits-siglip-vq@1.1.0 --require-signature

step "9. Which backends share its codebook?"
cr compatible digits-siglip-vq

step "10. Prove the pairing with both backends (digits-gpt2 never saw the adapted encoder)"
cr pair digits-siglip-vq@1.1.0 digits-llama
cr pair digits-siglip-vq@1.1.0 digits-gpt2

step "11. Answer a question about a shifted-domain validation image (a seven) with each backend"
for backend in digits-llama digits-gpt2; do
  printf '%s: ' "$backend"
  "$craft" run --registry "$registry" --encoder digits-siglip-vq@1.1.0 --backend "$backend" \
    --image "$here/data/images/0017.png" --prompt "what digit is this ?" --max-tokens 2
done

step "Done: trained bundle $trained, scratch registry $registry"
