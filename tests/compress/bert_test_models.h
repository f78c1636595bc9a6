// The small BERT the structured-pruning and compressed-directory tests cut: a 2-layer, 32-wide
// question-answering model with weights of a trained-like scale, its inputs and its logits.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/bert.h"

namespace finch::test {

inline models::BertConfig mini_bert_config() {
  models::BertConfig c;
  c.vocab_size = 60, c.hidden_size = 32, c.num_hidden_layers = 2, c.num_attention_heads = 4;
  c.intermediate_size = 48, c.max_position_embeddings = 24;
  return c;
}

// Weights of a trained-like scale (N(0, 0.02) leaves every attention nearly uniform).
inline std::shared_ptr<models::BertForQuestionAnswering> mini_bert(uint64_t seed) {
  auto m = std::make_shared<models::BertForQuestionAnswering>(mini_bert_config(), false, seed);
  Generator gen(seed);
  NoGradGuard ng;
  for (auto& [n, t] : m->named_parameters())
    if (t.dim() == 2) t.copy_(mul(randn(t.shape(), gen), 0.3));
  m->eval();
  return m;
}

inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double d = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) d = std::max(d, std::fabs(x[i] - y[i]));
  return d;
}

// B sequences of S random token ids of the mini vocabulary (no padding).
inline Tensor mini_bert_ids(int64_t B, int64_t S, uint64_t seed) {
  Generator gen(seed);
  return randint(1, 60, {B, S}, gen);
}

inline Tensor qa_logits(models::BertForQuestionAnswering& m, const Tensor& x) {
  NoGradGuard ng;
  m.eval();
  return m.forward_impl(x);
}

}  // namespace finch::test
