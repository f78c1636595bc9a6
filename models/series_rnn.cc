// The recurrent series and text models of models/series_rnn.h.
#include "models/series_rnn.h"

#include <vector>

#include "autograd/functional.h"
#include "models/series_conv.h"

namespace finch::models {

namespace {

nn::RnnOptions rnn_options(int64_t num_layers, bool bidirectional, double dropout) {
  nn::RnnOptions o;
  o.num_layers = num_layers;
  o.batch_first = true;
  // torch warns that dropout on a one-layer RNN does nothing; pass it only where it acts.
  o.dropout = num_layers > 1 ? dropout : 0.0;
  o.bidirectional = bidirectional;
  return o;
}

void check_dropout(const std::string& model, double p) {
  if (!(p >= 0 && p < 1)) fail(model, ": expected dropout in [0, 1), got ", p);
}

// [B, C, T] -> [B, T, C], the batch_first layout the recurrent layers read.
Tensor time_major_features(const Tensor& x) { return finch::contiguous(finch::transpose(x, 1, 2)); }

}  // namespace

Tensor last_layer_state(const nn::RNNBase& rnn, const nn::RnnOutput& r) {
  const int64_t D = rnn.bidirectional ? 2 : 1, last = (rnn.num_layers - 1) * D;
  if (D == 1) return finch::select(r.state.h, 0, last);
  return finch::cat({finch::select(r.state.h, 0, last), finch::select(r.state.h, 0, last + 1)}, 1);
}

// ---- RnnClassifier ----

RnnClassifier::RnnClassifier(bool gru, int64_t C, int64_t K, int64_t H, int64_t L, bool bidirectional,
                             double p, Generator* gen, int64_t P) {
  const char* who = gru ? "GRU classifier" : "LSTM classifier";
  if (C < 1 || K < 1) fail(who, ": expected in_channels >= 1 and num_classes >= 1, got ", C, " and ", K);
  check_dropout(who, p);
  nn::RnnOptions o = rnn_options(L, bidirectional, p);
  if (P > 0 && gru) fail(who, ": a GRU has no proj_size, got ", P);
  o.proj_size = P;
  if (gru) rnn = register_module("rnn", std::make_shared<nn::GRU>(C, H, o, gen));
  else rnn = register_module("rnn", std::make_shared<nn::LSTM>(C, H, o, gen));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  fc = register_module("fc", std::make_shared<nn::Linear>((bidirectional ? 2 : 1) * (P > 0 ? P : H), K, true, gen));
}

Tensor RnnClassifier::forward_with_lengths(const Tensor& x, const Tensor& lengths) {
  nn::ForwardPass pass;  // one call site per use of a shared module (quant/ interceptors)
  check_series_input(type_name(), x, rnn->input_size);
  const nn::RnnOutput r = rnn->forward_seq(time_major_features(x), lengths);
  return fc->forward(dropout->forward(last_layer_state(*rnn, r)));
}

// ---- DeepConvLSTM ----

DeepConvLSTM::DeepConvLSTM(int64_t C, int64_t K, int64_t F, int64_t H, int64_t L, double p, Generator* gen)
    : in_channels(C) {
  if (C < 1 || K < 1 || F < 1)
    fail("DeepConvLSTM: expected in_channels, num_classes and width >= 1, got ", C, ", ", K, " and ", F);
  check_dropout("DeepConvLSTM", p);
  Conv2dParams cp;  // stride 1, no padding: each conv drops kKernel − 1 steps
  auto conv = [&](int64_t in) { return std::make_shared<nn::Conv2d>(in, F, std::pair<int64_t, int64_t>{kKernel, 1}, cp, true, gen); };
  conv1 = register_module("conv1", conv(1));
  conv2 = register_module("conv2", conv(F));
  conv3 = register_module("conv3", conv(F));
  conv4 = register_module("conv4", conv(F));
  relu = register_module("relu", std::make_shared<nn::ReLU>());
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  lstm = register_module("lstm", std::make_shared<nn::LSTM>(F * C, H, rnn_options(L, false, p), gen));
  fc = register_module("fc", std::make_shared<nn::Linear>(H, K, true, gen));
}

Tensor DeepConvLSTM::forward_with_lengths(const Tensor& x, const Tensor& lengths) {
  nn::ForwardPass pass;  // one call site per use of a shared module (quant/ interceptors)
  check_series_input("DeepConvLSTM", x, in_channels, kLost + 1);
  Tensor short_lengths;
  if (lengths.defined()) {
    if (lengths.dtype() != DType::i64 || lengths.dim() != 1 || lengths.size(0) != x.size(0))
      fail("DeepConvLSTM: expected lengths I64 [", x.size(0), "], got ", dtype_name(lengths.dtype()), " ",
           shape_str(lengths.shape()));
    for (int64_t v : lengths.contiguous().to_vector<int64_t>())
      if (v <= kLost || v > x.size(2))
        fail("DeepConvLSTM: expected every length in [", kLost + 1, ", ", x.size(2), "] (its four (5×1) convs drop ",
             kLost, " steps), got ", v);
    // A recorded op, so a captured program shortens the lengths it is given (not the example's).
    short_lengths = finch::add(lengths, double(-kLost));
  }
  // [B, C, T] -> [B, 1, T, C]: each sensor channel is a column the (5×1) kernels slide down.
  Tensor h = finch::unsqueeze(finch::transpose(x, 1, 2), 1);
  for (const auto& c : {conv1, conv2, conv3, conv4}) h = relu->forward(c->forward(h));
  // [B, F, T', C] -> [B, T', F·C]: one feature vector per step.
  const int64_t B = h.size(0), F = h.size(1), T = h.size(2), C = h.size(3);
  h = finch::reshape(finch::permute(h, {0, 2, 1, 3}), {B, T, F * C});
  const nn::RnnOutput r = lstm->forward_seq(h, short_lengths);
  return fc->forward(dropout->forward(last_layer_state(*lstm, r)));
}

// ---- TextLSTM ----

TextLSTM::TextLSTM(int64_t V, int64_t E, int64_t H, int64_t L, bool bidirectional, int64_t K, int64_t padding_idx,
                   double p, Generator* gen) {
  if (V < 2 || K < 1) fail("TextLSTM: expected vocab_size >= 2 and num_classes >= 1, got ", V, " and ", K);
  if (padding_idx < 0 || padding_idx >= V)
    fail("TextLSTM: expected padding_idx in [0, ", V, "), got ", padding_idx);
  check_dropout("TextLSTM", p);
  embedding = register_module("embedding", std::make_shared<nn::Embedding>(V, E, padding_idx, gen));
  lstm = register_module("lstm", std::make_shared<nn::LSTM>(E, H, rnn_options(L, bidirectional, p), gen));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  fc = register_module("fc", std::make_shared<nn::Linear>((bidirectional ? 2 : 1) * H, K, true, gen));
}

Tensor TextLSTM::forward_with_lengths(const Tensor& tokens, const Tensor& lengths) {
  nn::ForwardPass pass;  // one call site per use of a shared module (quant/ interceptors)
  if (tokens.dim() != 2 || (tokens.dtype() != DType::i64 && tokens.dtype() != DType::i32))
    fail("TextLSTM: expected token ids I64 [B, T], got ", dtype_name(tokens.dtype()), " ", shape_str(tokens.shape()));
  const nn::RnnOutput r = lstm->forward_seq(embedding->forward(tokens), lengths);
  return fc->forward(dropout->forward(last_layer_state(*lstm, r)));
}

// ---- LSTMForecaster ----

LSTMForecaster::LSTMForecaster(int64_t C, int64_t K, int64_t horizon, int64_t H, int64_t L, double p, Generator* gen)
    : num_targets(K), horizon(horizon) {
  if (C < 1 || K < 1 || horizon < 1)
    fail("LSTMForecaster: expected in_channels, num_targets and horizon >= 1, got ", C, ", ", K, " and ", horizon);
  check_dropout("LSTMForecaster", p);
  lstm = register_module("lstm", std::make_shared<nn::LSTM>(C, H, rnn_options(L, false, p), gen));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(p));
  fc = register_module("fc", std::make_shared<nn::Linear>(H, K * horizon, true, gen));
}

Tensor LSTMForecaster::forward_with_lengths(const Tensor& x, const Tensor& lengths) {
  nn::ForwardPass pass;  // one call site per use of a shared module (quant/ interceptors)
  check_series_input("LSTMForecaster", x, lstm->input_size);
  const nn::RnnOutput r = lstm->forward_seq(time_major_features(x), lengths);
  const Tensor y = fc->forward(dropout->forward(last_layer_state(*lstm, r)));
  return finch::reshape(y, {y.size(0), num_targets, horizon});
}

}  // namespace finch::models
