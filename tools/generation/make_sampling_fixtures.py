#!/usr/bin/env python3
"""Reference outputs of Hugging Face's logits processors for MedVL's sampler tests.

transformers is not packaged by Debian, so the processors are re-stated here in torch 1.13 with the exact tensor
operations of transformers/generation/logits_process.py (RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
TopKLogitsWarper, TopPLogitsWarper), applied in generate()'s order. Usage: /usr/bin/python3 tools/generation/make_sampling_fixtures.py
"""
import json, os
import torch

def repetition_penalty(input_ids, scores, penalty):
    score = torch.gather(scores, 1, input_ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return scores.scatter(1, input_ids, score)

def top_k(scores, k):
    k = min(k, scores.size(-1))
    remove = scores < torch.topk(scores, k)[0][..., -1, None]
    return scores.masked_fill(remove, -float("inf"))

def top_p(scores, p, min_keep=1):
    sorted_logits, sorted_indices = torch.sort(scores, descending=False)
    cum = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
    remove_sorted = cum <= (1 - p)
    remove_sorted[..., -min_keep:] = 0
    remove = remove_sorted.scatter(1, sorted_indices, remove_sorted)
    return scores.masked_fill(remove, -float("inf"))

g = torch.Generator().manual_seed(7)
cases = []
for i, (vocab, penalty, temp, k, p) in enumerate([(11, 1.3, 0.7, 4, 0.9), (37, 1.0, 1.5, 0, 0.5), (64, 2.0, 1.0, 10, 1.0),
                                                  (5, 0.8, 0.3, 2, 0.99), (101, 1.1, 1.0, 0, 0.8)]):
    logits = torch.randn(1, vocab, generator=g) * 3
    history = torch.randint(0, vocab, (1, 9), generator=g)
    s = repetition_penalty(history, logits, penalty)
    greedy = int(torch.argmax(s, dim=-1))
    s = s / temp
    if k > 0: s = top_k(s, k)
    if p < 1: s = top_p(s, p)
    cases.append({"logits": logits[0].tolist(), "history": history[0].tolist(), "penalty": penalty, "temperature": temp,
                  "top_k": k, "top_p": p, "greedy": greedy,
                  "processed": [None if v == -float("inf") else v for v in s[0].tolist()],
                  "probs": torch.softmax(s, dim=-1)[0].tolist()})
out = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "generation", "logits_processors.json")
json.dump(cases, open(out, "w"), indent=1)
print("wrote", len(cases), "cases")
