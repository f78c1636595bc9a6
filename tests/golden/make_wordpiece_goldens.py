"""Goldens for data/wordpiece, data/squad_features and data/squad_eval (run with
/work/peers-venv/bin/python: transformers 5.25, tokenizers 0.23). Needs the SQuAD v1.1 dev set
unzipped at $SQUAD_DEV (default /tmp/wp_squad/dev-v1.1.json) and the real bert-base-uncased vocab.

Writes tests/golden/data/:
  wordpiece_vocab.txt       a small vocab: the specials, every one-character token, and 80 % of the
                            real vocab's tokens that the sample uses (the rest dropped, so greedy
                            matching has to back off)
  wordpiece_sample.json     texts (a sample of dev questions and contexts, hand-made edge strings)
                            with the fast tokenizer's ids and code point offsets on that vocab, and
                            the slow (Python) tokenizer's ids where they differ
  squad_sample.json         a few dev examples in SQuAD v1.1 form (features are made from them)
  squad_features.json       transformers' prepare_train_features (offset-mapping version) output
  squad_eval.json           postprocess_qa_predictions answers on hand-made logits, and the
                            official evaluate-v1.1 / v2.0 EM and F1 on hand-made predictions
"""
import collections
import json
import os
import random
import re
import string
import sys

import numpy as np
import tokenizers
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
REAL_VOCAB = "/work/shared/data/text/bert-base-uncased-vocab.txt"
SQUAD = os.environ.get("SQUAD_DEV", "/tmp/wp_squad/dev-v1.1.json")

EDGE = [
    "", "   ", "\t\n\r ", "Hello, World!", "Héllo Wörld Crème Brûlée ÀÉÎÕÜ façade naïve",
    "我爱北京天安门 and 日本語のテキスト", "abc中def", "a\x00b\x01c\u200bd\ufeffe\x7f", "e\u0301 n\u0303",
    "\u0301\u0301", "Hello,world!!! (yes) [no] {x} 'q' \"d\" — – … ¿¡ «» ‘’ “”", "x" * 100,
    "y" * 101, "supercalifragilistic" * 6, "ΣΟΦΙΑΣ Ὀδυσσεύς σοφία", "한국어 텍스트", "İstanbul ǅ ß ẞ",
    "ﬁ ligature ½ ²", "a\u00a0b\u3000c\u2028d\u2029e\u0085f", "😀👍🏽 emoji", "مَرْحَبًا", "\ufffd bad",
    "don't U.S.A. $3.50 50% #tag @user a+b=c", "Ⅻ ℃ № ™", "ǈǉǊ ΐ ᾳ", "\U00020000\U0002A700 ext",
    "tab\tsep\nnew line", "The  quick   brown\u2003fox", "ALLCAPS MixedCase lowercase",
]


def load_squad():
    with open(SQUAD, encoding="utf-8") as f:
        return json.load(f)["data"]


def fast_encode(tok, text):
    enc = tok.encode(text, add_special_tokens=False)
    return enc.ids, [list(o) for o in enc.offsets]


def main():
    random.seed(17)
    data = load_squad()
    arts = random.sample(range(len(data)), 6)
    paras = [(a, p) for a in arts for p in range(len(data[a]["paragraphs"]))]
    contexts = [data[a]["paragraphs"][p]["context"] for a, p in random.sample(paras, 12)]
    questions = [q["question"] for a in arts for p in data[a]["paragraphs"] for q in p["qas"]]
    questions = random.sample(questions, 200)
    texts = EDGE + questions + contexts

    real = tokenizers.BertWordPieceTokenizer(REAL_VOCAB, lowercase=True)
    real_vocab = [ln.rstrip("\n") for ln in open(REAL_VOCAB, encoding="utf-8")]
    used = set()
    for t in texts:
        used.update(real.encode(t, add_special_tokens=False).tokens)
    specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    keep = []
    for tok in real_vocab:
        bare = tok[2:] if tok.startswith("##") else tok
        if tok in specials or len(bare) == 1 or (tok in used and random.random() < 0.8):
            keep.append(tok)
    # "[PAD]" first as in the real vocab; the specials are found by name, not by position.
    vocab_path = os.path.join(DATA, "wordpiece_vocab.txt")
    with open(vocab_path, "w", encoding="utf-8") as f:
        f.write("\n".join(keep) + "\n")

    fast = tokenizers.BertWordPieceTokenizer(vocab_path, lowercase=True)
    slow = BertTokenizerLegacy(vocab_file=vocab_path, do_lower_case=True)
    cased = tokenizers.BertWordPieceTokenizer(vocab_path, lowercase=False, strip_accents=False)
    items, slow_diff = [], 0
    for t in texts:
        ids, offs = fast_encode(fast, t)
        cids, coffs = fast_encode(cased, t)
        item = {"text": t, "ids": ids, "offsets": offs, "cased_ids": cids}
        sids = slow.convert_tokens_to_ids(slow.tokenize(t))
        if sids != ids:
            item["slow_ids"] = sids
            slow_diff += 1
        items.append(item)
    write("wordpiece_sample.json", {"vocab": "wordpiece_vocab.txt", "texts": items})
    print("texts", len(items), "slow differs on", slow_diff, "vocab", len(keep))

    make_features(data, arts, vocab_path)
    make_eval()
    return 0


