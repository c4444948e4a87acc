#!/usr/bin/python3
"""PyTorch reference implementations of the MedVL language and vision towers, and the tiny-checkpoint generator.

Run with Debian's interpreter (torch 1.13, numpy; no `transformers`):   /usr/bin/python3 tools/models/reference.py
It rewrites tests/fixtures/models/<family>/ (config.json, generation_config.json, *.safetensors, expected_*.npy).

The modules below are written from scratch in plain torch. Their semantics follow Hugging Face transformers'
modeling files (names given per class) — parameter names are the HF state-dict names so the written checkpoints
are real HF folders — and LLaVA's multimodal glue (llava/model/llava_arch.py, multimodal_projector/builder.py,
multimodal_encoder/clip_encoder.py). Everything is computed in float32 (a bf16 checkpoint is upcast on load,
exactly what a C# engine that reads bf16 weights into f32 does).
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from st_writer import load_file, save_file  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "models")

# Fixed prompt for every decoder (T = 7); ids < 300 = every tiny vocab.
INPUT_IDS = [1, 17, 250, 3, 99, 42, 7]
IMAGE_TOKEN_INDEX = -200  # llava/constants.py


# ----------------------------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------------------------

def act_fn(name):
    # transformers/activations.py ACT2FN
    if name == "silu":
        return F.silu
    if name == "gelu_new":  # NewGELUActivation: tanh approximation
        return lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "quick_gelu":  # QuickGELUActivation
        return lambda x: x * torch.sigmoid(1.702 * x)
    if name == "gelu":  # exact erf GELU
        return F.gelu
    raise ValueError(name)


class RMSNorm(nn.Module):
    """LlamaRMSNorm / Phi3RMSNorm / Qwen2RMSNorm: x * rsqrt(mean(x^2) + eps) * weight (no mean subtraction, no bias)."""

    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        var = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(var + self.eps))


def rotate_half(x):
    # modeling_llama.rotate_half: halves, not interleaved pairs (HF checkpoints are permuted for this layout).
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(cfg, rotary_dim, position_ids):
    """cos/sin [T, rotary_dim] for the config's rope scheme.

    default: modeling_llama.LlamaRotaryEmbedding  inv_freq = 1 / base^(2i/d).
    longrope/su (Phi-3 128k): modeling_phi3.Phi3LongRoPEScaledRotaryEmbedding (4.41; = modeling_rope_utils
      _compute_longrope_parameters in later versions): inv_freq = 1 / (ext_factor_i * base^(2i/d)), with
      ext_factors = long_factor if max(position_ids)+1 > original_max_position_embeddings else short_factor,
      and cos/sin multiplied by sqrt(1 + ln(scale)/ln(original_max)), scale = max_pos/original_max (1 if scale<=1).
    """
    base = float(cfg.get("rope_theta", 10000.0))
    exponent = torch.arange(0, rotary_dim, 2, dtype=torch.int64).float() / rotary_dim
    rs = cfg.get("rope_scaling")
    mscale = 1.0
    if rs is None:
        inv_freq = 1.0 / (base ** exponent)
    else:
        kind = rs.get("rope_type", rs.get("type"))
        assert kind in ("longrope", "su"), kind
        orig = cfg.get("original_max_position_embeddings", rs.get("original_max_position_embeddings"))
        seq_len = int(max(position_ids)) + 1
        ext = torch.tensor(rs["long_factor"] if seq_len > orig else rs["short_factor"], dtype=torch.float32)
        inv_freq = 1.0 / (ext * base ** exponent)
        scale = cfg["max_position_embeddings"] / orig
        mscale = 1.0 if scale <= 1.0 else math.sqrt(1 + math.log(scale) / math.log(orig))
    pos = torch.tensor(position_ids, dtype=torch.float32)
    freqs = pos[:, None] * inv_freq[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos() * mscale, emb.sin() * mscale


def apply_rope(x, cos, sin, rotary_dim):
    """x [heads, T, head_dim]; rotates the first rotary_dim channels (partial rotary: StableLM, Phi-2)."""
    rot, rest = x[..., :rotary_dim], x[..., rotary_dim:]
    rot = rot * cos + rotate_half(rot) * sin
    return torch.cat((rot, rest), dim=-1)


def attention(q, k, v, n_rep, sliding_window=None, past_len=0):
    """q [H, Tq, D], k/v [KV, Tk, D]. Causal (query i sits at absolute position past_len+i), GQA by repeat_kv,
    softmax in fp32 with scale 1/sqrt(D) (eager_attention_forward in modeling_llama)."""
    k = k.repeat_interleave(n_rep, dim=0)
    v = v.repeat_interleave(n_rep, dim=0)
    d = q.shape[-1]
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    tq, tk = q.shape[1], k.shape[1]
    qi = torch.arange(tq)[:, None] + past_len
    kj = torch.arange(tk)[None, :]
    allowed = kj <= qi
    if sliding_window is not None:
        # transformers >= 4.48 masking_utils.sliding_window_overlay: kv_idx > q_idx - sliding_window.
        allowed = allowed & (kj > qi - sliding_window)
    scores = scores.masked_fill(~allowed, float("-inf"))
    p = torch.softmax(scores.float(), dim=-1)
    return p @ v


# ----------------------------------------------------------------------------------------------------------------
# Decoder families
# ----------------------------------------------------------------------------------------------------------------

class DecoderLayer(nn.Module):
    """One decoder block. `family` picks the HF module layout:

    phi3    modeling_phi3.Phi3DecoderLayer: RMSNorm pre-norm; fused qkv_proj (rows q|k|v) and o_proj, no bias;
            Phi3MLP fused gate_up_proj (rows gate|up), out = down(up * silu(gate)).
    llama   modeling_llama.LlamaDecoderLayer: RMSNorm; q/k/v/o_proj (attention_bias flag); SwiGLU gate/up/down.
    qwen2   modeling_qwen2.Qwen2DecoderLayer: as llama with bias on q/k/v only.
    stablelm modeling_stablelm.StableLmDecoderLayer: LayerNorm (weight+bias) pre-norm, q/k/v bias if use_qkv_bias,
            o_proj no bias, partial rotary, SwiGLU without bias; use_parallel_residual=False (sequential).
    phi     modeling_phi.PhiDecoderLayer: ONE input_layernorm feeding attention and MLP in parallel,
            h = attn(ln(h)) + mlp(ln(h)) + h; q/k/v/dense with bias; fc1/fc2 with bias, gelu_new; partial rotary.
    """

    def __init__(self, cfg, family):
        super().__init__()
        self.family = family
        H = cfg["hidden_size"]
        nh = cfg["num_attention_heads"]
        nkv = cfg.get("num_key_value_heads") or nh
        hd = cfg.get("head_dim") or H // nh
        I = cfg["intermediate_size"]
        self.nh, self.nkv, self.hd = nh, nkv, hd
        self.rotary_dim = int(hd * cfg.get("partial_rotary_factor", 1.0))
        self.cfg = cfg
        self.self_attn = nn.Module()
        self.mlp = nn.Module()
        a, m = self.self_attn, self.mlp
        if family == "phi3":
            a.qkv_proj = nn.Linear(H, (nh + 2 * nkv) * hd, bias=False)
            a.o_proj = nn.Linear(nh * hd, H, bias=False)
            m.gate_up_proj = nn.Linear(H, 2 * I, bias=False)
            m.down_proj = nn.Linear(I, H, bias=False)
        elif family in ("llama", "qwen2", "stablelm"):
            qkv_bias = {"llama": cfg.get("attention_bias", False), "qwen2": True,
                        "stablelm": cfg.get("use_qkv_bias", False)}[family]
            o_bias = cfg.get("attention_bias", False) if family == "llama" else False
            a.q_proj = nn.Linear(H, nh * hd, bias=qkv_bias)
            a.k_proj = nn.Linear(H, nkv * hd, bias=qkv_bias)
            a.v_proj = nn.Linear(H, nkv * hd, bias=qkv_bias)
            a.o_proj = nn.Linear(nh * hd, H, bias=o_bias)
            mlp_bias = cfg.get("mlp_bias", False) if family == "llama" else False
            m.gate_proj = nn.Linear(H, I, bias=mlp_bias)
            m.up_proj = nn.Linear(H, I, bias=mlp_bias)
            m.down_proj = nn.Linear(I, H, bias=mlp_bias)
        elif family == "phi":
            a.q_proj = nn.Linear(H, nh * hd, bias=True)
            a.k_proj = nn.Linear(H, nkv * hd, bias=True)
            a.v_proj = nn.Linear(H, nkv * hd, bias=True)
            a.dense = nn.Linear(nh * hd, H, bias=True)
            m.fc1 = nn.Linear(H, I, bias=True)
            m.fc2 = nn.Linear(I, H, bias=True)
        else:
            raise ValueError(family)
        if family in ("phi3", "llama", "qwen2"):
            self.input_layernorm = RMSNorm(H, cfg["rms_norm_eps"])
            self.post_attention_layernorm = RMSNorm(H, cfg["rms_norm_eps"])
        elif family == "stablelm":
            self.input_layernorm = nn.LayerNorm(H, eps=cfg["layer_norm_eps"])
            self.post_attention_layernorm = nn.LayerNorm(H, eps=cfg["layer_norm_eps"])
        else:  # phi: one norm only
            self.input_layernorm = nn.LayerNorm(H, eps=cfg["layer_norm_eps"])
        self.act = act_fn(cfg["hidden_act"])

    def attn(self, x, cos, sin, cache, past_len):
        a = self.self_attn
        T = x.shape[0]
        if self.family == "phi3":
            qkv = a.qkv_proj(x)
            qn, kn = self.nh * self.hd, self.nkv * self.hd
            q, k, v = qkv[:, :qn], qkv[:, qn:qn + kn], qkv[:, qn + kn:]
        else:
            q, k, v = a.q_proj(x), a.k_proj(x), a.v_proj(x)
        q = q.view(T, self.nh, self.hd).transpose(0, 1)
        k = k.view(T, self.nkv, self.hd).transpose(0, 1)
        v = v.view(T, self.nkv, self.hd).transpose(0, 1)
        q = apply_rope(q, cos, sin, self.rotary_dim)
        k = apply_rope(k, cos, sin, self.rotary_dim)
        if cache is not None:
            if "k" in cache:
                k = torch.cat((cache["k"], k), dim=1)
                v = torch.cat((cache["v"], v), dim=1)
            cache["k"], cache["v"] = k, v
        sw = self.cfg.get("sliding_window") if self.family in ("phi3",) and self.cfg.get("sliding_window") else None
        o = attention(q, k, v, self.nh // self.nkv, sw, past_len)
        o = o.transpose(0, 1).reshape(T, self.nh * self.hd)
        return a.dense(o) if self.family == "phi" else a.o_proj(o)

    def ffn(self, x):
        m = self.mlp
        if self.family == "phi3":
            gate, up = m.gate_up_proj(x).chunk(2, dim=-1)
            return m.down_proj(up * self.act(gate))
        if self.family == "phi":
            return m.fc2(self.act(m.fc1(x)))
        return m.down_proj(self.act(m.gate_proj(x)) * m.up_proj(x))

    def forward(self, h, cos, sin, cache=None, past_len=0):
        if self.family == "phi":
            x = self.input_layernorm(h)
            return self.attn(x, cos, sin, cache, past_len) + self.ffn(x) + h
        h = h + self.attn(self.input_layernorm(h), cos, sin, cache, past_len)
        return h + self.ffn(self.post_attention_layernorm(h))


class DecoderModel(nn.Module):
    """<Family>ForCausalLM: model.embed_tokens -> layers -> model.norm (phi: model.final_layernorm) -> lm_head."""

    def __init__(self, cfg, family):
        super().__init__()
        self.cfg, self.family = cfg, family
        H, V = cfg["hidden_size"], cfg["vocab_size"]
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(V, H)
        self.model.layers = nn.ModuleList([DecoderLayer(cfg, family) for _ in range(cfg["num_hidden_layers"])])
        if family in ("phi3", "llama", "qwen2"):
            self.model.norm = RMSNorm(H, cfg["rms_norm_eps"])
        elif family == "stablelm":
            self.model.norm = nn.LayerNorm(H, eps=cfg["layer_norm_eps"])
        else:
            self.model.final_layernorm = nn.LayerNorm(H, eps=cfg["layer_norm_eps"])
        self.tied = bool(cfg.get("tie_word_embeddings", False))
        if not self.tied:
            self.lm_head = nn.Linear(H, V, bias=(family == "phi"))

    def forward_embeds(self, h, position_ids, caches=None, past_len=0):
        """h [T, H] input embeddings. Returns (logits [T, V], hidden_states [L+1, T, H]) where hidden_states[0] is
        the embedding output and hidden_states[i] the output of layer i (before the final norm)."""
        layer0 = self.model.layers[0]
        cos, sin = rope_cos_sin(self.cfg, layer0.rotary_dim, position_ids)
        states = [h]
        for i, layer in enumerate(self.model.layers):
            h = layer(h, cos, sin, None if caches is None else caches[i], past_len)
            states.append(h)
        norm = self.model.final_layernorm if self.family == "phi" else self.model.norm
        h = norm(h)
        logits = F.linear(h, self.model.embed_tokens.weight) if self.tied else self.lm_head(h)
        return logits, torch.stack(states)

    def forward(self, ids):
        return self.forward_embeds(self.model.embed_tokens(torch.tensor(ids)), list(range(len(ids))))


# ----------------------------------------------------------------------------------------------------------------
# CLIP vision (modeling_clip.CLIPVisionTransformer) and the LLaVA projector
# ----------------------------------------------------------------------------------------------------------------

class ClipVision(nn.Module):
    """vision_model.*: embeddings (Conv2d patch embedding without bias, class_embedding, position_embedding),
    pre_layrnorm (sic, HF's spelling), encoder.layers[i] (layer_norm1 -> self_attn(q,k,v,out_proj, bias) -> +res,
    layer_norm2 -> mlp(fc1, quick_gelu, fc2) -> +res), post_layernorm applied to the CLS token only (pooler_output)."""

    def __init__(self, vc):
        super().__init__()
        D, P, C = vc["hidden_size"], vc["patch_size"], vc.get("num_channels", 3)
        self.vc = vc
        n_pos = (vc["image_size"] // P) ** 2 + 1
        self.embeddings = nn.Module()
        self.embeddings.class_embedding = nn.Parameter(torch.randn(D))
        self.embeddings.patch_embedding = nn.Conv2d(C, D, kernel_size=P, stride=P, bias=False)
        self.embeddings.position_embedding = nn.Embedding(n_pos, D)
        self.pre_layrnorm = nn.LayerNorm(D, eps=vc["layer_norm_eps"])
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList()
        for _ in range(vc["num_hidden_layers"]):
            L = nn.Module()
            L.self_attn = nn.Module()
            for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
                setattr(L.self_attn, n, nn.Linear(D, D))
            L.layer_norm1 = nn.LayerNorm(D, eps=vc["layer_norm_eps"])
            L.mlp = nn.Module()
            L.mlp.fc1 = nn.Linear(D, vc["intermediate_size"])
            L.mlp.fc2 = nn.Linear(vc["intermediate_size"], D)
            L.layer_norm2 = nn.LayerNorm(D, eps=vc["layer_norm_eps"])
            self.encoder.layers.append(L)
        self.post_layernorm = nn.LayerNorm(D, eps=vc["layer_norm_eps"])
        self.act = act_fn(vc["hidden_act"])

    def forward(self, pixel_values):
        """pixel_values [1, C, S, S] -> (hidden_states [L+1, N+1, D], pooler_output [D])."""
        e = self.embeddings
        patches = e.patch_embedding(pixel_values).flatten(2).transpose(1, 2)[0]  # [N, D], row-major patches
        x = torch.cat((e.class_embedding[None, :], patches), dim=0) + e.position_embedding.weight
        x = self.pre_layrnorm(x)
        states = [x]
        nh = self.vc["num_attention_heads"]
        D = x.shape[-1]
        hd = D // nh
        for L in self.encoder.layers:
            r = x
            y = L.layer_norm1(x)
            a = L.self_attn
            q = (a.q_proj(y) * hd ** -0.5).view(-1, nh, hd).transpose(0, 1)
            k = a.k_proj(y).view(-1, nh, hd).transpose(0, 1)
            v = a.v_proj(y).view(-1, nh, hd).transpose(0, 1)
            p = torch.softmax(q @ k.transpose(-1, -2), dim=-1)  # no mask in the vision tower
            o = (p @ v).transpose(0, 1).reshape(-1, D)
            x = r + a.out_proj(o)
            x = x + L.mlp.fc2(self.act(L.mlp.fc1(L.layer_norm2(x))))
            states.append(x)
        return torch.stack(states), self.post_layernorm(x[0])


class ClipText(nn.Module):
    """text_model.* parameter layout only (modeling_clip.CLIPTextTransformer); MedVL never runs the text tower,
    the tensors exist so a full CLIPModel checkpoint can be recognised and skipped."""

    def __init__(self, tc):
        super().__init__()
        D = tc["hidden_size"]
        self.embeddings = nn.Module()
        self.embeddings.token_embedding = nn.Embedding(tc["vocab_size"], D)
        self.embeddings.position_embedding = nn.Embedding(tc["max_position_embeddings"], D)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList()
        for _ in range(tc["num_hidden_layers"]):
            L = nn.Module()
            L.self_attn = nn.Module()
            for n in ("k_proj", "v_proj", "q_proj", "out_proj"):
                setattr(L.self_attn, n, nn.Linear(D, D))
            L.layer_norm1 = nn.LayerNorm(D)
            L.mlp = nn.Module()
            L.mlp.fc1 = nn.Linear(D, tc["intermediate_size"])
            L.mlp.fc2 = nn.Linear(tc["intermediate_size"], D)
            L.layer_norm2 = nn.LayerNorm(D)
            self.encoder.layers.append(L)
        self.final_layer_norm = nn.LayerNorm(D)


def build_projector(kind, mm_hidden, hidden):
    """llava/model/multimodal_projector/builder.py: 'linear' -> Linear(mm_hidden, hidden);
    'mlp{N}x_gelu' -> Linear(mm_hidden, hidden), then (GELU, Linear(hidden, hidden)) N-1 times (nn.GELU = exact erf)."""
    if kind == "linear":
        return nn.Linear(mm_hidden, hidden)
    assert kind.startswith("mlp") and kind.endswith("x_gelu"), kind
    depth = int(kind[3:-6])
    mods = [nn.Linear(mm_hidden, hidden)]
    for _ in range(1, depth):
        mods += [nn.GELU(), nn.Linear(hidden, hidden)]
    return nn.Sequential(*mods)


def select_image_features(hidden_states, layer, feature):
    """clip_encoder.CLIPVisionTower.feature_select: hidden_states[select_layer]; 'patch' drops CLS, 'cls_patch' keeps."""
    f = hidden_states[layer]
    return f[1:] if feature == "patch" else f


def splice_image(embed_tokens, ids, image_embeds):
    """llava_arch.prepare_inputs_labels_for_multimodal (batch 1, one image): split the ids at IMAGE_TOKEN_INDEX,
    embed the text chunks with embed_tokens and insert the projected image features in place of the -200 token.
    Position ids are 0..L-1 over the spliced sequence."""
    k = ids.index(IMAGE_TOKEN_INDEX)
    before = embed_tokens(torch.tensor(ids[:k], dtype=torch.long))
    after = embed_tokens(torch.tensor(ids[k + 1:], dtype=torch.long))
    return torch.cat((before, image_embeds, after), dim=0)


# ----------------------------------------------------------------------------------------------------------------
# Deterministic random init (scaled so that activations are O(1) and logits differ visibly between tokens)
# ----------------------------------------------------------------------------------------------------------------

def randomize(module, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            if name.endswith("layernorm.weight") or name.endswith("norm.weight") or ".layer_norm" in name and name.endswith(".weight") \
                    or name.endswith("layer_norm.weight") or name.endswith("pre_layrnorm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif p.dim() >= 2 and "embed" not in name:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(fan_in))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def state_dict_of(module, prefix=""):
    return {prefix + k: v.detach().clone() for k, v in module.state_dict().items()}


def round_bf16_(module):
    """Make the module's weights exactly the bf16 values that get written, so the f32 reference uses them."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.to(torch.bfloat16).float())


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def save_npy(folder, name, t):
    np.save(os.path.join(folder, name), t.detach().float().numpy().astype("<f4"))


