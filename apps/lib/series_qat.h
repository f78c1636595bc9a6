// train_series / train_text --qat: quantization-aware fine-tuning of a recurrent model's LSTM
// and GRU layers for the static int8 program (quant/qat_rnn.h), and the int8 accuracy column:
// fp32, PTQ (post-training calibration, compile/static_rnn.h) and QAT, each the deployed
// program's accuracy, with the check that the QAT model and its program agree bit for bit on the
// test set.
#pragma once

#include <string>

#include "apps/lib/series_data.h"
#include "apps/lib/series_options.h"

namespace finch::apps {

// Fine-tunes o.checkpoint (a float model.safetensors; its metadata rebuilds the model) for
// o.qat_epochs at o.qat_lr with the QAT LSTM/GRU layers (observers frozen from
// o.freeze_observer_epoch), writes the int8 program (o.export_program, default
// OUT/model_int8.finch), qat_model.safetensors, qat_metrics.csv and qat_summary.json. LSTM (GRU)
// layers become qlstm (qgru) and embeddings per-row int8 qembedding, for PTQ and QAT alike; the
// heads (Linear) stay float in both the simulation and the program.
int run_sequence_qat(const std::string& program, const SeriesOptions& o, const SequenceData& d,
                     const std::string& command_line, bool quiet);

}  // namespace finch::apps
