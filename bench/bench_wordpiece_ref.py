"""Compares finch's WordPiece (bench_wordpiece's IDS file) with the fast `tokenizers`
BertWordPieceTokenizer (ids and offsets) and transformers' Python BertTokenizerLegacy (ids) on
every question and context of a SQuAD file, and times both on one thread (best of REPS).
  RAYON_NUM_THREADS=1 python bench_wordpiece_ref.py VOCAB SQUAD.json IDS [REPS]"""
import json
import os
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
import tokenizers  # noqa: E402
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy  # noqa: E402


def texts_of(path):
    out = []
    for art in json.load(open(path, encoding="utf-8"))["data"]:
        for p in art["paragraphs"]:
            out.append(p["context"])
            out.extend(q["question"] for q in p["qas"])
    return out


def best_of(reps, fn):
    best = 1e30
    for _ in range(reps):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, time.perf_counter() - t0)
    return best, n


def main():
    vocab, squad, ids_path = sys.argv[1:4]
    reps = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    texts = texts_of(squad)
    finch = [[tuple(int(x) for x in t.split(":")) for t in ln.split()]
             for ln in open(ids_path, encoding="utf-8").read().split("\n")[:len(texts)]]
    fast = tokenizers.BertWordPieceTokenizer(vocab, lowercase=True)
    slow = BertTokenizerLegacy(vocab_file=vocab, do_lower_case=True)
    encs = [fast.encode(t, add_special_tokens=False) for t in texts]
    id_miss = off_miss = slow_miss = 0
    for t, e, f in zip(texts, encs, finch):
        if e.ids != [x[0] for x in f]:
            id_miss += 1
            if id_miss <= 5:
                print("ids differ:", repr(t[:80]))
        elif [tuple(o) for o in e.offsets] != [(x[1], x[2]) for x in f]:
            off_miss += 1
    slow_ids = [slow.convert_tokens_to_ids(slow.tokenize(t)) for t in texts]
    for s, f in zip(slow_ids, finch):
        slow_miss += s != [x[0] for x in f]
    tokens = sum(len(e.ids) for e in encs)
    print(f"{len(texts)} texts, {tokens} tokens: finch vs tokenizers: {id_miss} texts with other "
          f"ids, {off_miss} with other offsets; finch vs transformers (Python): {slow_miss} texts")
    t_fast, _ = best_of(reps, lambda: sum(len(fast.encode(t, add_special_tokens=False).ids)
                                          for t in texts))
    t_batch, _ = best_of(reps, lambda: len(fast.encode_batch(texts, add_special_tokens=False)))
    t_slow, _ = best_of(1, lambda: sum(len(slow.tokenize(t)) for t in texts))
    for name, t in [("tokenizers encode (1 thread)", t_fast),
                    ("tokenizers encode_batch (RAYON_NUM_THREADS=1)", t_batch),
                    ("transformers Python BertTokenizerLegacy (best of 1)", t_slow)]:
        print(f"{name}: {t:.3f} s, {tokens / t:.0f} tokens/s")
    return 0 if id_miss == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
