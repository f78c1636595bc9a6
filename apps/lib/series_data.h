// The data of train_series and train_text: training and test sets read from the files the
// options name (.ts, UCR .txt/.tsv, CSV windows, review folders), normalized or tokenized, with
// what a later command needs to prepare new inputs the same way recorded as metadata.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apps/lib/series_options.h"
#include "data/dataset.h"
#include "train/checkpoint.h"

namespace finch::apps {

struct SequenceData {
  std::shared_ptr<const data::Dataset> train, test;
  // The validation part of the training data (hold_out_validation); null: none. What it is, in
  // words, for the log and summary.json ("aclImdb/val", "10 % of --train (stratified, seed 1)").
  std::shared_ptr<const data::Dataset> val;
  std::string val_source;
  std::string name;                  // the problem (.ts @problemName, else the file or folder name)
  std::vector<std::string> classes;  // class k's name; empty for regression
  bool regression = false;
  bool tokens = false;               // token ids I64 [T] (text) instead of series F32 [C, T]
  int64_t channels = 1;              // series channels C
  int64_t min_length = 0, max_length = 0;
  int64_t vocab_size = 0;            // text: ids 0 … vocab_size-1
  int64_t num_targets = 0, horizon = 0;  // forecasting: targets [K, H]
  std::vector<double> target_std;    // regression: errors in original units (RegressionMetrics)
  // "data.*" entries: the format, normalization (statistics as JSON arrays), classes, vocabulary
  // file and max length, window and horizon — saved into model.safetensors and the checkpoint.
  train::Metadata metadata;
};

// train_series: --train/--test (or --val-split) in the format of --train's extension.
SequenceData load_series_data(const SeriesOptions& o);

// train_text: --data/train and --data/test review folders, tokenized by --tokenizer; the word
// vocabulary (built from the training reviews only) is written to `out_dir`/vocab.txt and
// named in the metadata. `read_val`: also --data/val when that folder exists (the validation
// reviews of bench/imdb_lstm_torch.py's split), tokenized the same way, into d.val.
SequenceData load_text_data(const SeriesOptions& o, const std::string& out_dir, bool read_val = false);

// train_series / train_text: the validation part used to choose the best epoch
// (apps/lib/model_selection.h), by o.val_fraction: < 0 the default — --data/val when
// load_text_data read one, else 20 % of the training reviews (text) or 10 % of --train
// (series: the UCR sets are small) —, 0 none, F that fraction. Classification and .ts
// regression: stratified by class and seeded by --seed (data::stratified_split); a CSV series:
// the last windows in time, with horizon − 1 windows dropped before them so no target row is
// in both parts. The data preparation (vocabulary, normalization statistics) stays what
// load_*_data made from the whole training data, so later finch commands prepare data alike.
void hold_out_validation(SequenceData& d, const SeriesOptions& o);

}  // namespace finch::apps
