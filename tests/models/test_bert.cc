// BERT (models/bert.h, bert_io.h) against transformers: tests/golden/make_bert_goldens.py saved
// a tiny BertForQuestionAnswering and BertForMaskedLM with save_pretrained; finch loads the
// directories unchanged and must give transformers' outputs to 1e-4. Also: padding does not
// change the real tokens' outputs, dropout is seeded, one SGD step lowers the MLM loss, and a
// save/load round trip is exact.
#include <gtest/gtest.h>

#include <filesystem>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/sgd.h"
#include "framework/grad_mode.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "tests/error_text.h"
#include "tests/golden/golden.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::models;

namespace {

const SafetensorsFile& goldens() {
  static const SafetensorsFile g = test::load_golden("bert_goldens.safetensors");
  return g;
}
std::string qa_dir() { return test::golden_path("bert_tiny"); }
std::string mlm_dir() { return test::golden_path("bert_tiny_mlm"); }

TEST(Bert, QuestionAnsweringMatchesTransformers) {
  const auto& g = goldens();
  auto m = load_bert_for_question_answering(qa_dir());
  EXPECT_FALSE(m->bert->pooler_dense) << "transformers saves the QA model without a pooler";
  EXPECT_EQ(m->bert->config.hidden_act, "gelu");
  m->eval();
  NoGradGuard ng;
  const BertQAOutputs r = m->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"));
  test::expect_close(r.sequence_output, g.at("qa.sequence_output"), 1e-4, 0, "sequence_output");
  test::expect_close(r.start_logits, g.at("qa.start_logits"), 1e-4, 0, "start_logits");
  test::expect_close(r.end_logits, g.at("qa.end_logits"), 1e-4, 0, "end_logits");
}

// Every parameter's gradient of sum(start·r_start + end·r_end), in eval mode (the fused
// attention and its backward) and in training mode with hidden dropout 0 and attention dropout
// 1e-9 (the composed matmul-softmax-dropout path with the additive mask; a 1e-9 drop almost
// surely drops nothing, so the gradients are transformers' eval ones).
void check_qa_gradients(bool composed_attention) {
  const auto& g = goldens();
  auto m = load_bert_for_question_answering(qa_dir());
  if (composed_attention) {
    m->train();
    for (auto& [name, mod] : m->named_modules()) {
      if (auto* d = dynamic_cast<nn::Dropout*>(mod)) d->p = 0.0;
      if (auto* a = dynamic_cast<BertSelfAttention*>(mod)) a->attention_dropout = 1e-9;
    }
  } else {
    m->eval();
  }
  const BertQAOutputs r = m->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"));
  test::expect_close(r.start_logits, g.at("qa.start_logits"), 1e-4, 0, "start_logits");
  backward(finch::add(finch::sum(finch::mul(r.start_logits, g.at("qa.r_start"))),
                      finch::sum(finch::mul(r.end_logits, g.at("qa.r_end")))));
  int checked = 0;
  for (const auto& [name, p] : m->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    const Tensor want = g.at("qa.grad." + name);
    test::expect_close(p.grad(), want, 1e-4, 1e-4, "grad " + name);
    ++checked;
  }
  EXPECT_EQ(checked, 39);
}

TEST(Bert, QuestionAnsweringGradientsMatchTransformers) { check_qa_gradients(false); }
TEST(Bert, ComposedAttentionGradientsMatchTransformers) { check_qa_gradients(true); }

TEST(Bert, PoolerMatchesTransformers) {
  const auto& g = goldens();
  BertCheckpoint ck = read_bert_checkpoint(qa_dir());
  ck.weights.insert("bert.pooler.dense.weight", g.at("pooler.dense.weight"));
  ck.weights.insert("bert.pooler.dense.bias", g.at("pooler.dense.bias"));
  auto m = std::make_shared<BertForQuestionAnswering>(ck.config, /*add_pooling_layer=*/true);
  m->load_state_dict(ck.weights, /*strict=*/true);
  m->eval();
  NoGradGuard ng;
  const BertQAOutputs r = m->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"));
  test::expect_close(r.pooled, g.at("qa.pooled"), 1e-4, 0, "pooled");
}

TEST(Bert, MaskedLMMatchesTransformers) {
  const auto& g = goldens();
  auto m = load_bert_for_masked_lm(mlm_dir());
  EXPECT_EQ(m->bert->config.hidden_act, "gelu_new");
  m->eval();
  NoGradGuard ng;
  BertOutputs b;
  const Tensor logits = m->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"), &b);
  test::expect_close(b.sequence_output, g.at("mlm.sequence_output"), 1e-4, 0, "mlm sequence_output");
  test::expect_close(logits, g.at("mlm.logits"), 1e-4, 0, "mlm logits");
}

TEST(Bert, NamesAreTransformers) {
  auto m = load_bert_for_question_answering(qa_dir());
  const auto sd = m->state_dict();
  const SafetensorsFile f = load_safetensors(qa_dir() + "/model.safetensors");
  EXPECT_EQ(sd.size(), f.tensors.size());
  for (const auto& [name, t] : f.tensors) EXPECT_TRUE(sd.contains(name)) << name;
  auto mlm = std::make_shared<BertForMaskedLM>(m->bert->config);
  EXPECT_TRUE(mlm->state_dict().contains("cls.predictions.transform.LayerNorm.weight"));
  EXPECT_TRUE(mlm->state_dict().contains("cls.predictions.bias"));
}

// The padded second sequence (7 real tokens) gives the same outputs at its real positions as
// the 7 tokens alone: padded keys get exactly zero attention.
TEST(Bert, PaddingDoesNotLeak) {
  const auto& g = goldens();
  auto m = load_bert_for_question_answering(qa_dir());
  m->eval();
  NoGradGuard ng;
  const BertQAOutputs r = m->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"));
  const Tensor ids = g.at("input_ids").narrow(0, 1, 1).narrow(1, 0, 7).contiguous();
  const Tensor types = g.at("token_type_ids").narrow(0, 1, 1).narrow(1, 0, 7).contiguous();
  const BertQAOutputs one = m->forward(ids, Tensor(), types);
  test::expect_close(one.start_logits, r.start_logits.narrow(0, 1, 1).narrow(1, 0, 7), 1e-5, 0, "alone vs padded");
  test::expect_close(one.sequence_output, r.sequence_output.narrow(0, 1, 1).narrow(1, 0, 7), 1e-5, 0, "seq");
}

TEST(Bert, RejectsBadInputs) {
  auto m = load_bert_for_question_answering(qa_dir());
  const Tensor ids = zeros({1, 5}, DType::i64);
  EXPECT_ERROR_HAS(m->forward(zeros({1, 65}, DType::i64)), "at most max_position_embeddings = 64");
  EXPECT_ERROR_HAS(m->forward(full({1, 5}, 120.0, DType::i64)), "input_ids in [0, 120)");
  EXPECT_ERROR_HAS(m->forward(ids, full({1, 5}, 2.0)), "attention_mask values 0 or 1");
  EXPECT_ERROR_HAS(m->forward(ids, ones({1, 4})), "attention_mask of shape [1, 5]");
  EXPECT_ERROR_HAS(m->forward(ids, Tensor(), full({1, 5}, 2.0, DType::i64)), "token_type_ids in [0, 2)");
  EXPECT_ERROR_HAS(m->forward(zeros({5}, DType::i64)), "input_ids of shape [B, S]");
}

TEST(Bert, ConfigNumbersAreHostile) {
  auto err = [](const std::string& json) { return test::error_of([&] { parse_bert_config(json, "cfg.json"); }); };
  EXPECT_NE(err(R"({"hidden_size": 30, "num_attention_heads": 4})").find("divisible"), std::string::npos);
  EXPECT_NE(err(R"({"hidden_act": "swish"})").find("'hidden_act' to be one of gelu, gelu_new, relu, found 'swish'"),
            std::string::npos);
  EXPECT_NE(err(R"({"vocab_size": -3})").find("'vocab_size' in [1, "), std::string::npos);
  EXPECT_NE(err(R"({"num_hidden_layers": 1e12})").find("num_hidden_layers"), std::string::npos);
  EXPECT_NE(err(R"({"hidden_size": 64.5})").find("'hidden_size' to be an integer, found 64.5"), std::string::npos);
  EXPECT_NE(err(R"({"hidden_size": "64"})").find("integer"), std::string::npos);
  EXPECT_NE(err(R"({"vocab_size": 18446744073709551615})").find("vocab_size"), std::string::npos);
  EXPECT_NE(err(R"({"hidden_dropout_prob": 1.0})").find("'hidden_dropout_prob' in [0, 1)"), std::string::npos);
  EXPECT_NE(err(R"({"layer_norm_eps": 0})").find("layer_norm_eps"), std::string::npos);
  EXPECT_NE(err(R"({"pad_token_id": 30522})").find("pad_token_id"), std::string::npos);
  EXPECT_NE(err(R"({"position_embedding_type": "relative_key"})").find("absolute"), std::string::npos);
  EXPECT_NE(err(R"({"model_type": "roberta"})").find("model_type"), std::string::npos);
  EXPECT_NE(err(R"({"is_decoder": true})").find("is_decoder"), std::string::npos);
  EXPECT_NE(err("[1, 2]").find("JSON object"), std::string::npos);
  EXPECT_NE(err("{\"vocab_size\": ").find("cfg.json': expected valid JSON"), std::string::npos);
  EXPECT_EQ(err(R"({"pad_token_id": null, "hidden_size": 64.0, "num_attention_heads": 4})"), "");
  const BertConfig c = parse_bert_config(R"({"hidden_size": 256, "num_attention_heads": 4, "num_hidden_layers": 4,
                                              "intermediate_size": 1024, "pad_token_id": null})", "mini");
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.pad_token_id, -1);
  EXPECT_EQ(parse_bert_config(bert_config_json(c), "round trip").intermediate_size, 1024);
  EXPECT_ERROR_HAS(load_bert_config("/nonexistent/config.json"), "/nonexistent/config.json");
}

