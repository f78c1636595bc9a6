"""Checks finch's answer decoding (squad_eval_check --decode) against the transformers
postprocess_qa_predictions logic (tests/golden/make_wordpiece_goldens.py's copy) on every question
of a SQuAD file: features 384/128/64 from transformers' tokenizer, the same made-up logits.
  python compare_squad_decode.py VOCAB SQUAD.json path/to/squad_eval_check"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_wordpiece_goldens import postprocess, prepare_train_features  # noqa: E402
from transformers import BertTokenizer  # noqa: E402


def logit(token, feature, example, mul):
    return ((token * mul + feature * 104729 + example * 31) % 641) / 64.0


def main():
    vocab, squad, prog = sys.argv[1:4]
    exs = []
    for art in json.load(open(squad, encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                exs.append({"id": q["id"], "question": q["question"], "context": p["context"],
                            "answers": q.get("answers", [])})
    feats = prepare_train_features(BertTokenizer(vocab=vocab, do_lower_case=True), exs, 384, 128, 64)
    by_ex = {}
    for f in feats:
        by_ex.setdefault(f["example"], []).append(f)
    bad_total = 0
    for v2 in (False, True):
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as tmp:
            pass
        subprocess.run([prog, "--decode", vocab, squad, tmp.name, "v2" if v2 else "v1"], check=True)
        got = json.load(open(tmp.name, encoding="utf-8"))
        os.unlink(tmp.name)
        bad = 0
        for e, ex in enumerate(exs):
            fs = []
            for i, f in enumerate(by_ex[e]):
                offs = [[-1, -1]] * 384
                for k, o in enumerate(f["context_offsets"]):
                    offs[f["context_begin"] + k] = o
                fs.append({"offsets": offs,
                           "start_logits": [logit(k, i, e, 7919) for k in range(384)],
                           "end_logits": [logit(k, i, e, 7927) for k in range(384)]})
            want = postprocess(ex["context"], fs, 20, 30, v2, 0.0)
            if got[ex["id"]] != want:
                bad += 1
                if bad <= 3:
                    print("differs:", ex["id"], repr(got[ex["id"]]), repr(want))
        print(f"{'v2' if v2 else 'v1'}: {len(exs)} questions, {bad} answers differ")
        bad_total += bad
    return 1 if bad_total else 0


if __name__ == "__main__":
    sys.exit(main())