def write_checkpoint(folder, tensors, dtype=torch.float32, shards=1):
    tensors = {k: v.to(dtype) for k, v in tensors.items()}
    if shards == 1:
        save_file(tensors, os.path.join(folder, "model.safetensors"))
        return
    # transformers modeling_utils.save_pretrained sharding: model-0000i-of-0000n.safetensors plus an index with
    # metadata.total_size (bytes of all tensors) and weight_map name -> shard file.
    names = sorted(tensors)
    per = math.ceil(len(names) / shards)
    weight_map = {}
    total = 0
    for i in range(shards):
        part = {n: tensors[n] for n in names[i * per:(i + 1) * per]}
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        save_file(part, os.path.join(folder, fname))
        for n, t in part.items():
            weight_map[n] = fname
            total += t.numel() * t.element_size()
    write_json(os.path.join(folder, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})


def check_roundtrip(folder, model_tensors, dtype):
    files = [f for f in os.listdir(folder) if f.endswith(".safetensors")]
    got = {}
    for f in files:
        got.update(load_file(os.path.join(folder, f)))
    assert set(got) == set(model_tensors), (folder, set(got) ^ set(model_tensors))
    for k, v in model_tensors.items():
        assert torch.equal(got[k].float(), v.to(dtype).float()), k


# ----------------------------------------------------------------------------------------------------------------
# Fixture definitions: field sets copied from the released configs (tests/fixtures/models/configs/), numbers shrunk.
# ----------------------------------------------------------------------------------------------------------------

