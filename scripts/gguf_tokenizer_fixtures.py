#!/usr/bin/env python3
"""Reference fixtures for tokenizers read from GGUF metadata (Sources/CraftModels/Tokenizers/Tokenizer+GGUF.swift).

A GGUF file has no tokenizer.json: llama.cpp's converter stores the vocabulary as `tokenizer.ggml.*`
metadata. This script writes small tokenizer-only GGUF files the way convert_hf_to_gguf.py does:

- `spm_*`: a SentencePiece BPE model with byte fallback (trained here with the `sentencepiece`
  package), its pieces, scores and token types written by gguf-py's `SentencePieceVocab`
  (`tokenizer.ggml.model` "llama", no merges: they are recovered from the scores);
- `bpe_*`: byte-level BPE vocabularies (trained here with `tokenizers`) written like
  `_set_vocab_gpt2`: tokens in id order, CONTROL for special added tokens, USER_DEFINED for the
  others, the merges, and `tokenizer.ggml.pre` naming the split pattern.

transformers then builds its tokenizer from each file (`AutoTokenizer.from_pretrained(...,
gguf_file=...)`), and its ids and decoded strings for every test string of
scripts/tokenizer_fixtures.py go to NAME.cases.json. The Swift tests must reproduce them. Two
corrections are applied to transformers' tokenizer first, where it departs from the file and from
llama.cpp (docs/gguf.md lists them):
- added tokens outside the file's vocabulary are dropped (transformers' GPT2Tokenizer adds its
  default `<|endoftext|>` when the file has none: an id past the model's embedding rows);
- `tokenizer.ggml.add_space_prefix` false is honoured as llama.cpp does (no "▁" prepended, no
  leading space stripped when decoding); transformers reads the key and uses it nowhere.

Writes Tests/GGUFTests/Fixtures/tokenizers/NAME.gguf and NAME.cases.json. Run by hand (make test
never runs Python); needs the reference environment plus `sentencepiece`:
    .venv-ref/bin/pip install sentencepiece
    .venv-ref/bin/python scripts/gguf_tokenizer_fixtures.py
"""
import json
import pathlib
import sys
import tempfile

import gguf
import sentencepiece
import tokenizers
from tokenizers import Regex, decoders, pre_tokenizers
from transformers import AutoTokenizer
import transformers

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from tokenizer_fixtures import CORPUS, LLAMA3_PATTERN, make_cases, train_bpe  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests/GGUFTests/Fixtures/tokenizers"
GENERATOR = (f"scripts/gguf_tokenizer_fixtures.py with gguf {gguf.__version__ if hasattr(gguf, '__version__') else '0.x'}, "
             f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}, "
             f"sentencepiece {sentencepiece.__version__}")
QWEN2_PATTERN = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
EXTRA_STRINGS = [
    "<|im_start|>user\nWhat is in the image?<|im_end|>\n<|im_start|>assistant\n",
    "<think>reasoning</think> answer",
    "a<think>b",
    "\u2581already\u2581metaspaced",
    "<0x41> is not a byte here",
]


def write_header(path, arch, model, pre):
    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_tokenizer_model(model)
    if pre is not None:
        writer.add_tokenizer_pre(pre)
    return writer


def close(writer):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def sentencepiece_case(path, work, add_space_prefix, add_bos, add_eos):
    """A Llama-2 style SentencePiece BPE vocabulary with byte fallback, as _set_vocab_sentencepiece writes it."""
    corpus = work / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 3))
    sentencepiece.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(work / "tokenizer"), vocab_size=600, model_type="bpe",
        byte_fallback=True, character_coverage=0.995, minloglevel=2)
    vocab = gguf.SentencePieceVocab(work)
    pieces = list(vocab.all_tokens())
    writer = write_header(path, "llama", "llama", "default")
    writer.add_token_list([text for text, _, _ in pieces])
    writer.add_token_scores([score for _, score, _ in pieces])
    writer.add_token_types([kind for _, _, kind in pieces])
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    if add_space_prefix is not None:
        writer.add_add_space_prefix(add_space_prefix)
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)
    if add_eos is not None:
        writer.add_add_eos_token(add_eos)
    close(writer)


