"""Agreement of two infer_squad runs on the same questions: identical answer strings, the SQuAD
F1/EM of run B scored against run A's answers as the only gold answer (official normalization),
and, given both runs' --logits files, the largest |start/end logit difference|.
  python3 bench/squad_agreement.py A_preds.json B_preds.json [A_logits.json B_logits.json]"""
import collections
import json
import re
import string
import sys


def normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def f1(pred, gold):
    p, g = normalize(pred).split(), normalize(gold).split()
    common = collections.Counter(p) & collections.Counter(g)
    same = sum(common.values())
    if len(p) == 0 or len(g) == 0:
        return float(p == g)
    if same == 0:
        return 0.0
    prec, rec = same / len(p), same / len(g)
    return 2 * prec * rec / (prec + rec)


def main():
    a, b = (json.load(open(p, encoding="utf-8")) for p in sys.argv[1:3])
    if set(a) != set(b):
        sys.exit(f"the two runs answered different questions ({len(a)} and {len(b)})")
    same = sum(a[k] == b[k] for k in a)
    em = sum(normalize(a[k]) == normalize(b[k]) for k in a) / len(a) * 100
    f = sum(f1(b[k], a[k]) for k in a) / len(a) * 100
    print(f"{len(a)} questions: identical answer strings {same}/{len(a)} ({100 * same / len(a):.1f} %), "
          f"EM {em:.2f}, F1 {f:.2f} of B against A")
    if len(sys.argv) > 4:
        la, lb = (json.load(open(p)) for p in sys.argv[3:5])
        m = 0.0
        for k in la:
            for fa, fb in zip(la[k], lb[k]):
                for key in ("start", "end"):
                    m = max(m, max(abs(x - y) for x, y in zip(fa[key], fb[key])))
        print(f"max |logit difference| {m:.3g}")


if __name__ == "__main__":
    main()