// A copy of the QA directory with its weights replaced by `tensors`.
void write_dir(const test::TempDir& d, const NamedTensors& tensors) {
  std::filesystem::copy_file(qa_dir() + "/config.json", d / "config.json");
  save_safetensors(d / "model.safetensors", tensors);
}

TEST(Bert, LoaderNamesFileAndTensor) {
  const SafetensorsFile f = load_safetensors(qa_dir() + "/model.safetensors");
  {
    test::TempDir d("bert_missing");
    NamedTensors t(f.tensors.begin() + 1, f.tensors.end());
    write_dir(d, t);
    const std::string msg = test::error_of([&] { load_bert_for_question_answering(d.str()); });
    EXPECT_NE(msg.find(d / "model.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing: " + f.tensors[0].first), std::string::npos) << msg;
  }
  {
    test::TempDir d("bert_shape");
    NamedTensors t = f.tensors;
    for (auto& [n, x] : t) {
      if (n == "bert.encoder.layer.1.intermediate.dense.weight") x = zeros({63, 32});
    }
    write_dir(d, t);
    EXPECT_ERROR_HAS(load_bert_for_question_answering(d.str()),
                     "bert.encoder.layer.1.intermediate.dense.weight [63, 32] (config.json gives [64, 32])");
  }
  {
    test::TempDir d("bert_extra");
    NamedTensors t = f.tensors;
    t.emplace_back("bert.encoder.layer.2.output.dense.bias", zeros({32}));
    t.emplace_back("bert.embeddings.position_ids", arange(0.0, 64.0, 1.0, DType::i64).view({1, 64}));
    write_dir(d, t);
    EXPECT_ERROR_HAS(load_bert_for_question_answering(d.str()), "unknown tensors: bert.encoder.layer.2.output.dense.bias");
  }
  {
    test::TempDir d("bert_posids");  // the position_ids buffer older transformers saved is ignored
    NamedTensors t = f.tensors;
    t.emplace_back("bert.embeddings.position_ids", arange(0.0, 64.0, 1.0, DType::i64).view({1, 64}));
    write_dir(d, t);
    EXPECT_NO_THROW(load_bert_for_question_answering(d.str()));
  }
  EXPECT_ERROR_HAS(load_bert_for_masked_lm(qa_dir()), "missing: cls.predictions");
}

