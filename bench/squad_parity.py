"""Parity of finch's infer_squad (fp32) with transformers + the standard SQuAD post-processing
(postprocess_qa_predictions, as tests/golden/make_wordpiece_goldens.py copies it) on a seeded
random-init BertForQuestionAnswering saved with save_pretrained (never into the repository).
Reports the fraction of identical answer strings and the max |logit difference|.
  /work/peers-venv/bin/python bench/squad_parity.py --size base|mini --vocab VOCAB --data dev-v1.1.json \
      --infer build/bin/infer_squad --work /tmp/parity_base --limit 300 --threads 2"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_wordpiece_goldens import postprocess, prepare_train_features  # noqa: E402
from transformers import BertConfig, BertForQuestionAnswering, BertTokenizer  # noqa: E402

SIZES = {"base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
         "mini": dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", choices=SIZES, required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--infer", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=17)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model_dir = os.path.join(a.work, "model")
    os.makedirs(model_dir, exist_ok=True)
    torch.manual_seed(a.seed)
    n_vocab = sum(1 for _ in open(a.vocab, encoding="utf-8"))
    model = BertForQuestionAnswering(BertConfig(vocab_size=n_vocab, **SIZES[a.size])).eval()
    model.save_pretrained(model_dir)
    shutil.copy(a.vocab, os.path.join(model_dir, "vocab.txt"))

    exs = []
    for art in json.load(open(a.data, encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                exs.append({"id": q["id"], "question": q["question"], "context": p["context"],
                            "answers": q.get("answers", [])})
    exs = exs[:a.limit]
    feats = prepare_train_features(BertTokenizer(vocab=a.vocab, do_lower_case=True), exs, 384, 128, 64)
    t0 = time.time()
    ref_logits, by_ex = [], {}
    with torch.no_grad():
        for f in feats:  # padded to 384 as run_qa.py's padding="max_length"
            n = f["length"]
            ids = torch.zeros(1, 384, dtype=torch.long)
            ids[0, :n] = torch.tensor(f["input_ids"])
            tt = torch.zeros(1, 384, dtype=torch.long)
            tt[0, :n] = torch.tensor(f["token_type_ids"])
            mask = torch.zeros(1, 384, dtype=torch.long)
            mask[0, :n] = 1
            out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask)
            s, e = out.start_logits[0].numpy(), out.end_logits[0].numpy()
            offs = [[-1, -1]] * 384
            for k, o in enumerate(f["context_offsets"]):
                offs[f["context_begin"] + k] = o
            by_ex.setdefault(f["example"], []).append({"offsets": offs, "start_logits": s, "end_logits": e})
            ref_logits.append((s, e))
    t_ref = time.time() - t0
    want = {ex["id"]: postprocess(ex["context"], by_ex[i], 20, 30, False, 0.0) for i, ex in enumerate(exs)}

    preds, logits = os.path.join(a.work, "preds.json"), os.path.join(a.work, "logits.json")
    t0 = time.time()
    r = subprocess.run([a.infer, "--model", model_dir, "--data", a.data, "--limit", str(a.limit), "--threads",
                        str(a.threads), "--batch-size", "1", "--pad", "--predictions", preds, "--logits", logits],
                       capture_output=True, text=True)
    t_finch = time.time() - t0
    print(r.stdout, r.stderr, end="")
    if r.returncode:
        return 1
    got = json.load(open(preds, encoding="utf-8"))
    got_logits = json.load(open(logits, encoding="utf-8"))
    finch_logits = [(np.array(f["start"]), np.array(f["end"])) for ex in exs for f in got_logits[ex["id"]]]
    assert len(finch_logits) == len(ref_logits), (len(finch_logits), len(ref_logits))
    max_diff = max(float(max(np.abs(a_[0] - b[0]).max(), np.abs(a_[1] - b[1]).max()))
                   for a_, b in zip(finch_logits, ref_logits))
    same = sum(got[ex["id"]] == want[ex["id"]] for ex in exs)
    for ex in exs:
        if got[ex["id"]] != want[ex["id"]] and same < len(exs):
            print("differs:", ex["id"], repr(got[ex["id"]]), repr(want[ex["id"]]))
    print(f"{a.size}: {len(exs)} questions, {len(feats)} features: {same}/{len(exs)} identical answers "
          f"({100.0 * same / len(exs):.2f} %), max |logit difference| {max_diff:.3g}; "
          f"transformers {t_ref:.1f} s, finch infer_squad {t_finch:.1f} s (wall, {a.threads} threads)")
    return 0 if same == len(exs) or same / len(exs) >= 0.995 else 1


if __name__ == "__main__":
    sys.exit(main())
