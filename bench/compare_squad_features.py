"""Compares bench_wordpiece's FEATURES file with transformers' prepare_train_features (as
tests/golden/make_wordpiece_goldens.py runs it: questions cut to 64 tokens, the start/end walk
inside the context) on every question of a SQuAD file, with max_seq_length 384, doc_stride 128.
  python compare_squad_features.py VOCAB SQUAD.json FEATURES"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "golden"))
from make_wordpiece_goldens import prepare_train_features  # noqa: E402
from transformers import BertTokenizer  # noqa: E402


def main():
    vocab, squad, feats_path = sys.argv[1:4]
    exs = []
    for art in json.load(open(squad, encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            for q in p["qas"]:
                exs.append({"question": q["question"], "context": p["context"],
                            "answers": q.get("answers", [])})
    tok = BertTokenizer(vocab=vocab, do_lower_case=True)
    want = prepare_train_features(tok, exs, 384, 128, 64)
    got = [[int(x) for x in ln.split()] for ln in open(feats_path).read().split("\n") if ln]
    print(f"{len(exs)} questions: transformers {len(want)} features, finch {len(got)}")
    bad = 0
    for w, g in zip(want, got):
        row = [w["example"], w["start_position"], w["end_position"], w["context_begin"],
               w["context_end"]] + w["input_ids"]
        if row != g:
            bad += 1
            if bad <= 5:
                print("differs: example", w["example"], row[:5], g[:5])
    print(f"features that differ: {bad + abs(len(want) - len(got))}")
    return 0 if bad == 0 and len(want) == len(got) else 1


if __name__ == "__main__":
    sys.exit(main())
