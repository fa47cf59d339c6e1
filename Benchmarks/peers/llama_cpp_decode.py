#!/usr/bin/env python3
"""llama.cpp decoding a GGUF file, the peer of `craft-bench gguf`:

    llama_cpp_decode.py FILE.gguf THREADS PROMPT TOKENS [BATCH]

llama.cpp runs through llama-cpp-python built from its source distribution on this machine (so
ggml's kernels are compiled for this CPU), outside the product build:

    .venv-ref/bin/pip install --no-binary llama-cpp-python llama-cpp-python

It evaluates the prompt Craft's `decode-run` uses (token i is (i · 7919 + 13) mod vocabulary), then
decodes TOKENS greedy tokens one at a time, and prints one line in the `key=value` form of
`craft-bench decode-run` (load, memory before and after loading and at peak, prefill, decode per
token, the tokens). `--check` prints the installed version and exits (the benchmark's probe).
BATCH is accepted for symmetry and must be 1.
"""
import resource
import sys
import time


def resident_mib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main():
    import llama_cpp
    import numpy

    if sys.argv[1:] == ["--check"]:
        print(f"llama-cpp-python {llama_cpp.__version__}")
        return
    path, threads, prompt, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if len(sys.argv) > 5 and int(sys.argv[5]) != 1:
        raise SystemExit("llama_cpp_decode.py decodes one sequence")
    baseline = resident_mib()
    start = time.perf_counter()
    model = llama_cpp.Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=prompt + tokens + 8,
                            n_batch=max(prompt, 8), logits_all=False, verbose=False)
    load = time.perf_counter() - start
    resident = resident_mib()
    vocabulary = model.n_vocab()
    ids = [(i * 7919 + 13) % vocabulary for i in range(prompt)]
    start = time.perf_counter()
    model.eval(ids)
    prefill = time.perf_counter() - start
    generated = []
    start = time.perf_counter()
    for _ in range(tokens):
        # The last evaluated token's logits (llama.cpp keeps only those without logits_all).
        logits = numpy.ctypeslib.as_array(model._ctx.get_logits(), shape=(vocabulary,))
        token = int(logits.argmax())
        generated.append(token)
        model.eval([token])
    decode = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load_ms={load * 1000:.1f} baseline_mib={baseline:.1f} resident_mib={resident:.1f} peak_mib={peak:.1f} "
          f"prefill_ms={prefill * 1000:.1f} decode_ms_per_token={decode * 1000 / tokens:.3f} "
          f"tokens={','.join(map(str, generated))}")

if __name__ == "__main__":
    main()
