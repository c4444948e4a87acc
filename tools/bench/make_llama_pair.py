#!/usr/bin/env python3
"""Writes one random Llama-shaped float32 model twice: as a Hugging Face folder (config.json + model.safetensors) that
`medvl bench model` loads, and as a GGUF file that llama.cpp's llama-bench loads, so both engines run the SAME weights.

The default shape is the issue's reference model: hidden 1024, 8 layers, 16 heads (head_dim 64), ffn 2816, vocab 32000
(~168M parameters). The GGUF side needs llama.cpp's gguf-py package (pass its folder with --gguf-py); q_proj/k_proj
rows are permuted as llama.cpp's converter does (HF rotates halves, GGUF llama rotates adjacent pairs).

Usage: /usr/bin/python3 tools/bench/make_llama_pair.py --out DIR [--gguf-py /path/to/llama.cpp/gguf-py]
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))


def parse():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--gguf-py", default=None, help="llama.cpp's gguf-py folder; without it only the HF folder is written")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=16)
    p.add_argument("--ffn", type=int, default=2816)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def weights(a):
    rng = np.random.default_rng(a.seed)
    hd = a.hidden // a.heads

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)

    t = {"model.embed_tokens.weight": w(a.vocab, a.hidden), "model.norm.weight": np.ones(a.hidden, np.float32),
         "lm_head.weight": w(a.vocab, a.hidden)}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = np.ones(a.hidden, np.float32)
        t[p + "post_attention_layernorm.weight"] = np.ones(a.hidden, np.float32)
        t[p + "self_attn.q_proj.weight"] = w(a.heads * hd, a.hidden)
        t[p + "self_attn.k_proj.weight"] = w(a.kv_heads * hd, a.hidden)
        t[p + "self_attn.v_proj.weight"] = w(a.kv_heads * hd, a.hidden)
        t[p + "self_attn.o_proj.weight"] = w(a.hidden, a.heads * hd)
        t[p + "mlp.gate_proj.weight"] = w(a.ffn, a.hidden)
        t[p + "mlp.up_proj.weight"] = w(a.ffn, a.hidden)
        t[p + "mlp.down_proj.weight"] = w(a.hidden, a.ffn)
    return t


def write_hf(a, t):
    import torch
    from st_writer import save_file
    os.makedirs(a.out, exist_ok=True)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.hidden,
           "intermediate_size": a.ffn, "num_hidden_layers": a.layers, "num_attention_heads": a.heads,
           "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab, "max_position_embeddings": 4096,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
           "torch_dtype": "float32", "bos_token_id": 1, "eos_token_id": 2}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    save_file({k: torch.from_numpy(v) for k, v in t.items()}, os.path.join(a.out, "model.safetensors"))


def permute_rope(w, heads):
    # llama.cpp convert_hf_to_gguf LlamaModel.permute: [heads, 2, hd/2, in] -> [heads, hd/2, 2, in].
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def write_gguf(a, t):
    sys.path.insert(0, a.gguf_py)
    import gguf
    path = os.path.join(a.out, "model-f32.gguf")
    g = gguf.GGUFWriter(path, "llama")
    g.add_name("medvl-bench-llama")
    g.add_context_length(4096)
    g.add_embedding_length(a.hidden)
    g.add_block_count(a.layers)
    g.add_feed_forward_length(a.ffn)
    g.add_head_count(a.heads)
    g.add_head_count_kv(a.kv_heads)
    g.add_rope_dimension_count(a.hidden // a.heads)
    g.add_rope_freq_base(10000.0)
    g.add_layer_norm_rms_eps(1e-5)
    g.add_file_type(gguf.LlamaFileType.ALL_F32)
    # A SentencePiece-style vocabulary of the right size: specials, the 256 byte tokens, then filler pieces.
    toks = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    toks += [f"\u2581t{i}".encode() for i in range(a.vocab - len(toks))]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    types += [gguf.TokenType.NORMAL] * (a.vocab - len(types))
    g.add_tokenizer_model("llama")
    g.add_token_list(toks)
    g.add_token_scores([-float(i) for i in range(a.vocab)])
    g.add_token_types(types)
    g.add_bos_token_id(1)
    g.add_eos_token_id(2)
    g.add_unk_token_id(0)
    names = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
             "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
             "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    g.add_tensor("token_embd.weight", t["model.embed_tokens.weight"])
    for i in range(a.layers):
        for hf, gg in names.items():
            v = t[f"model.layers.{i}.{hf}.weight"]
            if hf == "self_attn.q_proj":
                v = permute_rope(v, a.heads)
            elif hf == "self_attn.k_proj":
                v = permute_rope(v, a.kv_heads)
            g.add_tensor(f"blk.{i}.{gg}.weight", np.ascontiguousarray(v))
    g.add_tensor("output_norm.weight", t["model.norm.weight"])
    g.add_tensor("output.weight", t["lm_head.weight"])
    g.write_header_to_file()
    g.write_kv_data_to_file()
    g.write_tensors_to_file()
    g.close()


def main():
    a = parse()
    t = weights(a)
    write_hf(a, t)
    if a.gguf_py:
        write_gguf(a, t)
    n = sum(v.size for v in t.values())
    print(f"wrote {a.out}: {n / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