def phi3_config(**over):
    cfg = {
        "_name_or_path": "tiny-Phi-3-mini-4k-instruct",
        "architectures": ["Phi3ForCausalLM"],
        "attention_dropout": 0.0,
        "bos_token_id": 1,
        "embd_pdrop": 0.0,
        "eos_token_id": 290,
        "hidden_act": "silu",
        "hidden_size": 60,
        "initializer_range": 0.02,
        "intermediate_size": 72,
        "max_position_embeddings": 256,
        "model_type": "phi3",
        "num_attention_heads": 5,
        "num_hidden_layers": 2,
        "num_key_value_heads": 5,
        "original_max_position_embeddings": 256,
        "pad_token_id": 290,
        "resid_pdrop": 0.0,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 10000.0,
        "sliding_window": 255,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.41.2",
        "use_cache": True,
        "attention_bias": False,
        "vocab_size": 300,
    }
    cfg.update(over)
    return cfg


def longrope_factors(n, seed):
    g = torch.Generator().manual_seed(seed)
    short = [round(1.0 + 0.05 * i + 0.1 * float(torch.rand(1, generator=g)), 4) for i in range(n)]
    long = [round(1.5 + 1.7 * i + float(torch.rand(1, generator=g)), 4) for i in range(n)]
    return short, long


