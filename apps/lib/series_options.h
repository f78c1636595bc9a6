// The options of train_series and train_text: train_cifar's optimization, output and resume
// settings (TrainOptions, so apps/lib/trainer.h and checkpoint.h serve all three programs) plus
// the sequence data and model sizes, with the defaults of Fawaz et al. 2019 (Adam, lr 1e-3,
// batch min(N/10, 16), reduce-on-plateau) instead of train_cifar's SGD ones.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "apps/lib/train_options.h"

namespace finch::apps {

struct SeriesOptions : TrainOptions {
  SeriesOptions() {
    optimizer = "adam";
    schedule = "plateau";
    batch_size = 0;  // 0: default_sequence_batch once the data is read
    augment = false;
    workers = 0;
    out_dir.clear();
  }
  // train_series data: --train/--test files (.ts, UCR .txt/.tsv, .csv); --val-split holds out a
  // stratified part of --train as the test set when there is no --test file.
  std::string train_file, test_file;
  double val_split = 0;
  std::string missing = "interpolate";  // .ts/.txt/.csv missing values: interpolate, zero, fail
  // Classification series: none, series (each series and channel z-scored on its own, as the
  // UCR archive and Fawaz et al. do) or channel (per-channel statistics of the training set).
  std::string normalize = "series";
  // CSV forecasting.
  std::vector<std::string> target;  // column names to predict
  std::vector<std::string> inputs;  // input columns (empty: the targets)
  int64_t window = 24, horizon = 1;
  // train_text data (--data is DataOptions::data_dir: aclImdb with train/ and test/).
  int64_t vocab_size = 2000;  // the embedding rows: words + padding + OOV (seed 002: 2000)
  int64_t max_len = 200;      // tokens per review kept (truncated at --truncate's end)
  std::string truncate = "pre";
  std::string tokenizer = "word";  // word or sentencepiece
  std::string spm_model;
  // Model sizes (0 / -1: the model's default, models/series_spec.h).
  int64_t hidden_size = 0, num_layers = 0, model_width = 0, proj_size = 0;
  double dropout = -1;
  std::string init;  // "torch" or "keras"; empty: default_sequence_init(model)
};

// Registers what both programs share (optimization, output, resume, threads, model sizes).
void add_sequence_train_options(CLI::App& app, SeriesOptions& o, const std::vector<std::string>& models,
                                const std::string& model_help);
// train_series's data options; train_text's data options. finch's subcommands register them
// with --train optional and without --data (theirs names the data folder for every model).
void add_series_data_options(CLI::App& app, SeriesOptions& o, bool train_required = true);
void add_text_data_options(CLI::App& app, SeriesOptions& o, bool with_data = true);

// Fills the "0 = default" fields that do not depend on the data (lr, weight decay, warm-up,
// epochs) and checks the combinations CLI11 cannot; one finch::Error sentence per problem.
void finalize_sequence_options(SeriesOptions& o);
// The default batch size once the training-set size is known: Fawaz et al.'s min(N/10, 16)
// (64 for resnet1d), at least 1; text models 64.
int64_t default_sequence_batch(const std::string& model, int64_t train_size);
// The weight initialisation a model trains best from: Keras's for seed 002's IMDB models (trained
// in Keras; models/keras_init.h has the measurement), PyTorch's (the layers' own) for the rest.
std::string default_sequence_init(const std::string& model);
int64_t default_sequence_epochs(const std::string& model);
// Early-stopping patience when --patience is not given: 3 for the IMDB models, 0 (off) else.
int64_t default_sequence_patience(const std::string& model);

}  // namespace finch::apps
