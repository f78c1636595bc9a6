"""Start/end-logit error and agreement of int8 BERT programs against fp32, from `infer_squad
--logits L --predictions P` runs over the same questions: max and mean |logit - fp32 logit| over
every position of every feature, start and end argmax agreement per feature, identical answers.
  python3 bench/squad_logit_fidelity.py --ref fp32-logits.json fp32-pred.json \
      --run int8 int8-logits.json int8-pred.json --run static static-logits.json static-pred.json
Prints a Markdown table (one row per --run)."""
import argparse
import json
import sys


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def argmax(v):
    return max(range(len(v)), key=v.__getitem__)


def compare(ref_logits, ref_pred, logits, pred):
    if set(ref_logits) != set(logits):
        sys.exit("squad_logit_fidelity: the runs answered different questions")
    mx, total, n, agree, feats = 0.0, 0.0, 0, 0, 0
    for qid, rf in ref_logits.items():
        ff = logits[qid]
        if len(rf) != len(ff):
            sys.exit(f"squad_logit_fidelity: question {qid}: {len(rf)} features in the reference, {len(ff)} here")
        for a, b in zip(rf, ff):
            for key in ("start", "end"):
                for x, y in zip(a[key], b[key]):
                    d = abs(x - y)
                    mx, total, n = max(mx, d), total + d, n + 1
                agree += argmax(a[key]) == argmax(b[key])
                feats += 1
    same = sum(ref_pred[q] == pred.get(q) for q in ref_pred)
    return mx, total / max(n, 1), agree / max(feats, 1), same, len(ref_pred), feats // 2


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", nargs=2, required=True, metavar=("LOGITS", "PREDICTIONS"))
    p.add_argument("--run", nargs=3, action="append", required=True, metavar=("NAME", "LOGITS", "PREDICTIONS"))
    a = p.parse_args()
    rl, rp = load(a.ref[0]), load(a.ref[1])
    print("| run | features | max abs logit err | mean abs logit err | argmax agreement (start, end) | identical answers |")
    print("|---|---|---|---|---|---|")
    for name, lp, pp in a.run:
        mx, mean, agree, same, nq, nf = compare(rl, rp, load(lp), load(pp))
        print(f"| {name} | {nf} | {mx:.4f} | {mean:.4f} | {agree:.3f} | {same}/{nq} |")


if __name__ == "__main__":
    main()
