// models::SeriesSpec: the architecture of a time-series or text model (its name and every size),
// written into a weights file's metadata so a saved model.safetensors rebuilds the model without
// flags, and create_series() that builds it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::models {

// Sizes come from the data (channels, classes, length, vocabulary) and the model's own options;
// 0 (and dropout < 0) means "the model's default", which resolve_series() fills in. Which fields a
// model reads, and their defaults:
//   fcn            width (128: filters 128, 256, 128 as Wang et al.)
//   resnet1d       width (64: blocks of 64, 128, 128)
//   har_cnn        width (21), num_layers = conv blocks (6)
//   ecg_cnn        seq_len (required: a flatten feeds the first Linear), width (32: 32, 64, 64, 64),
//                  hidden_size (2048), dropout (0.5)
//   ecg_resnet     width (32: stem 32, blocks 64, 64, 64)
//   lstm, gru      hidden_size (128), num_layers (2), bidirectional (false), dropout (0 between
//                  layers and before the Linear)
//                  proj_size (LSTM only: 0 = none; else 1 <= P < hidden_size, PyTorch's LSTMP:
//                  h and the output have P columns)
//   bilstm         as lstm with bidirectional forced on
//   deepconvlstm   width (64 conv filters), hidden_size (128), num_layers (2), dropout (0.5)
//   imdb_lstm      vocab_size (required), embed_dim (64), hidden_size (16), num_layers (2)
//   imdb_bilstm    vocab_size (required), embed_dim (30), hidden_size (64), num_layers (1),
//                  bidirectional forced on
//   lstm_forecaster hidden_size (64), num_layers (1), horizon (1), num_targets (1), dropout (0)
// Classifiers output num_classes logits; num_classes = 1 means one logit for a binary task
// (sigmoid / BCE-with-logits; the IMDB models default to it, as seed 002's Dense 1). The
// forecaster outputs [B, num_targets, horizon]. Series models take x [B, C, T] (C = in_channels);
// the IMDB models take token ids I64 [B, T] (padding id padding_idx, default 0).
struct SeriesSpec {
  std::string name;
  int64_t in_channels = 1;
  int64_t num_classes = 2;
  int64_t seq_len = 0;
  int64_t vocab_size = 0;
  int64_t embed_dim = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t width = 0;
  int64_t horizon = 0;
  int64_t num_targets = 0;
  int64_t padding_idx = 0;
  int64_t proj_size = 0;  // lstm/bilstm only; absent from older checkpoints' metadata (= 0)
  bool bidirectional = false;
  double dropout = -1;

  // Key "model" = name, and "series.<field>" for every field, resolved (no defaults left).
  std::map<std::string, std::string> to_metadata() const;
  // The inverse of to_metadata(). Every value is hostile: a missing key, an unknown model name, a
  // number that does not parse or lies outside its range, or a model whose parameter count would
  // pass 2^28 throws finch::Error with one sentence naming the key and the value found. `source`
  // (a file name) starts the sentence.
  static SeriesSpec from_metadata(const std::map<std::string, std::string>& metadata,
                                  const std::string& source = "metadata");
};

// The names create_series() accepts.
const std::vector<std::string>& series_model_names();
// True for the models over token ids (imdb_lstm, imdb_bilstm).
bool is_text_model(const std::string& name);
// True for the recurrent models (all of them implement nn::LengthAware; of the conv models FCN
// and ResNet1d do too).
bool is_recurrent_model(const std::string& name);

// `spec` with every default filled in and every field validated (finch::Error on a bad one).
SeriesSpec resolve_series(const SeriesSpec& spec);
// The number of parameters create_series(spec) will have, computed without building it.
int64_t series_parameter_count(const SeriesSpec& spec);
// Builds the model `spec` names (resolved first), drawing its init from `gen` (default
// generator when null). `gen` is used only while constructing, so it may go out of scope: the
// Dropout layers draw from the default generator, and the recurrent layers' between-layer
// dropout from a generator each seeds from `gen` at construction.
nn::ModulePtr create_series(const SeriesSpec& spec, Generator* gen = nullptr);

}  // namespace finch::models
