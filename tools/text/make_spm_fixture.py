#!/usr/bin/env python3
"""Checks MedVL's SentencePiece-style BPE against the slow tokenizer itself (Google's sentencepiece, Debian
python3-sentencepiece 0.1.97), independently of Hugging Face's tokenizers.

1. Trains a small SentencePiece BPE model with Llama-2's settings (byte fallback, identity normalisation, dummy
   prefix, whitespace kept, digits split) on the 406-line multilingual corpus of tests/fixtures/text/expected.llama2.json.
2. Converts the .model to a tokenizer.json the way Hugging Face's LlamaConverter does (vocab by id; merges from every
   split of every piece into two vocabulary pieces, ordered by the merged piece's score; Prepend("▁") + Replace(" ",
   "▁") normaliser; BPE with byte_fallback and fuse_unk) — written here from that description, not copied.
3. Writes the sentencepiece ids of every corpus line (no BOS) and of extra lines the model never saw.

Output: tests/fixtures/text/spm/{tokenizer.json, spm.model, expected.json}.
Usage: /usr/bin/python3 tools/text/make_spm_fixture.py
"""
import json
import os

import sentencepiece as spm

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "text", "spm")


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(ROOT, "tests", "fixtures", "text", "expected.llama2.json"), encoding="utf-8") as f:
        corpus = [c["text"] for c in json.load(f)["cases"]]
    train = os.path.join(OUT, "train.txt")
    with open(train, "w", encoding="utf-8") as f:
        for t in corpus:
            if t.strip():
                f.write(t.replace("\n", " ") + "\n")
    prefix = os.path.join(OUT, "spm")
    spm.SentencePieceTrainer.train(
        input=train, model_prefix=prefix, model_type="bpe", vocab_size=1000, byte_fallback=True,
        normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=True, split_digits=True,
        allow_whitespace_only_pieces=True, character_coverage=0.9995, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, minloglevel=2)
    os.remove(train)
    os.remove(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
    n = sp.get_piece_size()
    vocab = {sp.id_to_piece(i): i for i in range(n)}
    scores = {sp.id_to_piece(i): sp.get_score(i) for i in range(n)}
    merges = []
    for piece, score in scores.items():
        local = [(piece[:k], piece[k:], score) for k in range(1, len(piece)) if piece[:k] in vocab and piece[k:] in vocab]
        local.sort(key=lambda m: (vocab[m[0]], vocab[m[1]]))
        merges.extend(local)
    merges.sort(key=lambda m: m[2], reverse=True)  # stable: ties keep the per-piece order
    tok = {
        "version": "1.0",
        # No added tokens: sentencepiece reads "<s>" in text as characters, while Hugging Face splits registered special
        # tokens out first (checked against HF itself in the llama2 fixtures). This file checks the model + normaliser.
        "added_tokens": [],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                         {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": vocab, "merges": [f"{a} {b}" for a, b, _ in merges]},
    }
    with open(os.path.join(OUT, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    unseen = ["Pneumothorax with mediastinal shift", "CT: 3 lesions, 12 mm × 8 mm", "ﬁbrosis — naïve café", "🩻 X-ray 😷",
              "Ünïcödé  double  spaces\tand tabs", "日本語の医療テキスト", "ёжик в тумане"]
    cases = [{"text": t, "ids": sp.encode(t)} for t in corpus + unseen]
    with open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"sentencepiece": spm.__version__, "vocab_size": n, "merges": len(merges), "cases": cases}, f, ensure_ascii=False)
    print(f"vocab {n}, merges {len(merges)}, cases {len(cases)}")


if __name__ == "__main__":
    main()
