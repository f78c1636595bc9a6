"""Checks finch's EM/F1 (squad_eval_check) against the official evaluation's logic
(tests/golden/make_wordpiece_goldens.py's copy of evaluate-v1.1 / v2.0) on every question of a
SQuAD file, with made-up predictions: gold answers with a few characters more or less, other
case, punctuation, articles, random context spans, empty answers and missing ones.
  python compare_squad_eval.py SQUAD.json path/to/squad_eval_check"""
import json
import os
import random
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_wordpiece_goldens import evaluate  # noqa: E402


def main():
    squad, prog = sys.argv[1:3]
    rng = random.Random(5)
    questions, preds = [], {}
    for art in json.load(open(squad, encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            ctx = p["context"]
            for q in p["qas"]:
                golds = [a["text"] for a in q["answers"]]
                questions.append({"id": q["id"], "answers": golds})
                a = q["answers"][0] if q["answers"] else {"text": "", "answer_start": 0}
                kind = rng.randrange(7)
                s, e = a["answer_start"], a["answer_start"] + len(a["text"])
                if kind == 0:
                    pred = a["text"]
                elif kind == 1:
                    pred = ctx[max(0, s - rng.randrange(12)):e + rng.randrange(12)]
                elif kind == 2:
                    pred = ctx[s + rng.randrange(max(1, e - s)):e]
                elif kind == 3:
                    pred = "The " + a["text"].upper() + rng.choice(["!", ".", " , a", "'s"])
                elif kind == 4:
                    x = rng.randrange(len(ctx))
                    pred = ctx[x:x + rng.randrange(1, 40)]
                elif kind == 5:
                    pred = ""
                else:
                    continue  # no prediction
                preds[q["id"]] = pred
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump(preds, f, ensure_ascii=False)
    out = subprocess.run([prog, squad, f.name], capture_output=True, text=True, check=True).stdout
    os.unlink(f.name)
    bad = 0
    for line, v2 in zip(out.split("\n"), (False, True)):
        _, ex, f1, total, missing = line.split()
        want = evaluate(questions, preds, v2)
        print(f"{'v2.0' if v2 else 'v1.1'} rules, {total} questions ({missing} without a prediction):"
              f" finch EM {float(ex):.9f} F1 {float(f1):.9f}; official EM {want[0]:.9f} F1 {want[1]:.9f}")
        bad += abs(float(ex) - want[0]) > 1e-9 or abs(float(f1) - want[1]) > 1e-9
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
