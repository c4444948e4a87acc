#!/usr/bin/env python3
"""Reference outputs of Med-MoE's own scorer for MedVL's `medvl eval vqa` tests.

Usage: /usr/bin/python3 tools/eval/make_vqa_fixtures.py --medmoe DIR [--out tests/fixtures/eval]
DIR is a checkout of jiangsongtao/Med-MoE (run_eval.py and moellava/eval/eval_metrics/); needs python3-nltk and
python3-tabulate (Debian). The script writes a test file and predictions full of the cases the normaliser treats
specially, then records what upstream's functions return for every pair and for the whole file.
"""
import argparse, json, os, random, sys

ap = argparse.ArgumentParser()
ap.add_argument("--medmoe", required=True)
ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures", "eval"))
args = ap.parse_args()
sys.path[:0] = [args.medmoe, os.path.join(args.medmoe, "moellava", "eval")]
sys.argv = ["run_eval.py", "--output", os.path.join("/tmp", "medvl_wrong_answers.json")]
import run_eval  # noqa: E402  (upstream module; evaluate() reads run_eval.args.output)
from eval_metrics.evaluate_metrics import calculate_exactmatch, calculate_f1score  # noqa: E402
from eval_metrics.glossary import normalize_word  # noqa: E402
from nltk.translate.bleu_score import sentence_bleu, SmoothingFunction  # noqa: E402

run_eval.args = run_eval.parse_option()
rng = random.Random(20261122)
words = ["left", "right", "lung", "liver", "the", "a", "an", "kidney", "two", "three", "none", "ten", "cm", "mass",
         "isnt", "dont", "whats", "lesion", "ct", "mri", "x-ray", "t2-weighted", "1,000", "3.5", "e.g.", "(axial)",
         "pneumonia", "no", "not", "yes", "unknown", "ct/mri", "hu>45", "[sic]", "fat!", "why?", "@home", "a_b",
         "brain", "İstanbul", "Ångström", "µm", "肺", "nodule,", "size.", "cardiomegaly", "\"quoted\"", "x+y=z",
         "back\\slash", "{curly}", "<tag>", "`tick`", "semi;colon", "effusion", "pleural", "1.5cm", "1,5", "a.b.c."]

def phrase(lo, hi):
    return " ".join(rng.choice(words) for _ in range(rng.randint(lo, hi)))

gt, pred = [], []
fixed = [  # (answer_type, gt, prediction): hand-picked edge cases
    ("OPEN", "The Left Lung", "left lung"), ("open", "two", "2 lesions"), ("open", "ct/mri", "ct mri"),
    ("open", "1,000 cm", "1000 cm"), ("open", "liver.", "the liver. ..."), ("open", "", "anything"),
    ("open", "kidney", ""), ("open", "x - ray", "x-ray"), ("open", "isnt", "isn't"), ("open", "a b c d e", "a b c d e"),
    ("CLOSED", "No", "not sure"), ("close", "yes", "Yes, it is."), ("close", "no", "yes"), ("CLOSED", "right", "Right side"),
    ("close", "yes", ""), ("other", "ignored", "ignored"), ("open", "." * 40 + "x", "x"), ("open", "pleural effusion", "effusion pleural"),
]
for i, (t, a, p) in enumerate(fixed):
    gt.append({"id": f"fixed-{i}", "image": "img.png", "answer_type": t,
               "conversations": [{"from": "human", "value": "<image>\nQuestion?"}, {"from": "gpt", "value": a}]})
    pred.append({"question_id": f"fixed-{i}", "prompt": "Question?", "text": p, "answer_id": "x", "model_id": "m", "metadata": {}})
for i in range(300):
    t = rng.choice(["open", "OPEN", "close", "CLOSED"])
    a = phrase(1, 4) if t in ("open", "OPEN") else rng.choice(["yes", "no", "left", "right", "No", "Yes"])
    p = phrase(0, 7) if rng.random() < 0.6 else (a + " " + phrase(0, 2))
    key = "conversatons" if i % 17 == 0 else "conversations"  # upstream also accepts the misspelling
    gt.append({"id": i, "image": f"{i}.png", "answer_type": t,
               key: [{"from": "human", "value": "<image>\nWhat is shown?"}, {"from": "gpt", "value": a}]})
    pred.append({"question_id": i, "prompt": "What is shown?", "text": p, "answer_id": str(i), "model_id": "m", "metadata": {}})
pred.append({"question_id": "extra", "prompt": "unpaired", "text": "dropped by zip", "answer_id": "", "model_id": "m", "metadata": {}})

per_item = []
for g, p in zip(gt, pred):
    conv = g.get("conversations", g.get("conversatons"))
    gv, pv = conv[1]["value"].lower(), p["text"].lower()
    f1, pr, rc = calculate_f1score(pv, gv)
    per_item.append({
        "normalized_gt": normalize_word(gv), "normalized_pred": normalize_word(pv),
        "exact_match": calculate_exactmatch(pv, gv), "f1": f1, "precision": pr, "recall": rc,
        "bleu": [sentence_bleu([gv.split()], pv.split(), weights=w, smoothing_function=SmoothingFunction().method1)
                 for w in [(1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0)]],
    })

table = run_eval.evaluate(gt, pred)  # upstream's aggregate table (tabulate text)
rows = {}
for line in str(table).splitlines()[2:]:
    name, value = line.rsplit(None, 1)
    rows[name.strip()] = float(value)
wrong = json.load(open(run_eval.args.output))

os.makedirs(args.out, exist_ok=True)
json.dump(gt, open(os.path.join(args.out, "vqa_gt.json"), "w"), ensure_ascii=False, indent=1)
with open(os.path.join(args.out, "vqa_pred.jsonl"), "w") as f:
    for p in pred:
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
json.dump({"per_item": per_item, "table": rows, "n_wrong_closed": len(wrong), "wrong_closed": wrong},
          open(os.path.join(args.out, "vqa_expected.json"), "w"), ensure_ascii=False, indent=1)
print("wrote", len(gt), "items;", rows)