def byte_level_case(path, arch, pre, hf, bos, eos, add_bos):
    """A byte-level BPE vocabulary written the way _set_vocab_gpt2 writes one."""
    data = json.loads(hf.to_str())
    vocab = data["model"]["vocab"]
    added = {token["id"]: token for token in data["added_tokens"]}
    reverse = {index: token for token, index in vocab.items()}
    tokens, kinds = [], []
    for index in range(hf.get_vocab_size(with_added_tokens=True)):
        if index in added:
            tokens.append(added[index]["content"])
            kinds.append(gguf.TokenType.CONTROL if added[index]["special"] else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(reverse[index])
            kinds.append(gguf.TokenType.NORMAL)
    writer = write_header(path, arch, "gpt2", pre)
    writer.add_token_list(tokens)
    writer.add_token_types(kinds)
    writer.add_token_merges([" ".join(pair) if not isinstance(pair, str) else pair for pair in data["model"]["merges"]])
    if bos is not None:
        writer.add_bos_token_id(hf.token_to_id(bos))
    writer.add_eos_token_id(hf.token_to_id(eos))
    if add_bos is not None:
        writer.add_add_bos_token(add_bos)
    close(writer)


def byte_level_vocabulary(pattern, specials, user_defined):
    if pattern is None:
        pre = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        pre = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ])
    tok = train_bpe(pre, specials, vocab_size=800)
    tok.decoder = decoders.ByteLevel()
    tok.add_tokens([tokenizers.AddedToken(token, normalized=False) for token in user_defined])
    return tok


def corrected(reference, path):
    """transformers' tokenizer with the two corrections the module docstring lists."""
    fields = gguf.GGUFReader(str(path)).fields
    count = len(fields["tokenizer.ggml.tokens"].data)
    data = json.loads(reference.to_str())
    data["added_tokens"] = [token for token in data["added_tokens"] if token["id"] < count]
    prefix = fields.get("tokenizer.ggml.add_space_prefix")
    if prefix is not None and not bool(prefix.parts[prefix.data[0]][0]):
        assert data["pre_tokenizer"]["type"] == "Metaspace"
        data["pre_tokenizer"]["prepend_scheme"] = "never"
        data["decoder"]["decoders"] = [step for step in data["decoder"]["decoders"] if step["type"] != "Strip"]
    return tokenizers.Tokenizer.from_str(json.dumps(data))


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        builders = {
            "spm_llama": lambda p, w: sentencepiece_case(p, w, None, None, None),
            "spm_no_prefix_eos": lambda p, w: sentencepiece_case(p, w, False, False, True),
            "bpe_llama3": lambda p, w: byte_level_case(
                p, "llama", "llama-bpe",
                byte_level_vocabulary(LLAMA3_PATTERN, ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<image>"], ["<think>", "</think>"]),
                "<|begin_of_text|>", "<|eot_id|>", True),
            "bpe_qwen2": lambda p, w: byte_level_case(
                p, "qwen2", "qwen2",
                byte_level_vocabulary(QWEN2_PATTERN, ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>"], ["<think>"]),
                None, "<|im_end|>", False),
            "bpe_gpt2": lambda p, w: byte_level_case(
                p, "llama", "default",
                byte_level_vocabulary(None, ["<|endoftext|>", "<image>"], []),
                "<|endoftext|>", "<|endoftext|>", None),
        }
        for name, build in builders.items():
            work = scratch / name
            work.mkdir()
            path = OUT / f"{name}.gguf"
            build(path, work)
            # transformers reads the file alone, from a folder holding nothing else.
            alone = scratch / f"{name}-alone"
            alone.mkdir()
            (alone / path.name).write_bytes(path.read_bytes())
            reference = corrected(AutoTokenizer.from_pretrained(str(alone), gguf_file=path.name).backend_tokenizer, path)
            cases = make_cases(reference, extra=EXTRA_STRINGS)
            cases["generator"] = GENERATOR
            (OUT / f"{name}.cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1))
            print(f"{name}: vocab {cases['vocab_size']}, {len(cases['cases'])} strings, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
