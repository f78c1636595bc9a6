#!/usr/bin/env python3
"""Control run for train_text's IMDB LSTM (issue 16): the same model in PyTorch on the same data.

Seed 002's IMDB LSTM (Embedding 2000x64 -> LSTM 16 -> LSTM 16 -> Dense 1) reaches 87 % in Keras.
This script trains that shape in PyTorch on the same split, tokenizer rules (data/word_vocab.h),
vocabulary (the 2000 most frequent training words, ties by the word), length (200, truncated at the
front) and optimizer (Adam 1e-3, batch 64) as `train_text --model imdb_lstm`, so a gap between
finch and 86 % can be told apart from a gap of the recipe itself. `--init keras` swaps PyTorch's
initialisation for Keras's (embedding U(-0.05, 0.05), Glorot-uniform input weights, orthogonal
recurrent weights, zero biases with the forget gate's at 1), the one seed 002 trained with.

  python3 bench/imdb_lstm_torch.py --data aclImdb --epochs 10 --init keras --seed 1

Peer script: python only here, never needed to build or test finch.
"""
import argparse
import collections
import os
import re
import time

import torch
import torch.nn as nn

WORD = re.compile(rb"[A-Za-z0-9\x80-\xff]+(?:'[A-Za-z0-9\x80-\xff]+)*")
BR = re.compile(rb"<br\s*/?>", re.IGNORECASE)


def tokenize(raw: bytes):
    return [w.lower().decode("utf-8", "replace") for w in WORD.findall(BR.sub(b" ", raw))]


def read_split(root, split):
    docs, labels = [], []
    for label, sub in ((0, "neg"), (1, "pos")):
        d = os.path.join(root, split, sub)
        for name in sorted(os.listdir(d)):
            if name.endswith(".txt"):
                with open(os.path.join(d, name), "rb") as f:
                    docs.append(tokenize(f.read()))
                labels.append(label)
    return docs, labels


def build_vocab(docs, max_words):
    counts = collections.Counter(w for d in docs for w in d)
    words = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:max_words]
    return {w: i + 2 for i, (w, _) in enumerate(words)}


def encode(docs, vocab, max_len):
    seqs = []
    for d in docs:
        ids = [vocab.get(w, 1) for w in d] or [1]
        seqs.append(ids[-max_len:])  # truncate "pre": keep the end of the review
    return seqs


def batches(seqs, labels, bs, shuffle, gen):
    order = torch.randperm(len(seqs), generator=gen).tolist() if shuffle else list(range(len(seqs)))
    for i in range(0, len(order), bs):
        idx = order[i:i + bs]
        lens = torch.tensor([len(seqs[j]) for j in idx])
        x = torch.zeros(len(idx), int(lens.max()), dtype=torch.long)
        for r, j in enumerate(idx):
            x[r, :len(seqs[j])] = torch.tensor(seqs[j])
        yield x, lens, torch.tensor([float(labels[j]) for j in idx])


class ImdbLstm(nn.Module):
    def __init__(self, vocab, embed=64, hidden=16):
        super().__init__()
        self.emb = nn.Embedding(vocab, embed, padding_idx=0)
        self.rnn = nn.LSTM(embed, hidden, num_layers=2, batch_first=True)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x, lens):
        packed = nn.utils.rnn.pack_padded_sequence(self.emb(x), lens, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.rnn(packed)
        return self.fc(h[-1]).squeeze(1)


def keras_init(m: ImdbLstm):
    nn.init.uniform_(m.emb.weight, -0.05, 0.05)
    with torch.no_grad():
        m.emb.weight[0].zero_()
    for name, p in m.rnn.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(p)  # Keras draws the [IN, 4H] kernel as one Glorot matrix
        elif name.startswith("weight_hh"):
            for g in p.data.chunk(4, 0):
                nn.init.orthogonal_(g)
        else:
            nn.init.zeros_(p)
            if name.startswith("bias_ih"):
                H = p.shape[0] // 4
                p.data[H:2 * H] = 1.0  # unit_forget_bias (i, f, g, o: f is the second quarter)
    nn.init.xavier_uniform_(m.fc.weight)
    nn.init.zeros_(m.fc.bias)


def evaluate(model, seqs, labels):
    model.eval()
    right, loss, n = 0, 0.0, 0
    with torch.no_grad():
        for x, lens, y in batches(seqs, labels, 256, False, None):
            z = model(x, lens)
            loss += nn.functional.binary_cross_entropy_with_logits(z, y, reduction="sum").item()
            right += int(((z > 0).float() == y).sum())
            n += len(y)
    return right / n, loss / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--init", choices=["torch", "keras"], default="torch")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--clip", type=float, default=0.0, help="gradient norm clip (0: none)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    tr_docs, tr_y = read_split(a.data, "train")
    va_docs, va_y = read_split(a.data, "val")
    te_docs, te_y = read_split(a.data, "test")
    vocab = build_vocab(tr_docs, 2000)
    tr, va, te = (encode(d, vocab, 200) for d in (tr_docs, va_docs, te_docs))
    model = ImdbLstm(len(vocab) + 2)
    if a.init == "keras":
        keras_init(model)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    gen = torch.Generator().manual_seed(a.seed)
    best = (0.0, 0, 0.0)
    for ep in range(1, a.epochs + 1):
        model.train()
        t0, tl, n = time.time(), 0.0, 0
        for x, lens, y in batches(tr, tr_y, 64, True, gen):
            loss = nn.functional.binary_cross_entropy_with_logits(model(x, lens), y)
            opt.zero_grad()
            loss.backward()
            if a.clip > 0:
                nn.utils.clip_grad_norm_(model.parameters(), a.clip)
            opt.step()
            tl += loss.item() * len(y)
            n += len(y)
        va_acc, _ = evaluate(model, va, va_y)
        te_acc, te_loss = evaluate(model, te, te_y)
        if va_acc > best[0]:
            best = (va_acc, ep, te_acc)
        print(f"epoch {ep}: train loss {tl / n:.4f}, val acc {va_acc:.4f}, test acc {te_acc:.4f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    print(f"torch {torch.__version__} init {a.init}: test accuracy at the best val epoch ({best[1]}): {best[2]:.4f}; "
          f"last epoch {te_acc:.4f}")


if __name__ == "__main__":
    main()
