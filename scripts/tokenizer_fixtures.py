#!/usr/bin/env python3
"""Reference fixtures for the Swift tokenizer (Sources/CraftModels/Tokenizers).

Run by hand with the reference environment (no internet needed):

    .venv-ref/bin/python scripts/tokenizer_fixtures.py

It trains small tokenizers with the Hugging Face `tokenizers` library on a corpus written below,
configures them like GPT-2, Llama-3, Llama-2 (byte fallback), Metaspace and WordLevel tokenizers,
saves each `tokenizer.json` to Tests/CraftModelsTests/Fixtures/tokenizers/NAME.tokenizer.json and
writes NAME.cases.json with the library's ids (with and without special tokens) and decoded strings
for every test string, plus decodes of arbitrary id sequences. The Swift tests must reproduce them
exactly.
"""
import json
import random
import sys
from pathlib import Path

import tokenizers
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from tokenizers.models import BPE, WordLevel

OUT = Path(__file__).resolve().parent.parent / "Tests" / "CraftModelsTests" / "Fixtures" / "tokenizers"
GENERATOR = f"scripts/tokenizer_fixtures.py with tokenizers {tokenizers.__version__}, Python {sys.version.split()[0]}"

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away.",
    "It's a truth universally acknowledged that a single model in possession of good data must be in want of a codebook.",
    "We'll see whether they're right: I've heard she'd said you'll manage, and I'm sure he's fine.",
    "Vision tokens come from a frozen, shared codebook; the language backend reads them through a projector.",
    "def quantize(features, codebook):\n    distances = ((features[:, None] - codebook[None]) ** 2).sum(-1)\n    return distances.argmin(-1)\n",
    "for (int i = 0; i < n; ++i) {\n\tsum += a[i] * b[i];\n}\n",
    "    indented line with four spaces\n\ttabbed line\n\n\nthree newlines above",
    "Numbers: 0 1 2 3 42 314159 2026 1,000,000 3.14 -7 +8 1e-5 0x1F",
    "Café, naïve, façade, résumé, Zoë, Ångström, São Paulo, Kraków, Dvořák, Øresund.",
    "Straße und Größe; ÉCOLE; İstanbul; ﬁne ﬂower; Ｆｕｌｌｗｉｄｔｈ; ① ② ③; ½ ¼.",
    "日本語のテキストと中文文本，还有한국어 텍스트도 있습니다。",
    "你好，世界！今天天气很好。我们在测试分词器。",
    "Emoji: 👋 🙂 🚀 🎉 👨‍👩‍👧‍👦 👍🏽 🇫🇷 ❤️ ✨",
    "Combining marks: e\u0301 a\u0300 o\u0308 n\u0303 Z\u0335\u0322a\u0336l\u0337g\u0338o\u0334",
    "مرحبا بالعالم. هذا نص باللغة العربية.",
    "שלום עולם, זה טקסט בעברית.",
    "Привет, мир! Это текст на русском языке.",
    "Γειά σου Κόσμε! Αυτό είναι ελληνικό κείμενο.",
    "नमस्ते दुनिया। यह हिंदी पाठ है।",
    "Whitespace   runs,\ttabs\t\tand  \n  newlines \r\n mixed.   ",
    "<|endoftext|> separates documents; <s> begins and </s> ends a sequence; <image> marks a picture.",
    "UPPER lower MiXeD CamelCase snake_case kebab-case SCREAMING_SNAKE",
    "Punctuation!!! Really??? Yes... (maybe) [no] {ok} \"quoted\" 'single' — dash – en – em.",
    "https://example.com/path?query=1&other=two#frag user@example.org",
    "The encoder emits discrete tokens; the backend generates text; the checker proves compatibility.",
]