def decoder_fixtures():
    short, long = longrope_factors(6, 7)
    return {
        # HealthGPT-M3 base: Phi-3-mini-4k-instruct (MHA), head_dim 12.
        "phi3": dict(family="phi3", seed=11, cfg=phi3_config(), gen={"bos_token_id": 1, "eos_token_id": [290, 291, 297], "pad_token_id": 290}),
        # Phi-3-mini-128k-instruct style LongRoPE: short factors for T <= 32, long factors beyond.
        "phi3_longrope": dict(family="phi3", seed=12, cfg=phi3_config(
            _name_or_path="tiny-Phi-3-mini-128k-instruct", max_position_embeddings=256, original_max_position_embeddings=32,
            rope_scaling={"long_factor": long, "short_factor": short, "type": "longrope"}, sliding_window=255),
            gen={"bos_token_id": 1, "eos_token_id": [290, 291, 297], "pad_token_id": 290}, long_ids=True),
        # HealthGPT-L14 base: phi-4 = Phi3ForCausalLM with GQA 3:1, head_dim 10, rope_theta 250000, no sliding window.
        "phi4": dict(family="phi3", seed=13, cfg=phi3_config(
            _name_or_path="tiny-phi-4", hidden_size=60, num_attention_heads=6, num_key_value_heads=2, bos_token_id=257,
            eos_token_id=265, pad_token_id=299, rope_theta=250000, sliding_window=None, max_position_embeddings=256,
            original_max_position_embeddings=256, transformers_version="4.47.0"),
            gen={"bos_token_id": 257, "eos_token_id": 265, "pad_token_id": 299}),
        # Llama, GQA 2:1, untied, written as 2 shards + index.
        "llama": dict(family="llama", seed=14, shards=2, cfg={
            "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": 1, "eos_token_id": 2, "head_dim": 10, "hidden_act": "silu", "hidden_size": 60,
            "initializer_range": 0.02, "intermediate_size": 72, "max_position_embeddings": 256, "mlp_bias": False,
            "model_type": "llama", "num_attention_heads": 6, "num_hidden_layers": 3, "num_key_value_heads": 3,
            "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 500000.0,
            "tie_word_embeddings": False, "torch_dtype": "float32", "transformers_version": "4.45.0",
            "use_cache": True, "vocab_size": 300},
            gen={"bos_token_id": 1, "eos_token_id": 2}),
        # Llama with tied embeddings (no lm_head.weight in the file), GQA 2:1.
        "llama_tied": dict(family="llama", seed=15, cfg={
            "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
            "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu", "hidden_size": 40,
            "initializer_range": 0.02, "intermediate_size": 72, "max_position_embeddings": 256, "mlp_bias": False,
            "model_type": "llama", "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2,
            "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": None, "rope_theta": 10000.0,
            "tie_word_embeddings": True, "torch_dtype": "float32", "transformers_version": "4.45.0",
            "use_cache": True, "vocab_size": 300},
            gen={"bos_token_id": 1, "eos_token_id": 2}),
        # HealthGPT-XL32 base: Qwen2.5-Instruct (q/k/v bias, GQA 2:1); stored as bf16.
        "qwen2": dict(family="qwen2", seed=16, dtype=torch.bfloat16, cfg={
            "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 280,
            "eos_token_id": 282, "hidden_act": "silu", "hidden_size": 56, "initializer_range": 0.02,
            "intermediate_size": 72, "max_position_embeddings": 256, "max_window_layers": 2, "model_type": "qwen2",
            "num_attention_heads": 4, "num_hidden_layers": 2, "num_key_value_heads": 2, "rms_norm_eps": 1e-06,
            "rope_theta": 1000000.0, "sliding_window": 256, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
            "transformers_version": "4.43.1", "use_cache": True, "use_sliding_window": False, "vocab_size": 300},
            gen={"bos_token_id": 280, "pad_token_id": 280, "eos_token_id": [282, 280], "do_sample": True,
                 "repetition_penalty": 1.05, "temperature": 0.7, "top_p": 0.8, "top_k": 20}),
        # Med-MoE base: StableLM-2-1.6B (LayerNorm with bias, qkv bias, rotary on 25% of head_dim = 6 of 24).
        "stablelm": dict(family="stablelm", seed=17, cfg={
            "architectures": ["StableLmForCausalLM"], "bos_token_id": 280, "eos_token_id": 280, "hidden_act": "silu",
            "hidden_size": 72, "initializer_range": 0.02, "intermediate_size": 100, "max_position_embeddings": 256,
            "model_type": "stablelm", "layer_norm_eps": 1e-05, "num_attention_heads": 3, "num_hidden_layers": 2,
            "num_key_value_heads": 3, "partial_rotary_factor": 0.25, "qk_layernorm": False, "rope_scaling": None,
            "rope_theta": 10000, "tie_word_embeddings": False, "torch_dtype": "float32",
            "transformers_version": "4.40.0", "use_cache": True, "use_parallel_residual": False,
            "use_qkv_bias": True, "vocab_size": 300, "attention_dropout": 0.0, "hidden_dropout": 0.0},
            gen={"bos_token_id": 280, "eos_token_id": 280}),
        # Med-MoE base: Phi-2 (model_type "phi"): parallel attn+MLP, partial rotary 0.4 of head_dim 20 = 8, gelu_new.
        "phi2": dict(family="phi", seed=18, cfg={
            "_name_or_path": "tiny-phi-2", "architectures": ["PhiForCausalLM"], "attention_dropout": 0.0,
            "bos_token_id": 290, "embd_pdrop": 0.0, "eos_token_id": 290, "hidden_act": "gelu_new",
            "hidden_size": 60, "initializer_range": 0.02, "intermediate_size": 96, "layer_norm_eps": 1e-05,
            "max_position_embeddings": 256, "model_type": "phi", "num_attention_heads": 3, "num_hidden_layers": 2,
            "num_key_value_heads": 3, "partial_rotary_factor": 0.4, "qk_layernorm": False, "resid_pdrop": 0.1,
            "rope_scaling": None, "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float32",
            "transformers_version": "4.37.0", "use_cache": True, "vocab_size": 300},
            gen={"bos_token_id": 290, "eos_token_id": 290}),
    }