def write(name, obj):
    path = os.path.join(DATA, name)
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
    os.replace(path + ".tmp", path)
    print(name, os.path.getsize(path), "bytes")


def prepare_train_features(tok, examples, max_len, stride, max_query):
    """transformers' examples/pytorch/question-answering prepare_train_features, with questions
    cut to max_query tokens first and the start/end walk kept inside the context."""
    out = []
    for ex_index, ex in enumerate(examples):
        q_ids = tok(ex["question"].lstrip(), add_special_tokens=False)["input_ids"][:max_query]
        q_text = tok.decode(q_ids)  # only used when a question is cut; none in the sample is
        question = ex["question"].lstrip() if len(q_ids) < max_query else q_text
        enc = tok(question, ex["context"], truncation="only_second", max_length=max_len,
                  stride=stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                  padding="max_length")
        for i in range(len(enc["input_ids"])):
            offsets = enc["offset_mapping"][i]
            seq = enc.sequence_ids(i)
            ctx = [k for k, s in enumerate(seq) if s == 1]
            n = sum(enc["attention_mask"][i])  # the rest is padding: id 0, type 0, mask 0
            assert all(x == 0 for x in enc["input_ids"][i][n:]) and len(offsets) == max_len
            feat = {"example": ex_index, "length": n, "input_ids": enc["input_ids"][i][:n],
                    "token_type_ids": enc["token_type_ids"][i][:n],
                    "context_begin": ctx[0] if ctx else 0, "context_end": ctx[-1] + 1 if ctx else 0,
                    "context_offsets": [list(offsets[k]) for k in ctx]}
            start = end = 0
            ans = ex["answers"]
            if ans and ctx:
                sc = ans[0]["answer_start"]
                ec = sc + len(ans[0]["text"])
                ts, te = ctx[0], ctx[-1]
                if offsets[ts][0] <= sc and offsets[te][1] >= ec:
                    while ts <= ctx[-1] and offsets[ts][0] <= sc:
                        ts += 1
                    start = ts - 1
                    while te >= ctx[0] and offsets[te][1] >= ec:
                        te -= 1
                    end = te + 1
            feat["start_position"], feat["end_position"] = start, end
            out.append(feat)
    return out


def make_features(data, arts, vocab_path):
    random.seed(18)
    exs = []
    for a in arts[:3]:
        for p in data[a]["paragraphs"][:2]:
            q = p["qas"][0]
            exs.append({"id": q["id"], "question": q["question"], "context": p["context"],
                        "answers": q["answers"]})
    exs.append({"id": "edge-long-question", "question": "what " * 80 + "?",
                "context": "Short café context. 我爱 it.", "answers": [{"text": "café", "answer_start": 6}]})
    exs.append({"id": "edge-impossible", "question": "Who?", "context": "Nobody here.",
                "answers": []})
    doc = {"version": "1.1", "data": [{"title": "sample", "paragraphs": [
        {"context": e["context"], "qas": [{"id": e["id"], "question": e["question"],
                                            "answers": e["answers"]}]} for e in exs]}]}
    write("squad_sample.json", doc)
    tok = BertTokenizer(vocab=vocab_path, do_lower_case=True)
    cfgs = []
    for max_len, stride, max_query in [(384, 128, 64), (64, 16, 20), (40, 8, 10)]:
        sub = exs if max_len == 384 else exs[:2] + exs[-2:]
        feats = prepare_train_features(tok, sub, max_len, stride, max_query)
        for f in feats:
            f["example"] = exs.index(sub[f["example"]])
        cfgs.append({"max_seq_length": max_len, "doc_stride": stride,
                     "max_query_length": max_query, "features": feats})
        print("config", max_len, stride, "features", len(feats))
    write("squad_features.json", {"vocab": "wordpiece_vocab.txt", "configs": cfgs})


# --- the official evaluation (evaluate-v1.1.py and evaluate-v2.0.py, same logic) ---------------
def normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def f1_v1(prediction, ground_truth):
    p, g = normalize_answer(prediction).split(), normalize_answer(ground_truth).split()
    common = collections.Counter(p) & collections.Counter(g)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision, recall = 1.0 * num_same / len(p), 1.0 * num_same / len(g)
    return (2 * precision * recall) / (precision + recall)


def f1_v2(prediction, ground_truth):
    p = normalize_answer(prediction).split() if prediction else []
    g = normalize_answer(ground_truth).split() if ground_truth else []
    common = collections.Counter(g) & collections.Counter(p)
    num_same = sum(common.values())
    if len(g) == 0 or len(p) == 0:
        return int(g == p)
    if num_same == 0:
        return 0
    precision, recall = 1.0 * num_same / len(p), 1.0 * num_same / len(g)
    return (2 * precision * recall) / (precision + recall)