TEST_STRINGS = [
    "",
    " ",
    "  ",
    "\n",
    "\t",
    "Hello world",
    " Hello world",
    "   leading spaces",
    "trailing spaces   ",
    "Hello  world   with    runs",
    "tabs\tand\t\ttabs",
    "line one\nline two\n\nline four\r\nwindows",
    "The quick brown fox jumps over the lazy dog.",
    "It's I'm don't they'll we've she'd you're IT'S YOU'RE We'Ve",
    "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "1234567890 3.14159 1,000,000 42nd 7th",
    "Café naïve façade résumé Zoë Ångström",
    "e\u0301 versus \u00e9, o\u0308 versus \u00f6",
    "Z\u0335\u0322a\u0336l\u0337g\u0338o\u0334",
    "ﬁne ﬂower Ｆｕｌｌｗｉｄｔｈ ① ½ ℌ ™",
    "Straße GRÖSSE İstanbul ΣΊΣΥΦΟΣ",
    "你好世界",
    "日本語のテキスト、한국어",
    "Emoji 👋🙂🚀 family 👨‍👩‍👧‍👦 thumbs 👍🏽 flag 🇫🇷",
    "مرحبا بالعالم",
    "שלום עולם",
    "\u200fRTL mark\u200e and zero\u200bwidth\u2060joiner",
    "non\u00a0breaking\u3000ideographic\u2003em space",
    "control\u0007chars\u001b[0m",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝕗𝕒𝕟𝕔𝕪 𝒮𝒸𝓇𝒾𝓅𝓉",
    "rare ꙮ ᚠᛇᚻ ⠓⠑⠇⠇⠕ 𓀀",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!???... ___ --- ***",
    "<s>Hello</s>",
    "<|endoftext|>",
    "first doc<|endoftext|>second doc",
    "text<image>text",
    " <image> spaced <image>",
    "<image><image><image>",
    "<s><s></s>",
    "a <mask> b <mask>c",
    "[SEP] not special here",
    "<|begin_of_text|>System: hi<|eot_id|>",
    "UPPER lower MiXeD",
    "Hello, World! HELLO world.",
    "kebab-case and snake_case and CamelCase",
    "https://example.com/path?query=1&other=two#frag",
    "Привет, мир! Γειά σου Κόσμε!",
    "नमस्ते दुनिया",
    "vertical\u000btab, next\u0085line, line\u2028separator, para\u2029graph, file\u001cseparator",
    "x   <mask>  y\t<mask>",
    "[SEP]   after [SEP]\tand[SEP]",
    "a fox b foxes fox_ fox. (fox)",
    "hello world hello  world Hello world",
    "<image>\n<image> \n <image>",
    "       ",
    "\n\n\n   \n\t\t",
]


def corpus_iterator():
    for _ in range(3):
        yield from CORPUS


def train_bpe(pre_tokenizer, special_tokens, vocab_size=700):
    tok = Tokenizer(BPE())
    tok.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus_iterator(), trainer)
    return tok


def gpt2_like():
    """GPT-2 style: ByteLevel pre-tokenizer and decoder; <s> $A </s> template; legacy "a b" merges."""
    specials = ["<|endoftext|>", "<s>", "</s>", "<image>"]
    tok = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=False), specials)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> $B:1 </s>:1",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    tok.add_special_tokens([tokenizers.AddedToken("<mask>", lstrip=True, rstrip=False, special=True, normalized=False)])
    data = json.loads(tok.to_str())
    # The older tokenizer.json format wrote merges as "a b" strings; check we read both forms.
    data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
    return Tokenizer.from_str(json.dumps(data))


def gpt2_prefix_space():
    """ByteLevel with add_prefix_space, NFC normalizer, ByteLevel post-processor, pair-form merges."""
    specials = ["<|endoftext|>", "<s>", "</s>", "<image>"]
    tok = train_bpe(pre_tokenizers.ByteLevel(add_prefix_space=True), specials)
    tok.normalizer = normalizers.NFC()
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=True)
    # A normalized, non-special added token and a single-word one.
    tok.add_tokens([
        tokenizers.AddedToken("hello world", single_word=False, normalized=True),
        tokenizers.AddedToken("fox", single_word=True, normalized=True),
        tokenizers.AddedToken("[SEP]", rstrip=True, normalized=False),
    ])
    # GPT-2's and RoBERTa's published files write empty strings rather than null here.
    data = json.loads(tok.to_str())
    data["model"]["continuing_subword_prefix"] = ""
    data["model"]["end_of_word_suffix"] = ""
    return Tokenizer.from_str(json.dumps(data))