CLIP_CONFIG = {
    "_name_or_path": "tiny-clip-vit-large-patch14-336",
    "architectures": ["CLIPModel"],
    "initializer_factor": 1.0,
    "logit_scale_init_value": 2.6592,
    "model_type": "clip",
    "projection_dim": 24,
    "text_config": {
        "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2, "num_hidden_layers": 1,
        "max_position_embeddings": 16, "vocab_size": 100, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05,
        "projection_dim": 24, "model_type": "clip_text_model", "bos_token_id": 0, "eos_token_id": 2, "pad_token_id": 1,
    },
    "torch_dtype": "float32",
    "transformers_version": "4.21.3",
    "vision_config": {
        "hidden_size": 48, "intermediate_size": 96, "num_attention_heads": 4, "num_hidden_layers": 3,
        "image_size": 28, "patch_size": 7, "num_channels": 3, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-05,
        "projection_dim": 24, "model_type": "clip_vision_model", "dropout": 0.0, "attention_dropout": 0.0,
    },
}


def gen_decoder(name, spec):
    folder = os.path.join(OUT, name)
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    cfg = spec["cfg"]
    torch.manual_seed(spec["seed"])
    model = DecoderModel(cfg, spec["family"])
    randomize(model, spec["seed"])
    dtype = spec.get("dtype", torch.float32)
    if dtype == torch.bfloat16:
        round_bf16_(model)
    sd = state_dict_of(model)
    write_checkpoint(folder, sd, dtype, spec.get("shards", 1))
    check_roundtrip(folder, sd, dtype)
    write_json(os.path.join(folder, "config.json"), cfg)
    write_json(os.path.join(folder, "generation_config.json"), {**spec["gen"], "transformers_version": cfg.get("transformers_version", "4.41.2")})
    with torch.no_grad():
        logits, states = model(INPUT_IDS)
        np.save(os.path.join(folder, "input_ids.npy"), np.array(INPUT_IDS, dtype="<i8"))
        save_npy(folder, "expected_logits.npy", logits)
        save_npy(folder, "expected_hidden_states.npy", states)
        # KV-cache two-step run: prefill 4 tokens, then feed 3 more with the cached k/v (positions 4..6).
        caches = [dict() for _ in model.model.layers]
        e = model.model.embed_tokens(torch.tensor(INPUT_IDS))
        l1, _ = model.forward_embeds(e[:4], [0, 1, 2, 3], caches, 0)
        l2, _ = model.forward_embeds(e[4:], [4, 5, 6], caches, 4)
        step = torch.cat((l1, l2), dim=0)
        assert torch.allclose(step, logits, atol=1e-4), (name, (step - logits).abs().max())
        save_npy(folder, "expected_logits_kvcache.npy", step)
        if spec.get("long_ids"):
            g = torch.Generator().manual_seed(99)
            long_ids = torch.randint(0, cfg["vocab_size"], (40,), generator=g).tolist()
            ll, _ = model(long_ids)
            np.save(os.path.join(folder, "input_ids_long.npy"), np.array(long_ids, dtype="<i8"))
            save_npy(folder, "expected_logits_long.npy", ll)
    return model