TEST(Bert, SaveLoadRoundTrip) {
  const auto& g = goldens();
  auto m = load_bert_for_masked_lm(mlm_dir());
  test::TempDir d("bert_save");
  save_bert(d.str(), m->bert->config, *m);
  auto back = load_bert_for_masked_lm(d.str());
  m->eval();
  back->eval();
  NoGradGuard ng;
  const Tensor a = m->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"));
  const Tensor b = back->forward(g.at("input_ids"), g.at("attention_mask"), g.at("token_type_ids"));
  test::expect_close(b, a, 0, 0, "round trip");
}

BertConfig small_config() {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 48;
  c.max_position_embeddings = 16;
  return c;
}

// Dropout draws from the model's own generator: two models built with the same seed (same
// initial weights, same generator state) repeat each other's training forwards; one model's
// next forward draws fresh masks; eval mode has none.
TEST(Bert, DropoutIsSeeded) {
  const BertConfig c = small_config();
  const Tensor ids = from_vector<int64_t>({2, 7, 9, 11, 3, 0, 5, 6}, {2, 4});
  const Tensor mask = from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 0}, {2, 4});
  BertForQuestionAnswering a(c, false, 7), b(c, false, 7);
  const Tensor a1 = a.forward(ids, mask).start_logits, a2 = a.forward(ids, mask).start_logits;
  const Tensor b1 = b.forward(ids, mask).start_logits, b2 = b.forward(ids, mask).start_logits;
  test::expect_close(b1, a1, 0, 0, "same seed, first forward");
  test::expect_close(b2, a2, 0, 0, "same seed, second forward");
  EXPECT_FALSE(test::all_close(a2, a1, 1e-6, 0)) << "the second forward must draw new masks";
  a.eval();
  const Tensor e1 = a.forward(ids, mask).start_logits, e2 = a.forward(ids, mask).start_logits;
  test::expect_close(e2, e1, 0, 0, "eval is deterministic");
  EXPECT_FALSE(test::all_close(e1, a1, 1e-6, 0)) << "eval must not drop";
}

