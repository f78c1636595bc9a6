// keras_init.h: Keras's default initialisers applied by module type.
#include "models/keras_init.h"

#include "autograd/nn/conv.h"
#include "autograd/nn/embedding.h"
#include "autograd/nn/init.h"
#include "autograd/nn/linear.h"
#include "autograd/nn/rnn.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::models {
namespace {

void glorot_and_zero(Tensor& w, Tensor& b, Generator* gen) {
  nn::init::xavier_uniform_(w, 1.0, gen);
  if (b.defined()) nn::init::zeros_(b);
}

void init_rnn(nn::RNNBase& rnn, Generator* gen) {
  const bool lstm = rnn.type_name() == "LSTM";
  const int64_t H = rnn.hidden_size;
  for (nn::RNNBase::Weights& w : rnn.weights) {
    nn::init::xavier_uniform_(w.w_ih, 1.0, gen);
    nn::init::orthogonal_(w.w_hh, 1.0, gen);
    if (w.w_hr.defined()) nn::init::xavier_uniform_(w.w_hr, 1.0, gen);
    if (w.b_ih.defined()) nn::init::zeros_(w.b_ih);
    if (w.b_hh.defined()) nn::init::zeros_(w.b_hh);
    if (lstm && w.b_ih.defined()) {
      NoGradGuard ng;
      Tensor forget = w.b_ih.narrow(0, H, H);  // gate order i, f, g, o
      nn::init::ones_(forget);
    }
  }
}

}  // namespace

void keras_init(nn::Module& model, Generator* gen) {
  for (auto& [name, m] : model.named_modules()) {
    if (auto* e = dynamic_cast<nn::Embedding*>(m)) {
      nn::init::uniform_(e->weight, -0.05, 0.05, gen);
      if (e->padding_idx) {
        NoGradGuard ng;
        Tensor row = e->weight.narrow(0, *e->padding_idx, 1);
        nn::init::zeros_(row);
      }
    } else if (auto* r = dynamic_cast<nn::RNNBase*>(m)) {
      init_rnn(*r, gen);
    } else if (auto* l = dynamic_cast<nn::Linear*>(m)) {
      glorot_and_zero(l->weight, l->bias, gen);
    } else if (auto* c2 = dynamic_cast<nn::Conv2d*>(m)) {
      glorot_and_zero(c2->weight, c2->bias, gen);
    } else if (auto* c1 = dynamic_cast<nn::Conv1d*>(m)) {
      glorot_and_zero(c1->weight, c1->bias, gen);
    }
  }
}

void apply_init(nn::Module& model, const std::string& scheme, Generator* gen) {
  if (scheme == "keras") keras_init(model, gen);
  else if (scheme != "torch") fail("models::apply_init: expected the init scheme 'torch' or 'keras', found '", scheme, "'");
}

}  // namespace finch::models