def gen_clip():
    folder = os.path.join(OUT, "clip")
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    vc, tc = CLIP_CONFIG["vision_config"], CLIP_CONFIG["text_config"]
    torch.manual_seed(21)
    vision = ClipVision(vc)
    text = ClipText(tc)
    randomize(vision, 21)
    randomize(text, 22)
    g = torch.Generator().manual_seed(23)
    sd = state_dict_of(vision, "vision_model.")
    sd.update(state_dict_of(text, "text_model."))
    sd["text_projection.weight"] = torch.randn(CLIP_CONFIG["projection_dim"], tc["hidden_size"], generator=g) * 0.2
    sd["visual_projection.weight"] = torch.randn(CLIP_CONFIG["projection_dim"], vc["hidden_size"], generator=g) * 0.2
    sd["logit_scale"] = torch.tensor(CLIP_CONFIG["logit_scale_init_value"])
    write_checkpoint(folder, sd)
    check_roundtrip(folder, sd, torch.float32)
    write_json(os.path.join(folder, "config.json"), CLIP_CONFIG)
    # CLIPImageProcessor settings of openai/clip-vit-large-patch14-336, sizes shrunk to the tiny image.
    write_json(os.path.join(folder, "preprocessor_config.json"), {
        "crop_size": vc["image_size"], "do_center_crop": True, "do_normalize": True, "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
        "resample": 3, "size": vc["image_size"]})
    pixel = torch.randn(1, 3, vc["image_size"], vc["image_size"], generator=torch.Generator().manual_seed(24))
    with torch.no_grad():
        states, pooled = vision(pixel)
    save_npy(folder, "pixel_values.npy", pixel)
    save_npy(folder, "expected_hidden_states.npy", states)  # [L+1, 1+N, D]
    save_npy(folder, "expected_pooler_output.npy", pooled)   # post_layernorm(last_hidden_state[CLS])
    save_npy(folder, "expected_image_embeds.npy", sd["visual_projection.weight"] @ pooled)
    return vision, pixel, states


