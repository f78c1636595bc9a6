// Helpers of the series-model tests: a SeriesSpec from the goldens' "field=value,..." strings, and
// the one-step SGD check.
#pragma once

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/sgd.h"
#include "framework/grad_mode.h"
#include "models/series_spec.h"

namespace finch::test {

inline models::SeriesSpec spec_from_string(const std::string& name, const std::string& fields) {
  models::SeriesSpec s;
  s.name = name;
  std::stringstream ss(fields);
  std::string kv;
  while (std::getline(ss, kv, ',')) {
    const auto eq = kv.find('=');
    const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "dropout") s.dropout = std::stod(v);
    else if (k == "bidirectional") s.bidirectional = v == "1" || v == "True";
    else if (k == "in_channels") s.in_channels = std::stoll(v);
    else if (k == "num_classes") s.num_classes = std::stoll(v);
    else if (k == "seq_len") s.seq_len = std::stoll(v);
    else if (k == "vocab_size") s.vocab_size = std::stoll(v);
    else if (k == "embed_dim") s.embed_dim = std::stoll(v);
    else if (k == "hidden_size") s.hidden_size = std::stoll(v);
    else if (k == "num_layers") s.num_layers = std::stoll(v);
    else if (k == "width") s.width = std::stoll(v);
    else if (k == "horizon") s.horizon = std::stoll(v);
    else if (k == "num_targets") s.num_targets = std::stoll(v);
    else if (k == "padding_idx") s.padding_idx = std::stoll(v);
    else ADD_FAILURE() << "unknown spec field '" << k << "'";
  }
  return s;
}

// One forward + backward + SGD step on (x, labels) must lower the loss on the same batch.
// `loss` maps the model's output to a scalar. Dropout (its modules and the recurrent layers'
// between-layer dropout) is switched off so the two losses compare the same function.
template <typename Forward, typename Loss>
void expect_sgd_step_lowers_loss(nn::Module& model, Forward forward, Loss loss, double lr,
                                 const std::string& what) {
  model.train();
  for (auto& [path, m] : model.named_modules())
    if (m->type_name() == "Dropout" || m->type_name() == "LSTM" || m->type_name() == "GRU") m->eval();
  // Batch statistics make a training forward depend on the batch only, so the same batch
  // before and after the step compares like with like.
  optim::SGDOptions o;
  o.lr = lr;
  optim::SGD opt(model.parameters(), o);
  const Tensor l0 = loss(forward());
  model.zero_grad();
  backward(l0);
  opt.step();
  double l1 = 0;
  {
    NoGradGuard ng;
    l1 = loss(forward()).item();
  }
  const double before = l0.item();
  EXPECT_LT(l1, before) << what << ": loss " << before << " -> " << l1 << " after one SGD step";
}

}  // namespace finch::test
