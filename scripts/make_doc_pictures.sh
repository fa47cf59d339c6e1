#!/usr/bin/env bash
# Regenerates the pictures of docs/images/: training.png (training.svg of a short craft train run),
# eval-report.png (a craft eval --report page) and tokens-overlay.png (craft tokens --overlay), each a
# headless-Chromium screenshot, on the embedded registry and the digits examples.
# Usage: scripts/make_doc_pictures.sh   (after `swift build`; CRAFT_BIN=DIR picks other built tools)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${CRAFT_BIN:-$(swift build --show-bin-path)}"
craft="$bin/craft"
if [ ! -x "$craft" ]; then
  echo "no craft executable in $bin; run swift build first (or set CRAFT_BIN)" >&2
  exit 1
fi
if ! command -v chromium >/dev/null 2>&1; then
  echo "chromium is missing; run scripts/ensure-system-deps.sh --tests (apt-get install chromium)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
digits=examples/data/digits
out=docs/images
mkdir -p "$out"

# Screenshot FILE into PNG at WIDTHxHEIGHT with a fresh profile; a browser that hangs is killed after 60 s.
shoot() {
  local file="$1" png="$2" size="$3"
  timeout -k 5 60 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$work/profile-$(basename "$png" .png)" --screenshot="$png" --window-size="$size" \
    "file://$(realpath "$file")" >"$work/chromium.log" 2>&1 || { cat "$work/chromium.log" >&2; exit 1; }
  echo "wrote $png ($(wc -c <"$png") bytes)"
}

# A short run on the publish-an-encoder slice (32 training and 16 validation questions).
data=examples/publish-an-encoder/data
"$craft" train --registry registry --encoder digits-siglip-vq@1.0.0 --surrogate digits-llama \
  --data "$data/train.jsonl" --validation "$data/val.jsonl" --epochs 4 --batch-size 8 \
  --learning-rate 1e-3 --seed 0 --allow-worse --quiet --output "$work/train" >/dev/null
shoot "$work/train/training.svg" "$out/training.png" 900,710

"$craft" eval --registry registry --encoder digits-siglip-vq@1.1.0 --backend digits-gpt2 \
  --data "$digits/strong-test.jsonl" --limit 40 --quiet --report "$work/eval-report.html" >/dev/null
shoot "$work/eval-report.html" "$out/eval-report.png" 1250,1150

# The same image with every token (--keep-ratio 1) and with the half pruning keeps, side by side.
for ratio in 1 0.5; do
  "$craft" tokens --registry registry --encoder digits-siglip-vq@1.1.0 \
    --image "$digits/images/strong/0000.png" --keep-ratio "$ratio" --overlay "$work/overlay-$ratio.png" >/dev/null
done
cat >"$work/overlay.html" <<'HTML'
<!DOCTYPE html><html><body style="margin:12px;background:#fff;font:14px sans-serif">
<div style="display:flex;gap:16px">
<figure style="margin:0"><img src="overlay-1.png"><figcaption>--keep-ratio 1 (64 tokens)</figcaption></figure>
<figure style="margin:0"><img src="overlay-0.5.png"><figcaption>--keep-ratio 0.5 (32 kept)</figcaption></figure>
</div></body></html>
HTML
shoot "$work/overlay.html" "$out/tokens-overlay.png" 552,310