def gen_llava_phi3(vision_states):
    """HealthGPT-like: a Phi-3 LLM plus mm_projector (mlp2x_gelu) over CLIP hidden_states[-2] patch tokens."""
    folder = os.path.join(OUT, "llava_phi3")
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    vc = CLIP_CONFIG["vision_config"]
    cfg = phi3_config(_name_or_path="tiny-HealthGPT-M3", architectures=["LlavaPhiForCausalLM"], model_type="llava_phi",
                      image_aspect_ratio="pad", mm_hidden_size=vc["hidden_size"], mm_patch_merge_type="flat",
                      mm_projector_type="mlp2x_gelu", mm_use_im_patch_token=False, mm_use_im_start_end=False,
                      mm_vision_select_feature="patch", mm_vision_select_layer=-2, mm_vision_tower="../clip",
                      tokenizer_padding_side="right", tokenizer_model_max_length=2048)
    torch.manual_seed(31)
    model = DecoderModel(cfg, "phi3")
    randomize(model, 31)
    proj = build_projector("mlp2x_gelu", vc["hidden_size"], cfg["hidden_size"])
    randomize(proj, 32)
    sd = state_dict_of(model)
    sd.update(state_dict_of(proj, "model.mm_projector."))
    write_checkpoint(folder, sd)
    check_roundtrip(folder, sd, torch.float32)
    write_json(os.path.join(folder, "config.json"), cfg)
    write_json(os.path.join(folder, "generation_config.json"), {"bos_token_id": 1, "eos_token_id": [290, 291, 297], "pad_token_id": 290, "transformers_version": "4.41.2"})
    ids = [1, 17, 250, IMAGE_TOKEN_INDEX, 99, 42, 7]
    with torch.no_grad():
        feats = select_image_features(vision_states, cfg["mm_vision_select_layer"], cfg["mm_vision_select_feature"])
        img = proj(feats)
        embeds = splice_image(model.model.embed_tokens, ids, img)
        logits, _ = model.forward_embeds(embeds, list(range(embeds.shape[0])))
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    save_npy(folder, "expected_image_features.npy", img)      # [N, hidden] after the projector
    save_npy(folder, "expected_inputs_embeds.npy", embeds)     # [T-1+N, hidden]
    save_npy(folder, "expected_logits.npy", logits)


