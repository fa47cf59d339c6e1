#!/usr/bin/env bash
# make fuzz: builds the libFuzzer targets of Fuzz/ (AddressSanitizer + SanitizerCoverage) and runs
# each from a seed corpus made of the tests' fixtures and the embedded registry. Not part of make test.
#
#   scripts/fuzz.sh                     every target, FUZZ_RUNS inputs each (default 1000000)
#   scripts/fuzz.sh fuzz-tar fuzz-index only these targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh    also stop each target after 600 s (0: no time limit)
#   FUZZ_RUNS=0 FUZZ_SECONDS=60 scripts/fuzz.sh    a time per target, no input count
#
# Findings (crashes, sanitizer reports, time-outs over FUZZ_TIMEOUT seconds, inputs over 2 GB of
# memory) are written to .build-fuzz/findings/; turn each into a regression test. The summary line
# of each target gives inputs run, inputs per second, coverage (edges) and features; docs/fuzzing.md
# keeps the latest figures.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGETS=(fuzz-safetensors fuzz-manifest fuzz-index fuzz-tar fuzz-tokenizer fuzz-image fuzz-gguf)
[ $# -gt 0 ] && TARGETS=("$@")
RUNS=${FUZZ_RUNS:-1000000}
SECONDS_EACH=${FUZZ_SECONDS:-0}
TIMEOUT=${FUZZ_TIMEOUT:-10}
WORK=.build-fuzz

swiftc_path=$(command -v swiftc)
fuzzer_lib=$(ls "$(dirname "$(dirname "$(readlink -f "$swiftc_path")")")"/lib/clang/*/lib/linux/libclang_rt.fuzzer_no_main-x86_64.a 2>/dev/null | head -n 1)
if [ -z "$fuzzer_lib" ]; then
    echo "error: libFuzzer's runtime (libclang_rt.fuzzer_no_main-x86_64.a) is not in this Swift toolchain" >&2
    exit 1
fi

seed() {  # seed TARGET: fills $WORK/seeds/TARGET from the repository's own files
    local dir="$WORK/seeds/$1"
    rm -rf "$dir"; mkdir -p "$dir"
    case "$1" in
    fuzz-safetensors)
        cp Tests/SafeTensorsTests/Fixtures/*.safetensors Tests/SafeTensorsTests/Fixtures/sharded/*.safetensors \
           Tests/CraftCoreTests/Fixtures/codebook-vq.safetensors "$dir/" ;;
    fuzz-manifest)
        for bundle in registry/bundles/*/*.craft; do
            tar -xzOf "$bundle" craft.json > "$dir/$(basename "$bundle" .craft).json"
        done ;;
    fuzz-index)
        for shard in registry/index/*/*.json; do
            { printf '\0'; cat "$shard"; } > "$dir/shard-$(basename "$shard")"
        done
        { printf '\1'; cat registry/registry.json; } > "$dir/registry.json" ;;
    fuzz-tar)
        for bundle in registry/bundles/*/*.craft Tests/CraftBundlesTests/Fixtures/*.craft; do
            [ -f "$bundle" ] || continue
            [ "$(gzip -dc "$bundle" | wc -c)" -le 65536 ] && gzip -dc "$bundle" > "$dir/$(basename "$bundle" .craft).tar"
        done ;;
    fuzz-tokenizer)
        cp Tests/CraftModelsTests/Fixtures/tokenizers/*.tokenizer.json "$dir/" ;;
    fuzz-image)
        cp Tests/CraftImagingTests/Fixtures/*.png Tests/CraftImagingTests/Fixtures/*.jpg "$dir/" ;;
    fuzz-gguf)
        cp Tests/GGUFTests/Fixtures/types.gguf "$dir/" ;;
    *) echo "error: unknown fuzz target $1 (known: ${TARGETS[*]})" >&2; exit 64 ;;
    esac
}

mkdir -p "$WORK/findings" "$WORK/logs"
for target in "${TARGETS[@]}"; do
    seed "$target"
    echo "building $target ..."
    CRAFT_FUZZ=1 swift build -c release --scratch-path "$WORK" --product "$target" \
        -Xswiftc -sanitize=address \
        -Xswiftc -sanitize-coverage=edge,trace-cmp,inline-8bit-counters,pc-table \
        -Xlinker "$fuzzer_lib" -Xlinker -lstdc++ > "$WORK/logs/$target.build.log" 2>&1 \
        || { tail -n 30 "$WORK/logs/$target.build.log" >&2; exit 1; }
done

printf '\n%-18s %10s %9s %7s %8s %6s  %s\n' target inputs inputs/s edges features secs result
status=0
for target in "${TARGETS[@]}"; do
    corpus="$WORK/corpus/$target"
    # Targets write their input to a file per run: keep those in memory when the machine allows.
    if [ -d /dev/shm ] && [ -w /dev/shm ]; then tmp="/dev/shm/craft-fuzz-tmp-$target"; else tmp="$WORK/tmp/$target"; fi
    mkdir -p "$corpus"; rm -rf "$tmp"; mkdir -p "$tmp"
    log="$WORK/logs/$target.log"
    start=$(date +%s)
    result=ok
    TMPDIR="$tmp" ASAN_OPTIONS=detect_leaks=0 "$WORK/release/$target" "$corpus" "$WORK/seeds/$target" \
        -runs="$([ "$RUNS" -gt 0 ] && echo "$RUNS" || echo -1)" -max_total_time="$SECONDS_EACH" \
        -timeout="$TIMEOUT" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$WORK/findings/$target-" > "$log" 2>&1 || { result="FINDING (see $log)"; status=1; }
    elapsed=$(( $(date +%s) - start ))
    rm -rf "$tmp"
    stats=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    inputs=$(grep -E 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    rate=$(grep -E 'stat::average_exec_per_sec' "$log" | awk '{print $2}')
    edges=$(sed -nE 's/.*cov: ([0-9]+).*/\1/p' <<<"$stats")
    features=$(sed -nE 's/.*ft: ([0-9]+).*/\1/p' <<<"$stats")
    printf '%-18s %10s %9s %7s %8s %6s  %s\n' "$target" "${inputs:-?}" "${rate:-?}" "${edges:-?}" "${features:-?}" "$elapsed" "$result"
done
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
