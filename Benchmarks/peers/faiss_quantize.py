"""Peer for `craft-bench quantize`: faiss-cpu IndexFlatL2 nearest-code search on the same data.

Called by Benchmarks/CraftBench/QuantizeBenchmark.swift (not by hand, though it can be):
    python faiss_quantize.py DATA_DIR N D K THREADS
DATA_DIR holds codebook.f32 ([K, D]) and queries.f32 ([N, D]), raw little-endian float32, written by
the Swift side. Times one `index.search(queries, 1)` (index built outside the timing), writes the
indices to DATA_DIR/faiss-indices-THREADS.i64 and prints one JSON line:
    {"seconds": ..., "cpu_seconds": ..., "threads": ..., "faiss": "<version> (SIMD <level>)"}
(cpu_seconds, the process CPU time, is reported because the benchmark machine may be shared.)
"""
import json
import os
import sys
import time

import faiss
import numpy as np


def main():
    data, n, d, k, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    codebook = np.fromfile(os.path.join(data, "codebook.f32"), dtype="<f4").reshape(k, d)
    queries = np.fromfile(os.path.join(data, "queries.f32"), dtype="<f4").reshape(n, d)
    faiss.omp_set_num_threads(threads)
    index = faiss.IndexFlatL2(d)
    index.add(codebook)
    start, cpu_start = time.perf_counter(), time.process_time()
    _, indices = index.search(queries, 1)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    indices.astype("<i8").tofile(os.path.join(data, f"faiss-indices-{threads}.i64"))
    # The SIMD level faiss dispatches to (FAISS_SIMD_LEVEL caps it), where this faiss tells.
    config = getattr(faiss, "SIMDConfig", None)
    simd = f" (SIMD {config.get_level_name()})" if config is not None and hasattr(config, "get_level_name") else ""
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "threads": threads, "faiss": faiss.__version__ + simd}))


if __name__ == "__main__":
    main()