def gen_medmoe_stablelm(vision_states):
    """Med-MoE-like: StableLM LLM, image_spatial_proj mlp2x_gelu projector, MoE FFN in even layers (4 routed experts
    deep-copied then perturbed, meta expert = original FFN, router Linear(H,4) with bias, top-1 + meta):
    y = softmax(Wx+b)[e*] * E_{e*}(x) + E_meta(x)   (Med-MoE moe/layer.py + sharded_moe.top1gating, no token drop)."""
    folder = os.path.join(OUT, "medmoe_stablelm")
    os.makedirs(folder, exist_ok=True)
    for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))
    vc = CLIP_CONFIG["vision_config"]
    base = decoder_fixtures()["stablelm"]["cfg"]
    L = base["num_hidden_layers"]
    moe_layers = list(range(L))[::2]
    cfg = dict(base)
    cfg.update({"_name_or_path": "tiny-llavastablelm-1.6b-medmoe", "architectures": ["MoELLaVAStablelmForCausalLM"],
                "model_type": "moe_llava_stablelm", "image_aspect_ratio": "pad", "image_projector_type": "mlp2x_gelu",
                "mm_hidden_size": vc["hidden_size"], "mm_image_tower": "../clip", "mm_use_im_patch_token": False,
                "mm_use_im_start_end": False, "mm_vision_select_feature": "patch", "mm_vision_select_layer": -2,
                "moe": {"capacity_factor": 1.5, "ep_size": 1, "eval_capacity_factor": 2.0, "min_capacity": 0,
                        "moe_enable": True, "moe_layers_idx": moe_layers, "moe_mode": "sparse",
                        "num_experts": [4] * len(moe_layers), "router_aux_loss_coef": 0.0, "top_k_experts": 1,
                        "train_modules": ["gate_proj", "up_proj", "down_proj", "wg"], "use_residual": False}})
    torch.manual_seed(41)
    model = DecoderModel(base, "stablelm")
    randomize(model, 41)
    proj = build_projector("mlp2x_gelu", vc["hidden_size"], base["hidden_size"])
    randomize(proj, 42)
    H, I = base["hidden_size"], base["intermediate_size"]
    g = torch.Generator().manual_seed(43)
    moe = {}
    for l in moe_layers:
        mlp = model.model.layers[l].mlp
        experts = []
        for j in range(4):
            e = {n: getattr(mlp, n).weight.detach() + 0.05 * torch.randn(getattr(mlp, n).weight.shape, generator=g)
                 for n in ("gate_proj", "up_proj", "down_proj")}
            experts.append(e)
        moe[l] = {"experts": experts, "wg_w": torch.randn(4, H, generator=g) * 0.5, "wg_b": torch.randn(4, generator=g) * 0.1}
    sd = {}
    for k, v in state_dict_of(model).items():
        parts = k.split(".")
        if parts[0] == "model" and parts[1] == "layers" and int(parts[2]) in moe_layers and parts[3] == "mlp":
            sd[".".join(parts[:4] + ["meta_moe"] + parts[4:])] = v
        else:
            sd[k] = v
    for l, m in moe.items():
        p = f"model.layers.{l}.mlp.deepspeed_moe."
        sd[p + "gate.wg.weight"] = m["wg_w"]
        sd[p + "gate.wg.bias"] = m["wg_b"]
        for j, e in enumerate(m["experts"]):
            for n, w in e.items():
                sd[p + f"experts.deepspeed_experts.{j}.{n}.weight"] = w
    sd.update(state_dict_of(proj, "model.mm_projector.image_spatial_proj."))
    write_checkpoint(folder, sd)
    check_roundtrip(folder, sd, torch.float32)
    write_json(os.path.join(folder, "config.json"), cfg)
    write_json(os.path.join(folder, "generation_config.json"), {"bos_token_id": 280, "eos_token_id": 280, "transformers_version": "4.37.0"})

    def moe_ffn(layer_idx, x):
        layer = model.model.layers[layer_idx]
        meta = layer.ffn(x)
        m = moe[layer_idx]
        logits = x.float() @ m["wg_w"].T + m["wg_b"]  # router in fp32
        gates = torch.softmax(logits, dim=-1)
        top = gates.argmax(dim=-1)
        out = torch.zeros_like(x)
        for t in range(x.shape[0]):
            e = m["experts"][int(top[t])]
            y = F.linear(F.silu(F.linear(x[t], e["gate_proj"])) * F.linear(x[t], e["up_proj"]), e["down_proj"])
            out[t] = gates[t, top[t]] * y
        return out + meta, top

    ids = [280, 17, 250, IMAGE_TOKEN_INDEX, 99, 42, 7]
    with torch.no_grad():
        feats = select_image_features(vision_states, cfg["mm_vision_select_layer"], cfg["mm_vision_select_feature"])
        img = proj(feats)
        h = splice_image(model.model.embed_tokens, ids, img)
        pos = list(range(h.shape[0]))
        cos, sin = rope_cos_sin(base, model.model.layers[0].rotary_dim, pos)
        routes = []
        for i, layer in enumerate(model.model.layers):
            h = h + layer.attn(layer.input_layernorm(h), cos, sin, None, 0)
            x = layer.post_attention_layernorm(h)
            if i in moe_layers:
                y, top = moe_ffn(i, x)
                routes.append(top)
            else:
                y = layer.ffn(x)
            h = h + y
        logits = model.lm_head(model.model.norm(h))
    np.save(os.path.join(folder, "input_ids.npy"), np.array(ids, dtype="<i8"))
    np.save(os.path.join(folder, "expected_routes.npy"), torch.stack(routes).numpy().astype("<i8"))  # [moe layers, T]
    save_npy(folder, "expected_image_features.npy", img)
    save_npy(folder, "expected_logits.npy", logits)


def main():
    torch.set_grad_enabled(False)
    for name, spec in decoder_fixtures().items():
        gen_decoder(name, spec)
        print("wrote", name)
    _, _, states = gen_clip()
    print("wrote clip")
    gen_llava_phi3(states)
    print("wrote llava_phi3")
    gen_medmoe_stablelm(states)
    print("wrote medmoe_stablelm")


if __name__ == "__main__":
    main()
