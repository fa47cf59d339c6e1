#!/usr/bin/env bash
# `make demo`: the embedded miniature of the CRAFT experiment (docs/experiment.md) on the embedded
# registry (registry/): look bundles up, check pairs, ask questions about shifted-domain digits with two
# backends before and after CRAFT adaptation, and score a small evaluation. Needs only the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-.build/release}"
craft=("$bin/craft")
registry=("$bin/craft-registry" --registry registry)
data=examples/data/digits
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }

step "The embedded registry: craft-registry list"
"${registry[@]}" list

step "Search: craft-registry search strong"
"${registry[@]}" search strong

step "Which backends read the codebook of digits-siglip-vq? craft-registry compatible digits-siglip-vq"
"${registry[@]}" compatible digits-siglip-vq

step "Verify the adapted encoder (sizes, sha256 of every file, codebook hash recomputed)"
"${registry[@]}" verify digits-siglip-vq@1.1.0

step "Pair the CRAFT-adapted encoder with backend A (Llama) and backend B (GPT-2)"
"${registry[@]}" pair digits-siglip-vq@1.1.0 digits-llama
"${registry[@]}" pair digits-siglip-vq@1.1.0 digits-gpt2

step "Pair it with a backend trained on another codebook: the checker refuses (exit 3)"
set +e
"${registry[@]}" pair digits-siglip-vq@1.1.0 digits-answers
status=$?
set -e
echo "exit status: $status"
[ "$status" -eq 3 ] || { echo "expected exit status 3 for an incompatible pair" >&2; exit 1; }

step "Ask about the first 8 strong-shift test images (inverted, blurred, noisy): base encoder 1.0.0 vs CRAFT 1.1.0"
printf '  %-28s %-7s %-10s %-10s %-10s %-10s\n' image truth "A base" "A CRAFT" "B base" "B CRAFT"
for index in 0 1 2 3 4 5 6 7; do
  line=$(grep '"what digit' "$data/strong-test.jsonl" | sed -n "$((index + 1))p")
  image=$(echo "$line" | sed 's/.*"image": "\([^"]*\)".*/\1/')
  truth=$(echo "$line" | sed 's/.*"answer": "\([^"]*\)".*/\1/')
  answers=()
  for backend in digits-llama digits-gpt2; do
    for version in 1.0.0 1.1.0; do
      answers+=("$("${craft[@]}" run --registry registry --encoder "digits-siglip-vq@$version" --backend "$backend" \
          --image "$data/$image" --prompt "what digit is this ?" --max-tokens 3 2>/dev/null)")
    done
  done
  printf '  %-28s %-7s %-10s %-10s %-10s %-10s\n' "$image" "$truth" "${answers[0]}" "${answers[1]}" "${answers[2]}" "${answers[3]}"
done

step "A quick evaluation: craft eval on the first 100 strong-shift test questions"
printf '  %-10s %-14s %s\n' encoder backend accuracy
for backend in digits-llama digits-gpt2; do
  for version in 1.0.0 1.1.0; do
    result=$("${craft[@]}" eval --registry registry --encoder "digits-siglip-vq@$version" --backend "$backend" \
        --data "$data/strong-test.jsonl" --limit 100 --max-tokens 3 2>/dev/null | awk '/^accuracy/ {print $2}')
    printf '  %-10s %-14s %s\n' "$version" "$backend" "$result"
  done
done

step "Token pruning at keep 0.8 (CRAFT encoder, backend A)"
"${craft[@]}" eval --registry registry --encoder digits-siglip-vq@1.1.0 --backend digits-llama \
    --data "$data/strong-test.jsonl" --limit 100 --max-tokens 3 --keep-ratio 0.8 | grep -iE 'accuracy|flops|tokens' | head -3

step "Serve the adapted pair over an OpenAI-compatible API: craft serve, one request with curl, SIGTERM"
serve_log=$(mktemp)
"${craft[@]}" serve --registry registry --encoder digits-siglip-vq@1.1.0 --backend digits-llama --port 0 2> "$serve_log" &
serve_pid=$!
port=""
for _ in $(seq 1 600); do
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$serve_log")
  [ -n "$port" ] && break
  kill -0 "$serve_pid" 2>/dev/null || break
  sleep 0.1
done
[ -n "$port" ] || { cat "$serve_log" >&2; echo "craft serve did not start" >&2; exit 1; }
sed 's/^/  /' "$serve_log"
image="$data/images/strong/0004.png"  # a strong-shift four
reply=$(curl -s "http://127.0.0.1:$port/v1/chat/completions" -H 'Content-Type: application/json' -d '{
  "model": "digits-siglip-vq+digits-llama", "max_tokens": 3,
  "messages": [{"role": "user", "content": [
    {"type": "image_url", "image_url": {"url": "data:image/png;base64,'"$(base64 -w0 "$image")"'"}},
    {"type": "text", "text": "what digit is this ?"}]}]}')
echo "  POST /v1/chat/completions ($image, truth: four) -> $(echo "$reply" | grep -o '"content":"[^"]*"')"
echo "  usage: $(echo "$reply" | grep -o '"usage":{[^}]*}')"
kill -TERM "$serve_pid"
wait "$serve_pid" && echo "  SIGTERM: craft serve finished its requests and exited 0"
rm -f "$serve_log"

step "Done"
echo "The full results (baselines, ablations, seeds, pruning, retention): docs/experiment.md; rebuild them with make reproduce."
echo "Serving pairs to applications (streaming, metrics, the openai Python client): docs/serve.md."
