#!/usr/bin/python3
"""PyTorch reference implementations of MedVL's adapters and the adapter fixture generator.

Run with Debian's interpreter (torch 1.13 + numpy; no transformers / peft / deepspeed):
    /usr/bin/python3 tools/adapters/reference.py
It rewrites tests/fixtures/adapters/ (see docs/adapters.md for the layout).

Everything is written from scratch in plain torch. The semantics restate, operation for operation:
  * H-LoRA        HealthGPT llava/peft/tuners/lora.py `Linear` (dense per-token softmax router over k experts, one
                  merged A [r_total, in] and B [out, r_total], gates repeat-interleaved over each expert's r_total/k
                  contiguous rank slots, dropout on the SCALED A output, scaling = alpha / r_total * k), targets from
                  llava/demo/utils.py find_all_linear_names, vocabulary extension from add_special_tokens_and_resize_model,
                  weight loading from load_weights (state dicts rooted at the PeftModel: keys under "base_model.model.").
  * LoRA          PEFT src/peft/tuners/lora/layer.py (scaling alpha/r or alpha/sqrt(r) with use_rslora; dropout on the
                  INPUT; merge W + scaling * B @ A; rank_pattern / alpha_pattern matched with `(.*\\.)?(key)$`),
                  adapter files as PEFT's save_pretrained writes them (adapter name removed from the keys).
  * MoELoRA       the baseline of HealthGPT Table 4: k separate LoRA experts, per-token dense softmax gate, k A and k B
                  matmuls (own file format, documented in docs/adapters.md).
  * Med-MoE       moe/layer.py + moe/sharded_moe.py of jiangsongtao/Med-MoE (patched DeepSpeed MoE): router Linear(H,E)
                  with bias evaluated in float32; top-1 combine weight = unrenormalised softmax probability; top-2
                  renormalised over the surviving pair; capacity ceil(S/E*cf) (x2 for top-2), first-come slot order;
                  l_aux; always-on meta expert added with weight 1; MoE on layers 0,2,4,...
Computation is float32; files stored as fp16/bf16 are rounded first so the references use exactly the stored values.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools", "models"))
import reference as M  # noqa: E402  (tiny decoders, CLIP, projector, fixture helpers)
from st_writer import load_file, save_file  # noqa: E402

OUT = os.path.join(ROOT, "tests", "fixtures", "adapters")
MODELS = os.path.join(ROOT, "tests", "fixtures", "models")
IGNORE_INDEX = -100


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------

def load_base(name):
    """The committed tiny HF checkpoint tests/fixtures/models/<name> as a float32 DecoderModel."""
    folder = os.path.join(MODELS, name)
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    family = M.decoder_fixtures()[name]["family"]
    model = M.DecoderModel(cfg, family)
    sd = {k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    model.load_state_dict(sd, strict=True)
    return model, cfg, family


def causal_lm_loss(logits, labels):
    """transformers' causal-LM loss: predict token t+1 from position t, mean over labels != -100."""
    labels = torch.tensor(labels)
    return F.cross_entropy(logits[:-1], labels[1:], ignore_index=IGNORE_INDEX)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def save_npy(folder, name, t):
    np.save(os.path.join(folder, name), t.detach().float().numpy().astype("<f4"))


def fresh_dir(path):
    os.makedirs(path, exist_ok=True)
    for f in os.listdir(path):
        p = os.path.join(path, f)
        if os.path.isfile(p):
            os.remove(p)
    return path


def rounded(t, dtype):
    return t.detach().to(dtype).float()


def listing(tensors):
    """(name, dtype, shape) for every tensor of a file, as the C# mapper tests read it."""
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16"}
    return [{"name": k, "dtype": names[v.dtype], "shape": list(v.shape)} for k, v in sorted(tensors.items())]


def linear_targets(model, targets):
    """Module names (relative to the CausalLM) of the nn.Linear layers whose last name component is in `targets`,
    never lm_head (HealthGPT find_all_linear_names removes it; PEFT suffix matching `key.endswith(target)`)."""
    out = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and name != "lm_head" and name.split(".")[-1] in targets:
            out.append(name)
    return out


def set_module(model, name, new):
    parent = model.get_submodule(".".join(name.split(".")[:-1]))
    setattr(parent, name.split(".")[-1], new)


def all_linear_names(model):
    """HealthGPT find_all_linear_names: last name component of every Linear outside the multimodal modules, minus lm_head."""
    names = set()
    for name, mod in model.named_modules():
        if any(k in name for k in ("mm_projector", "vision_tower", "vision_resampler")):
            continue
        if isinstance(mod, nn.Linear):
            parts = name.split(".")
            names.add(parts[0] if len(parts) == 1 else parts[-1])
    names.discard("lm_head")
    return sorted(names)


# ----------------------------------------------------------------------------------------------------------------
# Adapter layers
# ----------------------------------------------------------------------------------------------------------------

