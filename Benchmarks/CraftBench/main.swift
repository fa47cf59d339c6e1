// craft-bench: benchmarks comparing Craft's kernels with peers measured in the same run.
// Results and the commands that reproduce them: docs/benchmarks.md.
print("craft-bench: no benchmarks yet")
