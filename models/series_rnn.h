// Recurrent time-series and text models: the plain LSTM/GRU classifier (uni- or bidirectional),
// DeepConvLSTM (Ordóñez & Roggen 2016), seed 002's IMDB LSTM and BiLSTM, and an LSTM forecaster.
// All implement nn::LengthAware: with a batch's lengths, padded steps neither update a state nor
// reach the output, so a padded batch gives what each sample gives alone. Names follow the
// PyTorch twins in tests/golden/make_series_goldens.py (state_dict loads with strict=true).
#pragma once

#include <memory>
#include <string>

#include "autograd/nn/nn.h"
#include "autograd/nn/rnn.h"
#include "autograd/nn/sequence.h"
#include "framework/random.h"

namespace finch::models {

// Shapes: B batch, C channels (features per step), T steps, H hidden size, L layers,
// D directions (2 when bidirectional), K classes, V vocabulary, E embedding size.

// The last layer's final hidden state of each sample, [B, D·H]: h_n's last row (forward
// direction at the sample's last valid step), and for D = 2 the reverse direction's row beside it.
Tensor last_layer_state(const nn::RNNBase& rnn, const nn::RnnOutput& r);

// x [B, C, T] -> rnn (batch_first) -> last layer's final state [B, D·H] -> dropout -> fc [B, K].
// rnn is an LSTM or a GRU (`gru`); dropout also applies between the recurrent layers. An LSTM may
// be projected (proj_size P > 0: its state and the head's input are D·P wide).
class RnnClassifier : public nn::Module, public nn::LengthAware {
 public:
  RnnClassifier(bool gru, int64_t in_channels, int64_t num_classes, int64_t hidden_size, int64_t num_layers,
                bool bidirectional, double dropout, Generator* gen = nullptr, int64_t proj_size = 0);
  std::string type_name() const override { return "RnnClassifier"; }
  Tensor forward_impl(const Tensor& x) override { return forward_with_lengths(x, Tensor()); }
  // lengths I64 [B] in [1, T], or undefined (every step valid).
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override;

  std::shared_ptr<nn::RNNBase> rnn;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> fc;
};

// Ordóñez & Roggen 2016, "Deep Convolutional and LSTM Recurrent Neural Networks for Multimodal
// Wearable Activity Recognition": x [B, C, T] is viewed as one image [B, 1, T, C]; four
// Conv2d(k = (5, 1), `width` filters, no padding) + ReLU convolve each sensor channel over time
// with shared weights, giving [B, F, T−16, C]; each step's F·C features feed LSTM(H) → LSTM(H)
// (dropout between the recurrent layers and before the head); the last valid
// step's hidden state → fc [B, K]. The convs drop 16 steps, so a sample needs T ≥ 17 (and a
// length l becomes l − 16, which keeps padded steps out: a valid conv output only reads steps
// inside the sample).
class DeepConvLSTM : public nn::Module, public nn::LengthAware {
 public:
  DeepConvLSTM(int64_t in_channels, int64_t num_classes, int64_t width = 64, int64_t hidden_size = 128,
               int64_t num_layers = 2, double dropout = 0.5, Generator* gen = nullptr);
  std::string type_name() const override { return "DeepConvLSTM"; }
  Tensor forward_impl(const Tensor& x) override { return forward_with_lengths(x, Tensor()); }
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override;

  static constexpr int64_t kKernel = 5, kConvs = 4, kLost = kConvs * (kKernel - 1);
  int64_t in_channels;
  std::shared_ptr<nn::Conv2d> conv1, conv2, conv3, conv4;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Linear> fc;
};

// Token ids I64 [B, T] -> Embedding(V, E, padding_idx) -> LSTM(E, H, L, D) -> last layer's final
// state -> fc [B, K]. Seed 002's IMDB LSTM is (V 2000, E 64, H 16, L 2, D 1, K 1) — its
// "LSTM 16 → LSTM 16" is torch's num_layers = 2 — and its BiLSTM (V 2000, E 30, H 64, L 1, D 2).
// K = 1 is one logit for the binary task (sigmoid / BCE with logits), as the seed's Dense 1.
// Without lengths every step counts (padding tokens included, as Keras without masking).
class TextLSTM : public nn::Module, public nn::LengthAware {
 public:
  TextLSTM(int64_t vocab_size, int64_t embed_dim, int64_t hidden_size, int64_t num_layers, bool bidirectional,
           int64_t num_classes, int64_t padding_idx = 0, double dropout = 0.0, Generator* gen = nullptr);
  std::string type_name() const override { return "TextLSTM"; }
  Tensor forward_impl(const Tensor& tokens) override { return forward_with_lengths(tokens, Tensor()); }
  Tensor forward_with_lengths(const Tensor& tokens, const Tensor& lengths) override;

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> fc;
};

// Window -> horizon regression: x [B, C, T] -> LSTM(C, H, L) -> last valid step's state ->
// fc(H, K·horizon) -> [B, K, horizon] (K target series), the shape of the data's targets.
class LSTMForecaster : public nn::Module, public nn::LengthAware {
 public:
  LSTMForecaster(int64_t in_channels, int64_t num_targets, int64_t horizon, int64_t hidden_size = 64,
                 int64_t num_layers = 1, double dropout = 0.0, Generator* gen = nullptr);
  std::string type_name() const override { return "LSTMForecaster"; }
  Tensor forward_impl(const Tensor& x) override { return forward_with_lengths(x, Tensor()); }
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override;

  int64_t num_targets, horizon;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::Dropout> dropout;
  std::shared_ptr<nn::Linear> fc;
};

}  // namespace finch::models
