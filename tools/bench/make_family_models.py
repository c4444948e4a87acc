#!/usr/bin/env python3
"""Random-weight Hugging Face folders at the real shapes of the decoders HealthGPT and Med-MoE run on, for
`medvl bench model` (docs/benchmarks.md, "Model throughput"). Weights are random (the speed does not depend on
them); the layer count can be cut (--layers) to keep a multi-billion-parameter model within disk and time, in which
case tokens/s scale roughly with full_layers / layers for the decoder part.

Shapes follow the released config.json of each model (tests/fixtures/models/configs for Phi-3-mini, Phi-2, Phi-4;
Qwen2.5-0.5B and StableLM-2-1.6B from their model cards' configs as summarised in ../shared/docs).

Usage: /usr/bin/python3 tools/bench/make_family_models.py --out DIR [--only NAME] [--layers N]
"""
import argparse
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "models"))
import reference as ref  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "models", "configs")


def released(name):
    with open(os.path.join(CONFIGS, name)) as f:
        return json.load(f)


def families():
    return {
        # HealthGPT-M3's language model (bf16 as released).
        "phi3-mini": ("phi3", released("Phi-3-mini-4k-instruct.config.json"), torch.bfloat16),
        # Med-MoE's Phi-2 base (released in float16).
        "phi2": ("phi", released("phi-2.config.json"), torch.float16),
        # HealthGPT's Qwen2.5 family at its smallest size (same block as the 32B model).
        "qwen2.5-0.5b": ("qwen2", {
            "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 896, "intermediate_size": 4864,
            "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
            "max_position_embeddings": 32768, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "hidden_act": "silu",
            "tie_word_embeddings": True, "torch_dtype": "bfloat16", "sliding_window": None, "use_sliding_window": False,
        }, torch.bfloat16),
        # Med-MoE's StableLM-2-1.6B base.
        "stablelm-2-1.6b": ("stablelm", {
            "model_type": "stablelm", "architectures": ["StableLmForCausalLM"], "hidden_size": 2048,
            "intermediate_size": 5632, "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 32,
            "vocab_size": 100352, "max_position_embeddings": 4096, "layer_norm_eps": 1e-5, "rope_theta": 10000,
            "partial_rotary_factor": 0.25, "use_qkv_bias": True, "use_parallel_residual": False, "qk_layernorm": False,
            "hidden_act": "silu", "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        }, torch.bfloat16),
    }


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--only", default=None)
    p.add_argument("--layers", type=int, default=0, help="cut every model to this many layers (0 = all)")
    a = p.parse_args()
    for name, (family, cfg, dtype) in families().items():
        if a.only and name != a.only:
            continue
        cfg = dict(cfg)
        if a.layers:
            cfg["num_hidden_layers"] = min(a.layers, cfg["num_hidden_layers"])
        folder = os.path.join(a.out, name)
        os.makedirs(folder, exist_ok=True)
        torch.manual_seed(0)
        with torch.no_grad():
            model = ref.DecoderModel(cfg, family).to(dtype)
            for prm in model.parameters():
                prm.normal_(0, 0.02)
        ref.write_checkpoint(folder, ref.state_dict_of(model), dtype)
        ref.write_json(os.path.join(folder, "config.json"), cfg)
        n = sum(t.numel() for t in model.parameters())
        print(f"{name}: {family}, {cfg['num_hidden_layers']} layers, {n / 1e6:.0f}M parameters, {dtype}")


if __name__ == "__main__":
    main()
