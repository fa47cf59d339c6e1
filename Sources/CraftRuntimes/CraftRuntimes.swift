// CraftRuntimes: the built-in model runtimes (siglip-vq, llama, gpt2) registered for bundles, and the Pipeline built from a passing compatibility report.
