// CraftModels: model runtimes (SigLIP-VQ, Llama, GPT-2) and tokenizers.
