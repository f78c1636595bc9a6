// Keras's default initialisation, for models that a paper trained in Keras (seed 002's IMDB
// models): PyTorch's defaults train them measurably worse (bench/imdb_lstm_torch.py, the control
// run in docs/recurrent.md: the IMDB LSTM's first epoch reaches 70 % with PyTorch's init, 84 % with
// Keras's). Found from the module types, so it serves any model built of these layers:
//   Embedding   U(−0.05, 0.05), the padding row zero
//   LSTM / GRU  input weights Glorot-uniform, recurrent weights orthogonal, projection
//               Glorot-uniform, biases zero; an LSTM's forget gate bias 1 (unit_forget_bias, put
//               in b_ih: PyTorch's two biases are summed)
//   Linear, Conv1d, Conv2d   Glorot-uniform weights, zero biases
// Other modules (normalisation, TT layers) keep what they have; their Keras defaults match.
#pragma once

#include <string>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::models {

void keras_init(nn::Module& model, Generator* gen = nullptr);

// "torch" (the layers' own init, as built) or "keras"; anything else: finch::Error naming it.
void apply_init(nn::Module& model, const std::string& scheme, Generator* gen = nullptr);

}  // namespace finch::models
