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
// named in the metadata.
SequenceData load_text_data(const SeriesOptions& o, const std::string& out_dir);

}  // namespace finch::apps