def em(prediction, ground_truth):
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def evaluate(questions, preds, v2):
    exact = f1 = 0.0
    for q in questions:
        golds = [a for a in q["answers"] if normalize_answer(a)] if v2 else q["answers"]
        if v2 and not golds:
            golds = [""]
        if q["id"] not in preds:
            continue
        p = preds[q["id"]]
        exact += max(float(em(p, g)) for g in golds)
        f1 += max((f1_v2 if v2 else f1_v1)(p, g) for g in golds)
    return 100.0 * exact / len(questions), 100.0 * f1 / len(questions)


def postprocess(context, feats, n_best, max_answer, v2, threshold):
    """transformers' postprocess_qa_predictions for one example (feats: offsets + logits)."""
    prelim, min_null = [], None
    for f in feats:
        s_log, e_log, offs = np.array(f["start_logits"]), np.array(f["end_logits"]), f["offsets"]
        null = s_log[0] + e_log[0]
        if min_null is None or min_null["score"] > null:
            min_null = {"offsets": (0, 0), "score": null, "s": s_log[0], "e": e_log[0]}
        starts = np.argsort(s_log, kind="stable")[-1:-n_best - 1:-1].tolist()
        ends = np.argsort(e_log, kind="stable")[-1:-n_best - 1:-1].tolist()
        for s in starts:
            for e in ends:
                if offs[s][0] < 0 or offs[e][0] < 0 or e < s or e - s + 1 > max_answer:
                    continue
                prelim.append({"offsets": (offs[s][0], offs[e][1]), "score": s_log[s] + e_log[e],
                               "s": s_log[s], "e": e_log[e]})
    if v2:
        prelim.append(min_null)
    preds = sorted(prelim, key=lambda x: x["score"], reverse=True)[:n_best]
    if v2 and not any(p["offsets"] == (0, 0) for p in preds):
        preds.append(min_null)
    for p in preds:
        p["text"] = context[p["offsets"][0]:p["offsets"][1]]
    if not preds or (len(preds) == 1 and preds[0]["text"] == ""):
        preds.insert(0, {"text": "empty", "s": 0.0, "e": 0.0, "score": 0.0})
    if not v2:
        return preds[0]["text"]
    i = 0
    while preds[i]["text"] == "":
        i += 1
    best = preds[i]
    diff = min_null["score"] - best["s"] - best["e"]
    return "" if diff > threshold else best["text"]


def make_eval():
    rng = np.random.default_rng(19)
    context = "The Normans (Norman: Nourmands; French: Normands) gave their name to Normandy, café."
    words = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", context)]
    cases = []
    for k in range(8):
        nfeat = 1 + k % 3
        feats = []
        for _ in range(nfeat):
            n = 32
            offs = [[-1, -1]] * 4 + [list(w) for w in words[:n - 6]] + [[-1, -1]]
            offs = (offs + [[-1, -1]] * n)[:n]
            scale = 1.0 if k < 6 else 0.0  # the last two: all-equal logits, ties everywhere
            feats.append({"offsets": offs,
                          "start_logits": np.round(rng.normal(size=n) * scale, 3).tolist(),
                          "end_logits": np.round(rng.normal(size=n) * scale, 3).tolist()})
        v2 = k % 2 == 1
        n_best, max_answer, threshold = (20, 30, 0.0) if k < 4 else (5, 3, -0.5)
        cases.append({"features": feats, "version_2": v2, "n_best": n_best,
                      "max_answer_length": max_answer, "null_threshold": threshold,
                      "answer": postprocess(context, feats, n_best, max_answer, v2, threshold)})
    questions = [
        {"id": "q1", "answers": ["Denver Broncos", "The Denver Broncos"]},
        {"id": "q2", "answers": ["Saint Bernadette Soubirous"]},
        {"id": "q3", "answers": ["a copper statue of Christ", "copper statue"]},
        {"id": "q4", "answers": ["1879"]},
        {"id": "q5", "answers": ["Crème Brûlée, an ÉCLAIR!"]},
        {"id": "q6", "answers": ["the  Main   Building"]},
        {"id": "q7", "answers": [""]},
        {"id": "q8", "answers": ["an apple a day"]},
        {"id": "q9", "answers": ["Théâtre (the) anthem"]},
        {"id": "q10", "answers": ["ΣΟΦΙΑ and the ΣΟΦΟΣ"]},
    ]
    preds = {"q1": "denver broncos.", "q2": "Bernadette", "q3": "the copper statue of Christ",
             "q4": "in 1879", "q5": "crème brûlée an éclair", "q6": "Main Building!",
             "q7": "", "q8": "apple day a", "q10": "σοφια and σοφος"}
    ev = {"questions": questions, "predictions": preds, "per_pair": []}
    for v2 in (False, True):
        ev["v2" if v2 else "v1"] = dict(zip(("exact", "f1"), evaluate(questions, preds, v2)))
    for q in questions:
        for g in q["answers"]:
            p = preds.get(q["id"], "")
            ev["per_pair"].append({"pred": p, "gold": g, "norm": normalize_answer(g),
                                   "em": float(em(p, g)), "f1_v1": float(f1_v1(p, g)),
                                   "f1_v2": float(f1_v2(p, g))})
    write("squad_eval.json", {"context": context, "decode": cases, "evaluate": ev})


if __name__ == "__main__":
    sys.exit(main())