class HLoRALinear(nn.Module):
    """HealthGPT H-LoRA Linear. r = TOTAL rank over the k experts; expert i owns rank slots [i*r/k, (i+1)*r/k).

        result = x W0^T + b0
        route  = softmax(x Wr^T)                      Wr [k, in], no bias, dense (no top-k, no noise)
        a      = (x A^T) * scaling                    A [r, in];  scaling = alpha / r * k  (released code)
        out    = result + (repeat_interleave(route, r/k) * dropout(a)) B^T     B [out, r]

    `paper_scaling=True` uses the paper's Eq. 10 factor alpha*k/r_expert (k times the code's) instead."""

    def __init__(self, base, r, alpha, k, dropout=0.0, paper_scaling=False):
        super().__init__()
        assert r % k == 0
        self.base, self.r, self.k, self.times = base, r, k, r // k
        self.lora_route = nn.Linear(base.in_features, k, bias=False)
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = alpha * k / (r // k) if paper_scaling else alpha / r * k
        self.p = dropout
        self.dropout_mask = None  # explicit inverted-dropout mask [.., r] for the deterministic dropout fixture

    def forward(self, x):
        result = self.base(x)
        route = torch.softmax(self.lora_route(x), dim=-1).to(result.dtype)
        a = self.lora_A(x) * self.scaling
        if self.dropout_mask is not None:
            a = a * self.dropout_mask
        elif self.training and self.p > 0:
            a = F.dropout(a, self.p, True)
        gate = route.repeat_interleave(self.times, dim=-1)
        return result + self.lora_B(gate * a)


class LoRALinear(nn.Module):
    """PEFT LoRA Linear: out = x W0^T + b0 + scaling * B(A(dropout(x))), scaling = alpha/r or alpha/sqrt(r) (rsLoRA)."""

    def __init__(self, base, r, alpha, dropout=0.0, use_rslora=False):
        super().__init__()
        self.base, self.r = base, r
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        self.scaling = alpha / math.sqrt(r) if use_rslora else alpha / r
        self.p = dropout
        self.dropout_mask = None  # [.., in]

    def forward(self, x):
        result = self.base(x)
        xd = x * self.dropout_mask if self.dropout_mask is not None else (F.dropout(x, self.p, True) if self.training and self.p > 0 else x)
        return result + self.lora_B(self.lora_A(xd)) * self.scaling

    def delta_weight(self):
        return (self.lora_B.weight @ self.lora_A.weight) * self.scaling


class MoELoRALinear(nn.Module):
    """MoELoRA baseline: k independent LoRA experts (A_i [r, in], B_i [out, r]), token-level dense softmax gate
    Wg [k, in] (no bias): out = x W0^T + b0 + sum_i g_i(x) * scaling * B_i A_i dropout(x), scaling = alpha / r."""

    def __init__(self, base, r, alpha, k, dropout=0.0):
        super().__init__()
        self.base, self.r, self.k = base, r, k
        self.lora_gate = nn.Linear(base.in_features, k, bias=False)
        self.lora_A = nn.ModuleList([nn.Linear(base.in_features, r, bias=False) for _ in range(k)])
        self.lora_B = nn.ModuleList([nn.Linear(r, base.out_features, bias=False) for _ in range(k)])
        self.scaling = alpha / r
        self.p = dropout
        self.dropout_mask = None  # [.., in]

    def forward(self, x):
        result = self.base(x)
        g = torch.softmax(self.lora_gate(x), dim=-1)
        xd = x * self.dropout_mask if self.dropout_mask is not None else (F.dropout(x, self.p, True) if self.training and self.p > 0 else x)
        for i in range(self.k):
            result = result + g[..., i:i + 1] * self.lora_B[i](self.lora_A[i](xd)) * self.scaling
        return result


def init_adapter_(module, seed, b_std=0.05):
    """Random non-zero init (B too, unlike training's zeros) so every path is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if name.startswith("base."):
                continue
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * b_std)
            elif "lora_route" in name or "lora_gate" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (2.0 / math.sqrt(p.shape[1])))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[1]))


def wrap(model, names, factory, seed, dtype=torch.float32, b_std=0.05):
    """Replace each named Linear by factory(base); init; round the adapter weights to the storage dtype."""
    wrapped = {}
    for i, name in enumerate(names):
        base = model.get_submodule(name)
        for p in base.parameters():
            p.requires_grad_(False)
        m = factory(base)
        init_adapter_(m, seed * 1000 + i, b_std)
        with torch.no_grad():
            for n, p in m.named_parameters():
                if not n.startswith("base."):
                    p.copy_(rounded(p, dtype))
        set_module(model, name, m)
        wrapped[name] = m
    return wrapped


def adapter_params(wrapped, prefix):
    """{file key: parameter} for the adapter tensors (lora_*), keyed as the checkpoint stores them."""
    out = {}
    for name, m in wrapped.items():
        for n, p in m.named_parameters():
            if n.startswith("base."):
                continue
            out[f"{prefix}{name}.{n}"] = p
    return out


def grads_of(params):
    return {k: p.grad.detach().clone() for k, p in params.items()}


# ----------------------------------------------------------------------------------------------------------------
# HealthGPT: vocabulary extension, H-LoRA files
# ----------------------------------------------------------------------------------------------------------------

def vq_special_tokens(vq_idx_nums):
    """add_special_tokens_and_resize_model: <start_index>, <idx_0>..<idx_{n-1}>, <end_index>, <pixel_newline>."""
    return ["<start_index>"] + [f"<idx_{i}>" for i in range(vq_idx_nums)] + ["<end_index>", "<pixel_newline>"]


def extend_vocabulary(model, tokenizer_len, vq_idx_nums):
    """Resize embed_tokens / lm_head to tokenizer_len + n_new rows (HF resize_token_embeddings keeps the first
    min(old, new) rows), then set the LAST n_new rows of both to the mean of all rows before them
    (rows [0, new_len - n_new) = the tokenizer's original ids; for Phi-3 that also overwrites old padding rows)."""
    n_new = len(vq_special_tokens(vq_idx_nums))
    new_len = tokenizer_len + n_new
    H = model.model.embed_tokens.weight.shape[1]
    with torch.no_grad():
        for get, setter in ((lambda: model.model.embed_tokens.weight, lambda w: setattr(model.model, "embed_tokens", nn.Embedding.from_pretrained(w, freeze=True))),
                            (lambda: model.lm_head.weight, None)):
            old = get()
            w = torch.zeros(new_len, H)
            keep = min(old.shape[0], new_len)
            w[:keep] = old[:keep]
            w[new_len - n_new:] = w[:new_len - n_new].mean(dim=0, keepdim=True)
            if setter is not None:
                setter(w)
            else:
                lm = nn.Linear(H, new_len, bias=False)
                lm.weight.copy_(w)
                lm.weight.requires_grad_(False)
                model.lm_head = lm
    model.cfg = dict(model.cfg, vocab_size=new_len)
    return new_len, n_new


def gen_healthgpt():
    folder = fresh_dir(os.path.join(OUT, "healthgpt_phi3"))
    k = 4
    tokenizer_len, vq = 298, 16  # tiny stand-ins for Phi-3's 32011-token tokenizer (vocab 32064) and 8192 VQ codes
    plugins = {
        # HealthGPT-M3: comprehension r_total 64 (16/expert), generation 256 (64/expert), alpha = 2 r, 4 experts.
        "com": dict(r=8, alpha=16, select_layer=-2, seed=101),
        "gen": dict(r=16, alpha=32, select_layer=1, seed=202),
    }
    base_model, cfg, _ = load_base("phi3")
    H = cfg["hidden_size"]
    mm_hidden = M.CLIP_CONFIG["vision_config"]["hidden_size"]
    targets = all_linear_names(base_model)
    assert targets == ["down_proj", "gate_up_proj", "o_proj", "qkv_proj"], targets
    ids = [1, 17, 250, 298, 301, 305, 315]  # 298 = <start_index>, 299.. = <idx_i>
    labels = [IGNORE_INDEX, IGNORE_INDEX, 250, 298, 301, IGNORE_INDEX, 315]
    meta = {"base": "../../models/phi3", "tokenizer_len": tokenizer_len, "vq_idx_nums": vq, "experts": k,
            "target_modules": targets, "input_ids": ids, "labels": labels, "plugins": {}}
    listings = {}
    fusion = None
    for task, p in plugins.items():
        model, _, _ = load_base("phi3")
        for q in model.parameters():
            q.requires_grad_(False)
        new_len, n_new = extend_vocabulary(model, tokenizer_len, vq)
        if task == "gen":
            # fusion_layer_weights.bin: stage-2 "fusion embedding layer and output head" (full resized matrices).
            g = torch.Generator().manual_seed(303)
            with torch.no_grad():
                emb = rounded(model.model.embed_tokens.weight + 0.05 * torch.randn(new_len, H, generator=g), torch.float16)
                head = rounded(model.lm_head.weight + 0.05 * torch.randn(new_len, H, generator=g), torch.float16)
                model.model.embed_tokens.weight.copy_(emb)
                model.lm_head.weight.copy_(head)
            fusion = {"base_model.model.model.embed_tokens.weight": emb.half(), "base_model.model.lm_head.weight": head.half()}
        names = linear_targets(model, targets)
        wrapped = wrap(model, names, lambda b, p=p: HLoRALinear(b, p["r"], p["alpha"], k), p["seed"], torch.float16)
        params = adapter_params(wrapped, "base_model.model.")
        proj = M.build_projector("mlp2x_gelu", mm_hidden, H)
        M.randomize(proj, p["seed"] + 1)
        sd = {k2: v.half() for k2, v in params.items()}
        sd.update({f"base_model.model.model.mm_projector.{n}": rounded(v, torch.float16).half() for n, v in proj.state_dict().items()})
        fname = f"{task}_hlora_weights.bin"
        torch.save(sd, os.path.join(folder, fname))
        listings[fname] = listing(sd)
        model.eval()
        logits, _ = model(ids)
        save_npy(folder, f"expected_logits_{task}.npy", logits)
        loss = causal_lm_loss(logits, labels)
        loss.backward()
        grads = grads_of(params)
        save_file({k2: v.float() for k2, v in grads.items()}, os.path.join(folder, f"expected_grads_{task}.safetensors"))
        # Paper scaling (alpha*k/r_expert, k x larger) as an option: logits only.
        for m in wrapped.values():
            m.scaling = p["alpha"] * k / (p["r"] // k)
        with torch.no_grad():
            pl, _ = model(ids)
        save_npy(folder, f"expected_logits_{task}_paper_scaling.npy", pl)
        meta["plugins"][task] = {"file": fname, "r": p["r"], "alpha": p["alpha"], "scaling": p["alpha"] / p["r"] * k,
                                 "paper_scaling": p["alpha"] * k / (p["r"] // k), "mm_vision_select_layer": p["select_layer"],
                                 "loss": float(loss), "vocab_size": new_len, "new_tokens": n_new,
                                 "fusion_layer": task == "gen"}
        if task == "com":
            # Mean rows written by the vocabulary extension (comprehension keeps them).
            save_npy(folder, "expected_extended_embed_tokens.npy", model.model.embed_tokens.weight)
            save_npy(folder, "expected_extended_lm_head.npy", model.lm_head.weight)
    torch.save(fusion, os.path.join(folder, "fusion_layer_weights.bin"))
    listings["fusion_layer_weights.bin"] = listing(fusion)
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    np.save(os.path.join(folder, "labels.npy"), np.array(labels, dtype="<i8"))
    meta["special_tokens"] = {"first_id": tokenizer_len, "tokens": vq_special_tokens(vq)}
    write_json(os.path.join(folder, "fixture.json"), meta)
    write_json(os.path.join(folder, "listing.json"), listings)


def gen_healthgpt_qwen2():
    """HealthGPT-XL32 style: Qwen2.5 base, comprehension only, no VQ tokens, targets q,k,v,o,gate,up,down."""
    folder = fresh_dir(os.path.join(OUT, "healthgpt_qwen2"))
    k, r, alpha = 4, 8, 16
    model, cfg, _ = load_base("qwen2")
    for q in model.parameters():
        q.requires_grad_(False)
    targets = all_linear_names(model)
    assert targets == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"], targets
    wrapped = wrap(model, linear_targets(model, targets), lambda b: HLoRALinear(b, r, alpha, k), 404, torch.bfloat16)
    model.eval()
    params = adapter_params(wrapped, "base_model.model.")
    sd = {k2: v.to(torch.bfloat16) for k2, v in params.items()}
    proj = M.build_projector("mlp2x_gelu", M.CLIP_CONFIG["vision_config"]["hidden_size"], cfg["hidden_size"])
    M.randomize(proj, 405)
    sd.update({f"base_model.model.model.mm_projector.{n}": v.to(torch.bfloat16) for n, v in proj.state_dict().items()})
    fname = "com_hlora_weights_QWEN_32B.bin"
    torch.save(sd, os.path.join(folder, fname))
    ids = [280, 17, 250, 3, 99, 42, 7]
    labels = [IGNORE_INDEX, 17, 250, IGNORE_INDEX, 99, 42, 7]
    logits, _ = model(ids)
    save_npy(folder, "expected_logits_com.npy", logits)
    loss = causal_lm_loss(logits, labels)
    loss.backward()
    save_file({k2: v.float() for k2, v in grads_of(params).items()}, os.path.join(folder, "expected_grads_com.safetensors"))
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    np.save(os.path.join(folder, "labels.npy"), np.array(labels, dtype="<i8"))
    write_json(os.path.join(folder, "fixture.json"), {"base": "../../models/qwen2", "experts": k, "target_modules": targets,
                                                      "input_ids": ids, "labels": labels, "loss": float(loss),
                                                      "plugins": {"com": {"file": fname, "r": r, "alpha": alpha, "scaling": alpha / r * k}}})
    write_json(os.path.join(folder, "listing.json"), {fname: listing(sd)})


# ----------------------------------------------------------------------------------------------------------------
# PEFT LoRA
# ----------------------------------------------------------------------------------------------------------------

def pattern_key(patterns, module_name):
    # PEFT utils/other.py get_pattern_key: first pattern p with re.match(rf"(.*\.)?({p})$", name).
    import re
    for p in patterns:
        if re.match(rf"(.*\.)?({p})$", module_name):
            return p
    return None


def peft_config(base_name, r, alpha, dropout, targets, use_rslora=False, rank_pattern=None, alpha_pattern=None):
    # Field set of a PEFT 0.13.x LoraConfig.to_dict() as save_pretrained writes it (json, indent 2, sorted keys).
    return {
        "alpha_pattern": alpha_pattern or {}, "auto_mapping": None, "base_model_name_or_path": base_name, "bias": "none",
        "fan_in_fan_out": False, "inference_mode": True, "init_lora_weights": True, "layer_replication": None,
        "layers_pattern": None, "layers_to_transform": None, "loftq_config": {}, "lora_alpha": alpha,
        "lora_dropout": dropout, "megatron_config": None, "megatron_core": "megatron.core", "modules_to_save": None,
        "peft_type": "LORA", "r": r, "rank_pattern": rank_pattern or {}, "revision": None, "target_modules": targets,
        "task_type": "CAUSAL_LM", "use_dora": False, "use_rslora": use_rslora,
    }


def gen_peft(name, base, conf, seed, ids, labels):
    folder = fresh_dir(os.path.join(OUT, name))
    model, cfg, _ = load_base(base)
    for q in model.parameters():
        q.requires_grad_(False)
    names = linear_targets(model, conf["target_modules"])

    def factory(b, n=[0]):
        mod = names[n[0]]
        n[0] += 1
        rk = pattern_key(conf["rank_pattern"], mod)
        ak = pattern_key(conf["alpha_pattern"], mod)
        return LoRALinear(b, conf["rank_pattern"][rk] if rk else conf["r"], conf["alpha_pattern"][ak] if ak else conf["lora_alpha"],
                          conf["lora_dropout"], conf["use_rslora"])
    wrapped = wrap(model, names, factory, seed)
    model.eval()  # expected values are eval-mode (dropout off); dropout itself is pinned by layers/*.safetensors
    params = adapter_params(wrapped, "base_model.model.")
    sd = {k: v.detach().clone() for k, v in params.items()}
    save_file(sd, os.path.join(folder, "adapter_model.safetensors"))
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        json.dump(conf, f, indent=2, sort_keys=True)
    logits, _ = model(ids)
    save_npy(folder, "expected_logits.npy", logits)
    loss = causal_lm_loss(logits, labels)
    loss.backward()
    save_file({k: v.float() for k, v in grads_of(params).items()}, os.path.join(folder, "expected_grads.safetensors"))
    # Merged: W' = W + scaling * B @ A for every adapted Linear (PEFT merge_and_unload), then the plain base model.
    merged, _, _ = load_base(base)
    merged_sd = {}
    with torch.no_grad():
        for n, m in wrapped.items():
            w = merged.get_submodule(n).weight
            w.add_(m.delta_weight())
            merged_sd[n + ".weight"] = w.clone()
        ml, _ = merged(ids)
    assert torch.allclose(ml, logits, atol=1e-4), (ml - logits).abs().max()
    save_npy(folder, "expected_logits_merged.npy", ml)
    save_file(merged_sd, os.path.join(folder, "expected_merged_weights.safetensors"))
    scalings = {n: m.scaling for n, m in wrapped.items()}
    ranks = {n: m.r for n, m in wrapped.items()}
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    np.save(os.path.join(folder, "labels.npy"), np.array(labels, dtype="<i8"))
    write_json(os.path.join(folder, "fixture.json"), {"base": f"../../models/{base}", "input_ids": ids, "labels": labels,
                                                      "loss": float(loss), "ranks": ranks, "scalings": scalings})
    write_json(os.path.join(folder, "listing.json"), {"adapter_model.safetensors": listing(sd)})


# ----------------------------------------------------------------------------------------------------------------
# MoELoRA
# ----------------------------------------------------------------------------------------------------------------

def gen_moelora():
    folder = fresh_dir(os.path.join(OUT, "moelora_phi3"))
    k, r, alpha = 4, 2, 4
    model, cfg, _ = load_base("phi3")
    for q in model.parameters():
        q.requires_grad_(False)
    targets = ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]
    wrapped = wrap(model, linear_targets(model, targets), lambda b: MoELoRALinear(b, r, alpha, k, 0.05), 505)
    model.eval()
    params = adapter_params(wrapped, "base_model.model.")
    sd = {k2: v.detach().clone() for k2, v in params.items()}
    save_file(sd, os.path.join(folder, "adapter_model.safetensors"), metadata={"format": "pt", "adapter": "moelora"})
    write_json(os.path.join(folder, "adapter_config.json"), {"peft_type": "MOELORA", "r": r, "lora_alpha": alpha,
                                                              "lora_nums": k, "lora_dropout": 0.05, "target_modules": targets,
                                                              "base_model_name_or_path": "tiny-Phi-3-mini-4k-instruct"})
    ids = list(M.INPUT_IDS)
    labels = [IGNORE_INDEX, 17, 250, 3, IGNORE_INDEX, 42, 7]
    logits, _ = model(ids)
    save_npy(folder, "expected_logits.npy", logits)
    loss = causal_lm_loss(logits, labels)
    loss.backward()
    save_file({k2: v.float() for k2, v in grads_of(params).items()}, os.path.join(folder, "expected_grads.safetensors"))
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    np.save(os.path.join(folder, "labels.npy"), np.array(labels, dtype="<i8"))
    write_json(os.path.join(folder, "fixture.json"), {"base": "../../models/phi3", "input_ids": ids, "labels": labels,
                                                      "loss": float(loss), "experts": k, "r": r, "alpha": alpha, "scaling": alpha / r})
    write_json(os.path.join(folder, "listing.json"), {"adapter_model.safetensors": listing(sd)})


# ----------------------------------------------------------------------------------------------------------------
# Single-layer fixtures with an explicit dropout mask (the only way to pin dropout down without torch's RNG)
# ----------------------------------------------------------------------------------------------------------------

def gen_single_layers():
    folder = fresh_dir(os.path.join(OUT, "layers"))
    g = torch.Generator().manual_seed(606)
    T, din, dout, p = 5, 13, 11, 0.25  # odd sizes
    cases = {
        # name: (factory, mask width, scaling description)
        "hlora": (lambda b: HLoRALinear(b, 8, 16, 4, p), 8),
        "hlora_k2": (lambda b: HLoRALinear(b, 6, 9, 2, p), 6),
        "lora": (lambda b: LoRALinear(b, 4, 8, p), din),
        "lora_rslora": (lambda b: LoRALinear(b, 4, 8, p, use_rslora=True), din),
        "moelora": (lambda b: MoELoRALinear(b, 3, 6, 3, p), din),
    }
    meta = {}
    for i, (name, (factory, width)) in enumerate(cases.items()):
        base = nn.Linear(din, dout, bias=True)
        with torch.no_grad():
            base.weight.copy_(torch.randn(dout, din, generator=g) / math.sqrt(din))
            base.bias.copy_(torch.randn(dout, generator=g) * 0.1)
        m = factory(base)
        init_adapter_(m, 700 + i, 0.2)
        x = torch.randn(T, din, generator=g).requires_grad_(True)
        keep = (torch.rand(T, width, generator=g) >= p).float()
        m.dropout_mask = keep / (1 - p)  # inverted dropout: kept entries scaled by 1/(1-p)
        y = m(x)
        gy = torch.randn(T, dout, generator=g)
        (y * gy).sum().backward()
        tensors = {"x": x.detach(), "dropout_keep": keep, "grad_output": gy, "y": y.detach(), "grad_x": x.grad,
                   "base.weight": base.weight.detach(), "base.bias": base.bias.detach()}
        for n, prm in m.named_parameters():
            if n.startswith("base."):
                continue
            tensors[n] = prm.detach()
            tensors["grad." + n] = prm.grad
        save_file({k: v.contiguous().float() for k, v in tensors.items()}, os.path.join(folder, f"{name}.safetensors"))
        meta[name] = {"dropout_p": p, "scaling": m.scaling, "r": m.r, "experts": getattr(m, "k", 1),
                      "dropout_applies_to": "scaled A output [T, r]" if name.startswith("hlora") else "input x [T, in]"}
    write_json(os.path.join(folder, "fixture.json"), meta)


# ----------------------------------------------------------------------------------------------------------------
# Med-MoE
# ----------------------------------------------------------------------------------------------------------------

def capacity(S, E, cf, min_capacity):
    # sharded_moe._capacity: ceil(S / E * cf), at least min_capacity.
    return max(int(math.ceil(S / E * cf)), min_capacity)


def moe_gating(logits, k, cf, min_capacity, drop_tokens):
    """Deterministic restatement of sharded_moe.top1gating / top2gating (no RTS, no Gumbel noise).

    Returns (combine [S, E] float, route [S, k] long (-1 = dropped), weight [S, k], l_aux, gates [S, E]).
    top-1: weight = softmax prob of argmax (not renormalised); drop_tokens=False -> capacity = max count (no drop);
           drop_tokens=True -> the first `capacity` tokens in order per expert survive (released code: random
           token selection; MedVL: first-come, as top-2 does).
    top-2: 2nd = argmax of gates with the 1st masked (released: Gumbel-noised logits, also at eval); capacity
           ceil(S/E*2cf); slots by cumsum, 2nd-choice slots after all 1st-choice slots; renormalise over survivors.
    l_aux: top-1 E * sum(me*ce); top-2 mean(me*ce)*E*E (same value), ce from top-1 choices before capacity."""
    S, E = logits.shape
    gates = torch.softmax(logits, dim=1)
    idx1 = gates.argmax(dim=1)
    mask1 = F.one_hot(idx1, E)
    me, ce = gates.mean(0), mask1.float().mean(0)
    l_aux = (me * ce).sum() * E
    if k == 1:
        cap = capacity(S, E, cf, min_capacity)
        if not drop_tokens:
            cap = min(int(mask1.sum(0).max()), S)
        loc1 = torch.cumsum(mask1, 0) - 1
        mask1 = mask1 * (loc1 < cap)
        combine = gates * mask1.float()
        kept = mask1.sum(1) > 0
        route = torch.where(kept, idx1, torch.full_like(idx1, -1)).unsqueeze(1)
        weight = combine.sum(1, keepdim=True)
        return combine, route, weight, l_aux, gates
    cap = capacity(S, E, 2 * cf, min_capacity)
    idx2 = gates.masked_fill(mask1.bool(), float("-inf")).argmax(dim=1)
    mask2 = F.one_hot(idx2, E)
    loc1 = torch.cumsum(mask1, 0) - 1
    loc2 = torch.cumsum(mask2, 0) - 1 + mask1.sum(0, keepdim=True)
    mask1 = mask1 * (loc1 < cap)
    mask2 = mask2 * (loc2 < cap)
    g1 = (gates * mask1.float()).sum(1)
    g2 = (gates * mask2.float()).sum(1)
    denom = torch.clamp(g1 + g2, min=torch.finfo(g1.dtype).eps)
    g1, g2 = g1 / denom, g2 / denom
    combine = g1.unsqueeze(1) * mask1.float() + g2.unsqueeze(1) * mask2.float()
    r1 = torch.where(mask1.sum(1) > 0, idx1, torch.full_like(idx1, -1))
    r2 = torch.where(mask2.sum(1) > 0, idx2, torch.full_like(idx2, -1))
    return combine, torch.stack([r1, r2], 1), torch.stack([g1, g2], 1), l_aux, gates


class MedMoeBlock(nn.Module):
    """moe/layer.py MoE: y = sum_e combine[s,e] * E_e(x_s) + E_meta(x_s)   (use_residual=False)."""

    def __init__(self, layer, family, H, E, seed):
        super().__init__()
        import copy
        g = torch.Generator().manual_seed(seed)
        ffn = layer.mlp
        self.family, self.act = family, layer.act
        self.experts = nn.ModuleList()
        for _ in range(E):  # upcycled copies of the dense FFN, perturbed as if stage 3 had trained them
            e = copy.deepcopy(ffn)
            with torch.no_grad():
                for p in e.parameters():
                    p.add_(0.05 * torch.randn(p.shape, generator=g))
            self.experts.append(e)
        self.meta = ffn  # meta expert = the original FFN module
        self.wg = nn.Linear(H, E, bias=True)

    def ffn(self, m, x):
        if self.family == "phi":
            return m.fc2(self.act(m.fc1(x)))
        return m.down_proj(self.act(m.gate_proj(x)) * m.up_proj(x))

    def forward(self, x, k, cf, min_capacity, drop_tokens):
        logits = self.wg(x.float())  # router in fp32
        combine, route, weight, l_aux, gates = moe_gating(logits, k, cf, min_capacity, drop_tokens)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            out = out + combine[:, e:e + 1] * self.ffn(expert, x)
        return out + self.ffn(self.meta, x), route, weight, l_aux, gates


class MedMoeModel(nn.Module):
    def __init__(self, cfg, family, seed, router_seed):
        super().__init__()
        self.lm = M.DecoderModel(cfg, family)
        M.randomize(self.lm, seed)
        self.cfg, self.family = cfg, family
        L = cfg["num_hidden_layers"]
        self.moe_layers = list(range(L))[::2]  # moe_mode "sparse"
        H = cfg["hidden_size"]
        g = torch.Generator().manual_seed(router_seed)
        wg_w = torch.randn(4, H, generator=g) * (3.0 / math.sqrt(H))
        wg_b = torch.randn(4, generator=g) * 0.1
        self.blocks = nn.ModuleDict()
        for l in self.moe_layers:
            b = MedMoeBlock(self.lm.model.layers[l], family, H, 4, seed * 10 + l)
            with torch.no_grad():  # one router file loaded into every MoE layer (TopKGate.__init__)
                b.wg.weight.copy_(wg_w)
                b.wg.bias.copy_(wg_b)
            self.blocks[str(l)] = b

    def state_dict_hf(self):
        sd = {}
        for k, v in M.state_dict_of(self.lm).items():
            parts = k.split(".")
            if parts[:2] == ["model", "layers"] and int(parts[2]) in self.moe_layers and parts[3] == "mlp":
                continue
            sd[k] = v
        for l, b in self.blocks.items():
            p = f"model.layers.{l}.mlp."
            sd[p + "deepspeed_moe.gate.wg.weight"] = b.wg.weight.detach().clone()
            sd[p + "deepspeed_moe.gate.wg.bias"] = b.wg.bias.detach().clone()
            for j, e in enumerate(b.experts):
                for n, v in e.state_dict().items():
                    sd[p + f"deepspeed_moe.experts.deepspeed_experts.{j}.{n}"] = v.clone()
            for n, v in b.meta.state_dict().items():
                sd[p + f"meta_moe.{n}"] = v.clone()
        return sd

    def named_moe_params(self):
        out = {}
        for l, b in self.blocks.items():
            p = f"model.layers.{l}.mlp."
            out[p + "deepspeed_moe.gate.wg.weight"] = b.wg.weight
            out[p + "deepspeed_moe.gate.wg.bias"] = b.wg.bias
            for j, e in enumerate(b.experts):
                for n, v in e.named_parameters():
                    out[p + f"deepspeed_moe.experts.deepspeed_experts.{j}.{n}"] = v
            for n, v in b.meta.named_parameters():
                out[p + f"meta_moe.{n}"] = v
        return out

    def forward(self, ids, k, cf, min_capacity, drop_tokens):
        lm = self.lm
        h = lm.model.embed_tokens(torch.tensor(ids))
        pos = list(range(h.shape[0]))
        cos, sin = M.rope_cos_sin(self.cfg, lm.model.layers[0].rotary_dim, pos)
        routes, weights, l_auxes, gates = [], [], [], []
        for i, layer in enumerate(lm.model.layers):
            if self.family == "phi":
                x = layer.input_layernorm(h)
                a = layer.attn(x, cos, sin, None, 0)
            else:
                h = h + layer.attn(layer.input_layernorm(h), cos, sin, None, 0)
                x = layer.post_attention_layernorm(h)
            if i in self.moe_layers:
                y, r, w, la, gt = self.blocks[str(i)](x, k, cf, min_capacity, drop_tokens)
                routes.append(r)
                weights.append(w)
                l_auxes.append(la)
                gates.append(gt)
            else:
                y = layer.ffn(x)
            h = a + y + h if self.family == "phi" else h + y
        norm = lm.model.final_layernorm if self.family == "phi" else lm.model.norm
        return lm.lm_head(norm(h)), routes, weights, l_auxes, gates


MEDMOE_VARIANTS = {
    # Released final Med-MoE: top-1 + meta expert, drop_tokens=False (capacity arguments hard-coded 4/4/0, irrelevant).
    "top1": dict(k=1, cf=4.0, min_capacity=0, drop_tokens=False, aux_coef=0.0),
    # Paper / MoE-LLaVA: top-2 renormalised, Med-MoE's hard-coded eval capacity factor 4 -> never drops; aux 0.01.
    "top2": dict(k=2, cf=4.0, min_capacity=0, drop_tokens=True, aux_coef=0.01),
    # Capacity pressure: top-2 with cf 0.5 (capacity ceil(S/E*1)) -> second choices and late tokens dropped.
    "top2_cf0.5": dict(k=2, cf=0.5, min_capacity=0, drop_tokens=True, aux_coef=0.01),
    # top-1 with token dropping (DeepSpeed drop_tokens=True, cf 1.0), first-come slot order.
    "top1_drop_cf1.0": dict(k=1, cf=1.0, min_capacity=0, drop_tokens=True, aux_coef=0.01),
}


def medmoe_config(base_cfg, family):
    L = base_cfg["num_hidden_layers"]
    moe_layers = list(range(L))[::2]
    cfg = dict(base_cfg)
    if family == "stablelm":
        cfg.update({"_name_or_path": "tiny-llavastablelm-1.6b-medmoe", "architectures": ["MoELLaVAStablelmForCausalLM"],
                    "model_type": "moe_llava_stablelm"})
        train_modules = ["gate_proj", "up_proj", "down_proj", "wg"]
    else:
        cfg.update({"_name_or_path": "tiny-llavaphi-2.7b-medmoe", "architectures": ["MoELLaVAPhiForCausalLM"],
                    "model_type": "moe_llava_phi"})
        train_modules = ["fc1", "fc2", "wg"]
    cfg.update({"image_aspect_ratio": "pad", "image_projector_type": "mlp2x_gelu",
                "mm_hidden_size": M.CLIP_CONFIG["vision_config"]["hidden_size"], "mm_image_tower": "../../models/clip",
                "mm_use_im_patch_token": False, "mm_use_im_start_end": False, "mm_vision_select_feature": "patch",
                "mm_vision_select_layer": -2,
                "moe": {"capacity_factor": 1.5, "ep_size": 1, "eval_capacity_factor": 2.0, "min_capacity": 0,
                        "moe_enable": True, "moe_layers_idx": moe_layers, "moe_mode": "sparse",
                        "num_experts": [4] * len(moe_layers), "router_aux_loss_coef": 0.0, "top_k_experts": 1,
                        "train_modules": train_modules, "use_residual": False}})
    return cfg


def gen_medmoe(base_name, seed):
    folder = fresh_dir(os.path.join(OUT, f"medmoe_{base_name}"))
    spec = M.decoder_fixtures()[base_name]
    family = spec["family"]
    # MoE on layers 0 and 2, dense layer 1; narrower than the base fixtures to keep the 4 variants' gradients small.
    small = {"stablelm": dict(hidden_size=32, num_attention_heads=2, num_key_value_heads=2, intermediate_size=24),
             "phi2": dict(hidden_size=32, num_attention_heads=2, num_key_value_heads=2, intermediate_size=32)}[base_name]
    base_cfg = dict(spec["cfg"], num_hidden_layers=3, **small)
    model = MedMoeModel(base_cfg, family, seed, seed + 1)
    proj = M.build_projector("mlp2x_gelu", M.CLIP_CONFIG["vision_config"]["hidden_size"], base_cfg["hidden_size"])
    M.randomize(proj, seed + 2)
    cfg = medmoe_config(base_cfg, family)
    sd = model.state_dict_hf()
    sd.update(M.state_dict_of(proj, "model.mm_projector.image_spatial_proj."))
    save_file(sd, os.path.join(folder, "model.safetensors"))
    write_json(os.path.join(folder, "config.json"), cfg)
    ids = list(M.INPUT_IDS)
    labels = [IGNORE_INDEX, 17, 250, 3, 99, IGNORE_INDEX, 7]
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    np.save(os.path.join(folder, "labels.npy"), np.array(labels, dtype="<i8"))
    meta = {"moe_layers": model.moe_layers, "num_experts": 4, "input_ids": ids, "labels": labels, "variants": {}}
    for vname, v in MEDMOE_VARIANTS.items():
        params = model.named_moe_params()
        for p in model.parameters():
            p.requires_grad_(False)
        for p in params.values():
            p.requires_grad_(True)
            p.grad = None
        logits, routes, weights, l_auxes, gates = model(ids, v["k"], v["cf"], v["min_capacity"], v["drop_tokens"])
        ce = causal_lm_loss(logits, labels)
        aux = torch.stack(l_auxes).sum()
        loss = ce + v["aux_coef"] * aux  # MoELLaVA*ForCausalLM.forward: CE + router_aux_loss_coef * sum_layers l_aux
        loss.backward()
        save_npy(folder, f"{vname}.expected_logits.npy", logits)
        np.save(os.path.join(folder, f"{vname}.expected_routes.npy"), torch.stack(routes).numpy().astype("<i8"))  # [moeL, T, k], -1 dropped
        save_npy(folder, f"{vname}.expected_route_weights.npy", torch.stack(weights))  # [moeL, T, k]
        save_npy(folder, f"{vname}.expected_gate_probs.npy", torch.stack(gates))       # [moeL, T, E]
        save_npy(folder, f"{vname}.expected_l_aux.npy", torch.stack(l_auxes))          # [moeL]
        save_file({k2: p.grad.detach().float().clone() for k2, p in params.items()}, os.path.join(folder, f"{vname}.expected_grads.safetensors"))
        S = len(ids)
        cap = capacity(S, 4, 2 * v["cf"] if v["k"] == 2 else v["cf"], v["min_capacity"])
        meta["variants"][vname] = dict(v, capacity=cap if (v["k"] == 2 or v["drop_tokens"]) else None,
                                       ce_loss=float(ce), l_aux_sum=float(aux), loss=float(loss))
    write_json(os.path.join(folder, "fixture.json"), meta)
    write_json(os.path.join(folder, "listing.json"), {"model.safetensors": listing(sd)})


# ----------------------------------------------------------------------------------------------------------------
# Parameter accounting
# ----------------------------------------------------------------------------------------------------------------

STABLELM_2_1_6B = {  # stabilityai/stablelm-2-1_6b architecture numbers (med-moe.md §2.3)
    "model_type": "stablelm", "hidden_size": 2048, "intermediate_size": 5632, "num_hidden_layers": 24,
    "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 100352, "use_qkv_bias": True,
    "tie_word_embeddings": False,
}
CLIP_VIT_L14_336 = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "patch_size": 14,
                    "image_size": 336, "num_channels": 3}


def llm_params(cfg):
    """Per-part parameter counts of a decoder from its config: (embed, per-layer attention+norms, per-layer FFN, final
    norm + head). Families: phi3 (fused, RMSNorm, no bias), stablelm (LayerNorm w+b, qkv bias, SwiGLU),
    phi (LayerNorm w+b, biases everywhere, fc1/fc2, lm_head bias), llama/qwen2."""
    t = cfg["model_type"]
    H, I, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    q, kv = nh * hd, nkv * hd
    if t == "phi3":
        attn = H * (q + 2 * kv) + q * H + 2 * H
        ffn = H * 2 * I + I * H
        final = H + V * H
    elif t == "stablelm":
        attn = H * (q + 2 * kv) + (q + 2 * kv if cfg.get("use_qkv_bias") else 0) + q * H + 4 * H
        ffn = 3 * H * I
        final = 2 * H + V * H
    elif t == "phi":
        attn = H * (q + 2 * kv) + (q + 2 * kv) + q * H + H + 2 * H
        ffn = H * I + I + I * H + H
        final = 2 * H + V * H + V
    elif t in ("qwen2", "llama"):
        attn = H * (q + 2 * kv) + (q + 2 * kv if t == "qwen2" else 0) + q * H + 2 * H
        ffn = 3 * H * I
        final = H + (0 if cfg.get("tie_word_embeddings") else V * H)
    else:
        raise ValueError(t)
    return {"embed": V * H, "attn_per_layer": attn, "ffn_per_layer": ffn, "final": final, "layers": cfg["num_hidden_layers"]}


def clip_vision_params(c):
    D, I, L = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"]
    npos = (c["image_size"] // c["patch_size"]) ** 2 + 1
    emb = D + D * c["num_channels"] * c["patch_size"] ** 2 + npos * D + 2 * D  # class emb, patch conv (no bias), pos, pre-LN
    layer = 4 * (D * D + D) + 2 * D + D * I + I + I * D + D + 2 * D
    return emb + L * layer + 2 * D


def medmoe_accounting(cfg, experts=4, top_k=1, meta_expert=True):
    p = llm_params(cfg)
    L, H = p["layers"], cfg["hidden_size"]
    moe_layers = len(list(range(L))[::2])
    dense = p["embed"] + L * (p["attn_per_layer"] + p["ffn_per_layer"]) + p["final"]
    router = moe_layers * (experts * H + experts)  # Med-MoE gate has a bias
    extra_total = moe_layers * (experts + (1 if meta_expert else 0) - 1) * p["ffn_per_layer"]
    extra_active = moe_layers * (top_k + (1 if meta_expert else 0) - 1) * p["ffn_per_layer"]
    vision = clip_vision_params(CLIP_VIT_L14_336)
    proj = CLIP_VIT_L14_336["hidden_size"] * H + H + H * H + H
    return {"llm_dense": dense, "moe_layers": moe_layers, "ffn_per_layer": p["ffn_per_layer"], "router": router,
            "llm_total": dense + extra_total + router, "llm_activated": dense + extra_active + router,
            "vision_tower": vision, "projector": proj,
            "total_with_vision": dense + extra_total + router + vision + proj,
            "activated_with_vision": dense + extra_active + router + vision + proj}


def hlora_accounting(cfg, r_total, experts):
    """Adapter parameters of H-LoRA on every Linear but lm_head: per Linear r*(in+out) + experts*in."""
    H, I = cfg["hidden_size"], cfg["intermediate_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or H // nh
    if cfg["model_type"] == "phi3":
        shapes = [(H, (nh + 2 * nkv) * hd), (nh * hd, H), (H, 2 * I), (I, H)]
    else:
        shapes = [(H, nh * hd), (H, nkv * hd), (H, nkv * hd), (nh * hd, H), (H, I), (H, I), (I, H)]
    per_layer = sum(r_total * (i + o) + experts * i for i, o in shapes)
    return {"per_layer": per_layer, "total": per_layer * cfg["num_hidden_layers"]}


def gen_accounting():
    folder = os.path.join(OUT, "accounting")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(MODELS, "configs", "phi-2.config.json")) as f:
        phi2 = json.load(f)
    with open(os.path.join(MODELS, "configs", "Phi-3-mini-4k-instruct.config.json")) as f:
        phi3 = json.load(f)
    write_json(os.path.join(folder, "stablelm-2-1_6b.arch.json"), STABLELM_2_1_6B)
    write_json(os.path.join(folder, "clip-vit-large-patch14-336.arch.json"), CLIP_VIT_L14_336)
    out = {
        "medmoe_stablelm_2_1_6b": medmoe_accounting(STABLELM_2_1_6B),
        "medmoe_phi2": medmoe_accounting(phi2),
        "moellava_stablelm_top2_no_meta": medmoe_accounting(STABLELM_2_1_6B, top_k=2, meta_expert=False),
        "moellava_phi2_top2_no_meta": medmoe_accounting(phi2, top_k=2, meta_expert=False),
        "healthgpt_m3_com_hlora": hlora_accounting(phi3, 64, 4),
        "healthgpt_m3_gen_hlora": hlora_accounting(phi3, 256, 4),
    }
    write_json(os.path.join(folder, "expected_accounting.json"), out)
    return out


def main():
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    gen_healthgpt()
    print("wrote healthgpt_phi3")
    gen_healthgpt_qwen2()
    print("wrote healthgpt_qwen2")
    qwen_targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    gen_peft("peft_lora_qwen2", "qwen2",
             peft_config("tiny-Qwen2.5-Instruct", 4, 8, 0.05, qwen_targets, rank_pattern={"down_proj": 2}, alpha_pattern={"o_proj": 4}),
             808, [280, 17, 250, 3, 99, 42, 7], [IGNORE_INDEX, 17, 250, 3, IGNORE_INDEX, 42, 7])
    gen_peft("peft_rslora_phi3", "phi3",
             peft_config("tiny-Phi-3-mini-4k-instruct", 4, 8, 0.0, ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"], use_rslora=True),
             909, list(M.INPUT_IDS), [IGNORE_INDEX, IGNORE_INDEX, 250, 3, 99, 42, 7])
    print("wrote peft")
    gen_moelora()
    print("wrote moelora")
    gen_single_layers()
    print("wrote layers")
    gen_medmoe("stablelm", 51)
    gen_medmoe("phi2", 61)
    print("wrote medmoe")
    acc = gen_accounting()
    for k, v in acc.items():
        print(k, {a: (f"{b / 1e9:.3f}B" if b > 1e6 else b) for a, b in v.items()})


if __name__ == "__main__":
    main()