def llama3_like():
    """Llama-3 style: Split(regex) + ByteLevel(use_regex=false), ignore_merges, <|begin_of_text|> $A."""
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<image>", "<s>", "</s>", "<|endoftext|>"]
    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
    ])
    tok = train_bpe(pre, specials, vocab_size=900)
    data = json.loads(tok.to_str())
    data["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(data))
    tok.decoder = decoders.ByteLevel(add_prefix_space=True, trim_offsets=True, use_regex=True)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(
            single="<|begin_of_text|> $A",
            pair="<|begin_of_text|> $A <|begin_of_text|>:1 $B:1",
            special_tokens=[("<|begin_of_text|>", bos)],
        ),
    ])
    return tok


def llama2_byte_fallback():
    """Llama-2 (sentencepiece BPE) style: Prepend/Replace normalizer, byte_fallback, fused unk, decoder chain."""
    tok = Tokenizer(BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(" ", "\u2581")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=600, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>"], limit_alphabet=70,
        show_progress=False,
    )
    tok.train_from_iterator(corpus_iterator(), trainer)
    data = json.loads(tok.to_str())
    model = data["model"]
    vocab = model["vocab"]
    next_id = max(vocab.values()) + 1
    for b in range(256):
        token = f"<0x{b:02X}>"
        if token not in vocab:
            vocab[token] = next_id
            next_id += 1
    model["byte_fallback"] = True
    model["fuse_unk"] = True
    data["normalizer"] = {
        "type": "Sequence",
        "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"},
        ],
    }
    data["pre_tokenizer"] = None
    data["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ],
    }
    tok = Tokenizer.from_str(json.dumps(data))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    return tok


def llama2_metaspace_first():
    """Newer Llama-2/Mistral conversions: no normalizer, Metaspace(prepend_scheme first, split false)."""
    data = json.loads(llama2_byte_fallback().to_str())
    data["normalizer"] = None
    data["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    return Tokenizer.from_str(json.dumps(data))


def metaspace_unk():
    """Metaspace pre-tokenizer and decoder, NFKC normalizer, unknown characters as <unk> (not fused)."""
    tok = Tokenizer(BPE(unk_token="<unk>", fuse_unk=False))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(
        vocab_size=500, min_frequency=1, special_tokens=["<unk>", "<s>", "</s>", "<image>"], limit_alphabet=60,
        show_progress=False,
    )
    tok.train_from_iterator(corpus_iterator(), trainer)
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    return tok


def wordpiece_style_bpe():
    """BPE with continuing_subword_prefix / end_of_word_suffix, Whitespace pre-tokenizer, lowercase."""
    tok = Tokenizer(BPE(unk_token="[UNK]", continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFD(), normalizers.StripAccents(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=500, min_frequency=1, special_tokens=["[UNK]", "[CLS]", "[SEP]"], limit_alphabet=50,
        continuing_subword_prefix="##", end_of_word_suffix="</w>", show_progress=False,
    )
    tok.train_from_iterator(corpus_iterator(), trainer)
    tok.decoder = decoders.BPEDecoder(suffix="</w>")
    return tok


def wordlevel():
    """WordLevel with Whitespace pre-tokenizer and Lowercase normalizer; [CLS] $A [SEP]; no decoder."""
    tok = Tokenizer(WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Strip()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(
        vocab_size=400, min_frequency=1, special_tokens=["[UNK]", "[CLS]", "[SEP]", "<image>"], show_progress=False
    )
    tok.train_from_iterator(corpus_iterator(), trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))],
    )
    return tok


def wordlevel_splits():
    """WordLevel over a Sequence of Split pre-tokenizers (every behavior) and WhitespaceSplit; Replace normalizer."""
    tok = Tokenizer(WordLevel(unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(r"\d+"), "0"),
        normalizers.Replace("’", "'"),
        normalizers.Lowercase(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Split("-", behavior="merged_with_previous"),
        pre_tokenizers.Split("_", behavior="merged_with_next"),
        pre_tokenizers.Split(Regex(r"[.,;:!?]"), behavior="isolated"),
        pre_tokenizers.Split(Regex(r"[()\[\]{}\"]"), behavior="removed"),
        pre_tokenizers.Split(Regex(r"[*]+"), behavior="contiguous"),
        pre_tokenizers.Split(Regex(r"[a-z']+"), behavior="removed", invert=True),
    ])
    trainer = trainers.WordLevelTrainer(
        vocab_size=300, min_frequency=1, special_tokens=["[UNK]", "<s>", "</s>"], show_progress=False
    )
    tok.train_from_iterator(corpus_iterator(), trainer)
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)
    return tok


