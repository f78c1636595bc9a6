// The pieces finch's series commands share (quantize, verify, run, compile on train_series and
// train_text checkpoints): the data as the checkpoint's training run prepared it, the data flags a
// program recorded, and the simulated model of a static int8 program (prepared convs and head, the
// QAT recurrent layers whose forward is the deployed cell, per-row int8 embeddings).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/series_data.h"
#include "apps/lib/series_options.h"
#include "autograd/nn/module.h"
#include "data/dataloader.h"
#include "quant/prepare.h"
#include "quant/qat_rnn.h"
#include "runtime/graph.h"
#include "train/evaluate.h"

namespace finch::apps {

// The checkpoint's metadata says it is a text model (train_text).
bool is_text_metadata(const std::map<std::string, std::string>& meta);

// The data as the checkpoint's training run prepared it; `what` names the checkpoint. Text
// models take data_dir (the review folder), series models s.train_file; the other is refused
// with one sentence.
SequenceData load_sequence_data(SeriesOptions& s, const std::map<std::string, std::string>& meta,
                                const std::string& data_dir, const std::string& what);

// The data flags a program recorded (meta "sequence_data", written by finch quantize/compile)
// into `s`, and the review folder it names (empty for series data).
std::string recorded_sequence_data(const nlohmann::json& sequence_data, SeriesOptions& s);
// The same flags as the program's meta "sequence_data".
nlohmann::json sequence_data_json(const SeriesOptions& s);

// accuracy, or mse for forecasting.
double metric_of(const train::EvalResult& r);

// The first batch of `ds` in order (an example for preparing and capturing).
data::Batch first_batch(const std::shared_ptr<const data::Dataset>& ds, int64_t batch);

// The simulated model of a static int8 program: prepared convs/head, QAT recurrent layers (the
// deployed cells) and per-row int8 embeddings, attached to `model` in this order by both
// quantize and verify.
struct Simulation {
  std::unique_ptr<quant::QuantizedModel> q;
  std::vector<std::unique_ptr<quant::QatLstm>> lstms;
  std::vector<std::unique_ptr<quant::QatGru>> grus;
  std::unique_ptr<quant::QatEmbeddings> embeddings;
};
// `rounding_steps` > 0: the LSTMs keep up to that many calibration steps per layer-direction and
// freeze() rounds their weights by output error (quant/rnn_rounding.h); 0 (verify, which loads
// weights already rounded): round to nearest.
Simulation prepare_simulation(nn::Module& model, const Tensor& example, const quant::PrepareOptions& given,
                              int64_t rounding_steps = 0);
// Observers off, the LSTMs' weights rounded (when steps were kept), the integer cells on: the
// simulated model from now on.
void freeze(Simulation& s);
// The static int8 program of the frozen simulation, captured on `b` padded to T steps.
runtime::Graph static_program(nn::Module& model, Simulation& s, const data::Batch& b, int64_t T);

}  // namespace finch::apps