// Gradients reach every parameter through the tied decoder, the attention (with dropout) and
// the embeddings, and one SGD step lowers the masked-LM loss on the same batch.
TEST(Bert, OneSgdStepLowersMaskedLMLoss) {
  BertConfig c = small_config();
  c.attention_probs_dropout_prob = 0.0;  // same loss before and after: only the weights change
  c.hidden_dropout_prob = 0.0;
  BertForMaskedLM m(c, 11);
  m.train();
  const Tensor ids = from_vector<int64_t>({2, 7, 4, 11, 3, 9, 5, 6, 8, 1, 0, 0}, {2, 6});
  const Tensor mask = from_vector<int64_t>({1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0}, {2, 6});
  const Tensor types = from_vector<int64_t>({0, 0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1}, {2, 6});
  const Tensor labels = from_vector<int64_t>({-100, 17, -100, 23, -100, -100, 31, -100, -100, 40, -100, -100}, {2, 6});
  const Tensor before = m.loss(m.forward(ids, mask, types), labels);
  backward(before);
  for (const auto& [name, p] : m.named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    if (name.find("position_embeddings") == std::string::npos && name.find("token_type") == std::string::npos) {
      EXPECT_GT(finch::sum(finch::abs(p.grad())).item(), 0.0) << name;
    }
  }
  optim::SGDOptions o;
  o.lr = 0.1;
  optim::SGD opt(m.parameters(), o);
  opt.step();
  NoGradGuard ng;
  const double after = m.loss(m.forward(ids, mask, types), labels).item();
  EXPECT_LT(after, before.item() - 1e-3) << "before " << before.item() << " after " << after;
}

// BERT-mini (4 × 256, 4 heads, intermediate 1024, transformers' default vocabulary and 512
// positions) has transformers' parameter counts (the tied decoder counted once).
TEST(Bert, MiniParameterCountsAreTransformers) {
  const BertConfig c = parse_bert_config(
      R"({"num_hidden_layers": 4, "hidden_size": 256, "num_attention_heads": 4, "intermediate_size": 1024})", "mini");
  EXPECT_EQ(BertForQuestionAnswering(c).num_parameters(), 11105282);
  EXPECT_EQ(BertForMaskedLM(c).num_parameters(), 11201594);
  EXPECT_EQ(BertModel(c, /*add_pooling_layer=*/true).num_parameters(), 11170560);
}

}  // namespace