def gpt2_truncate_pad():
    """The GPT-2 style tokenizer with right truncation and fixed-length right padding."""
    tok = gpt2_like()
    tok.enable_truncation(max_length=12)
    tok.enable_padding(length=16, pad_id=tok.token_to_id("<|endoftext|>"), pad_token="<|endoftext|>")
    return tok


def llama3_truncate_left():
    """The Llama-3 style tokenizer with left truncation and left padding to a multiple of 4."""
    tok = llama3_like()
    tok.enable_truncation(max_length=10, direction="left")
    tok.enable_padding(direction="left", pad_id=tok.token_to_id("<|end_of_text|>"), pad_token="<|end_of_text|>",
                       pad_to_multiple_of=4)
    return tok


BUILDERS = {
    "gpt2": gpt2_like,
    "gpt2_prefix_space": gpt2_prefix_space,
    "llama3": llama3_like,
    "llama2_byte_fallback": llama2_byte_fallback,
    "llama2_metaspace_first": llama2_metaspace_first,
    "metaspace_unk": metaspace_unk,
    "bpe_subword_affixes": wordpiece_style_bpe,
    "wordlevel": wordlevel,
    "wordlevel_splits": wordlevel_splits,
    "gpt2_truncate_pad": gpt2_truncate_pad,
    "llama3_truncate_left": llama3_truncate_left,
}


def make_cases(tok, extra=()):
    rng = random.Random(1234)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    cases = []
    for text in TEST_STRINGS + CORPUS + list(extra):
        with_special = tok.encode(text, add_special_tokens=True).ids
        without_special = tok.encode(text, add_special_tokens=False).ids
        cases.append({
            "text": text,
            "ids": with_special,
            "ids_without_special": without_special,
            "decoded": tok.decode(with_special, skip_special_tokens=True),
            "decoded_with_special": tok.decode(with_special, skip_special_tokens=False),
        })
    decode_cases = []
    for length in [1, 2, 3, 5, 8, 13, 21]:
        for _ in range(3):
            ids = [rng.randrange(vocab_size) for _ in range(length)]
            for skip in (True, False):
                decode_cases.append({"ids": ids, "skip_special_tokens": skip, "text": tok.decode(ids, skip_special_tokens=skip)})
    tokens = [{"id": i, "token": tok.id_to_token(i)} for i in range(0, vocab_size, max(1, vocab_size // 40))]
    return {
        "generator": GENERATOR,
        "vocab_size": vocab_size,
        "cases": cases,
        "decode_cases": decode_cases,
        "tokens": tokens,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        tok = build()
        path = OUT / f"{name}.tokenizer.json"
        if name in ("gpt2", "gpt2_truncate_pad"):
            # Keep the legacy "a b" merges exactly as built (Tokenizer.save would rewrite them as pairs).
            data = json.loads(tok.to_str())
            data["model"]["merges"] = [" ".join(pair) for pair in data["model"]["merges"]]
            path.write_text(json.dumps(data, ensure_ascii=False, indent=1))
        else:
            tok.save(str(path))
        reloaded = Tokenizer.from_file(str(path))
        cases = make_cases(reloaded)
        (OUT / f"{name}.cases.json").write_text(json.dumps(cases, ensure_ascii=False, indent=1))
        print(f"{name}: vocab {cases['vocab_size']}, {len(cases['cases'])} strings, {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
