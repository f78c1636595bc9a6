// The training run shared by train_series and train_text once their data is loaded: the model
// built from a models::SeriesSpec that the data sizes, the training library's loop with the
// plateau schedule, and train_cifar's result files (model.safetensors whose metadata rebuilds
// the model and its input preparation, checkpoint.safetensors for an exact --resume,
// metrics.csv, summary.json with the classification or regression metrics, report.html).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/series_data.h"
#include "apps/lib/series_options.h"
#include "framework/safetensors.h"
#include "models/series_spec.h"
#include "train/evaluate.h"

namespace finch::apps {

// A metric for summary.json: the number, or null where it is NaN or infinite (JSON has neither).
nlohmann::json finite_or_null(double v);
nlohmann::json finite_or_null(const std::vector<double>& v);
// The test metrics as summary.json names them: test_samples, test_loss, test_accuracy, then the
// regression errors or the classification scores (train_series, --eval-only and finch run).
nlohmann::json test_metrics_json(const SequenceData& d, const train::EvalResult& r);

// The spec of o.model for data `d` (channels, classes, length, vocabulary, horizon from the
// data; sizes from the options), resolved; a model that cannot take this data is one
// finch::Error sentence (a text model on series, a classifier on a forecasting CSV, ...).
models::SeriesSpec sequence_spec(const SeriesOptions& o, const SequenceData& d);

// The spec that checkpoint file `f` (read from o.checkpoint) records, after checking that it is
// --model (when given) and that `d` was prepared as its training data was (same format,
// normalization and its statistics, classes, vocabulary and lengths); one sentence otherwise.
models::SeriesSpec checkpoint_spec(const SafetensorsFile& f, const SeriesOptions& o, const SequenceData& d);

// Trains and writes every output into o.out_dir; `program` starts the progress lines.
// Returns the exit code (0); problems are finch::Error sentences.
int run_sequence_training(const std::string& program, SeriesOptions o, const SequenceData& d,
                          const std::string& command_line, bool quiet);

// --eval-only: rebuilds the model from --checkpoint's metadata alone (no model flags), checks
// that `d` was prepared as its training data was, and writes summary.json, report.html and
// --predictions for the test set.
int run_sequence_eval(const std::string& program, SeriesOptions o, const SequenceData& d,
                      const std::string& command_line);

}  // namespace finch::apps
