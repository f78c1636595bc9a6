#!/work/peers-venv/bin/python
"""Goldens for models/bert.h: small random BERTs saved by transformers' save_pretrained, and what
transformers computes with them.

Writes into tests/golden/data/:
  bert_tiny/      BertForQuestionAnswering (2 layers, hidden 32, 4 heads, intermediate 64, vocab 120,
                  64 positions, GELU), config.json + model.safetensors exactly as save_pretrained
                  leaves them (finch must load the directory unchanged).
  bert_tiny_mlm/  BertForMaskedLM of the same shape with hidden_act "gelu_new" (tied decoder).
  bert_goldens.safetensors
                  input_ids, attention_mask, token_type_ids (I64 [2, 12]: the second sequence is
                  padded after 7 tokens, both have a segment B), and, in eval mode:
                  qa.sequence_output [2, 12, 32], qa.start_logits / qa.end_logits [2, 12];
                  pooler.dense.weight/bias (a pooler for the QA encoder, which transformers builds
                  without one) and qa.pooled [2, 32]; mlm.logits [2, 12, 120] and
                  mlm.sequence_output; qa.r_start, qa.r_end [2, 12] and, after
                  sum(start_logits·r_start + end_logits·r_end).backward() in eval mode, every QA
                  parameter's gradient qa.grad.<name>.
Weights: transformers' init with initializer_range 0.2, then every LayerNorm and bias perturbed
(seeded) so that no parameter is a constant that would hide a naming or layout mistake.
Run with the venv's torch 2.15 / transformers 5.25:
  /work/peers-venv/bin/python tests/golden/make_bert_goldens.py
"""
import os
import sys

import torch
from transformers import BertConfig, BertForMaskedLM, BertForQuestionAnswering, BertModel

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import golden_io  # noqa: E402

DATA = golden_io.DATA


def config(act):
    return BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, hidden_act=act, max_position_embeddings=64,
                      type_vocab_size=2, initializer_range=0.2, layer_norm_eps=1e-12,
                      hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def perturb(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(0.1 * torch.randn(p.shape, generator=gen))


def main():
    gen = torch.Generator().manual_seed(17)
    torch.manual_seed(17)
    ids = torch.randint(1, 120, (2, 12), generator=gen)
    ids[:, 0] = 2  # a [CLS]-like id
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[1, 7:] = 0
    ids[1, 7:] = 0  # pad id
    types = torch.zeros(2, 12, dtype=torch.long)
    types[0, 6:] = 1
    types[1, 4:7] = 1
    out = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}

    qa = BertForQuestionAnswering(config("gelu")).eval()
    perturb(qa, gen)
    qa.save_pretrained(os.path.join(DATA, "bert_tiny"), safe_serialization=True)
    with torch.no_grad():
        r = qa(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        out["qa.sequence_output"] = r.hidden_states[-1]
        out["qa.start_logits"] = r.start_logits
        out["qa.end_logits"] = r.end_logits
        base = BertModel(config("gelu"), add_pooling_layer=True).eval()
        missing = base.load_state_dict(qa.bert.state_dict(), strict=False).missing_keys
        assert all(k.startswith("pooler.") for k in missing), missing
        base.pooler.dense.weight.normal_(0, 0.2, generator=gen)
        base.pooler.dense.bias.normal_(0, 0.1, generator=gen)
        rb = base(input_ids=ids, attention_mask=mask, token_type_ids=types)
        assert torch.allclose(rb.last_hidden_state, out["qa.sequence_output"])
        out["pooler.dense.weight"] = base.pooler.dense.weight
        out["pooler.dense.bias"] = base.pooler.dense.bias
        out["qa.pooled"] = rb.pooler_output

    out["qa.r_start"] = torch.randn(2, 12, generator=gen)
    out["qa.r_end"] = torch.randn(2, 12, generator=gen)
    r = qa(input_ids=ids, attention_mask=mask, token_type_ids=types)
    ((r.start_logits * out["qa.r_start"]).sum() + (r.end_logits * out["qa.r_end"]).sum()).backward()
    for name, p in qa.named_parameters():
        out["qa.grad." + name] = p.grad

    mlm = BertForMaskedLM(config("gelu_new")).eval()
    perturb(mlm, gen)
    mlm.save_pretrained(os.path.join(DATA, "bert_tiny_mlm"), safe_serialization=True)
    with torch.no_grad():
        r = mlm(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
        out["mlm.logits"] = r.logits
        out["mlm.sequence_output"] = r.hidden_states[-1]
    golden_io.save({k: v.contiguous() for k, v in out.items()},
                   os.path.join(DATA, "bert_goldens.safetensors"))


if __name__ == "__main__":
    main()
