// train_series / train_text data: readers by file extension, class alignment between files,
// normalization and tokenization, and the metadata that records them (series_data.h).
#include "apps/lib/series_data.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "apps/lib/model_selection.h"
#include "data/csv_series.h"
#include "data/sentencepiece_text.h"
#include "data/series_dataset.h"
#include "data/series_file.h"
#include "data/text_folder.h"
#include "data/word_vocab.h"
#include "framework/error.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;

std::string extension(const std::string& path) {
  std::string e = fs::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  return e;
}

data::SeriesSet read_existing(const std::string& path, const data::SeriesReadOptions& ro) {
  if (!fs::exists(path)) fail(path, ": no such file");
  return data::read_series_file(path, ro);
}

// The examples `idx` of `s` (a copy sharing the series tensors).
data::SeriesSet subset(const data::SeriesSet& s, const std::vector<int64_t>& idx) {
  data::SeriesSet out;
  out.classes = s.classes;
  out.name = s.name;
  for (int64_t i : idx) {
    out.series.push_back(s.series[size_t(i)]);
    out.labels.push_back(s.labels[size_t(i)]);
    if (s.is_regression()) out.targets.push_back(s.targets[size_t(i)]);
  }
  return out;
}

// Gives `test` the class indices of `train` (matched by name): two UCR text files list only the
// labels they contain, and a .ts test file may order @classLabel differently.
void align_classes(const data::SeriesSet& train, data::SeriesSet& test, const std::string& test_path) {
  if (test.classes == train.classes) return;
  std::vector<int64_t> map;
  for (const std::string& c : test.classes) {
    auto it = std::find(train.classes.begin(), train.classes.end(), c);
    if (it == train.classes.end())
      fail(test_path, ": class '", c, "' does not occur in the training file (", train.classes.size(), " classes)");
    map.push_back(int64_t(it - train.classes.begin()));
  }
  for (int64_t& y : test.labels) y = map[size_t(y)];
  test.classes = train.classes;
}

// Each channel of each series z-scored on its own (a constant channel becomes 0), as the UCR
// archive ships most sets and Fawaz et al. prepare the rest.
void znorm_each(data::SeriesSet& s) {
  for (Tensor& x : s.series) {
    const int64_t C = x.size(0), T = x.size(1);
    auto v = x.contiguous().to_vector<float>();
    for (int64_t c = 0; c < C; ++c) {
      float* row = v.data() + c * T;
      double mean = 0, sq = 0;
      for (int64_t t = 0; t < T; ++t) mean += row[t];
      mean /= double(T);
      for (int64_t t = 0; t < T; ++t) sq += (row[t] - mean) * (row[t] - mean);
      double sd = std::sqrt(sq / double(T));
      if (!(sd > 0)) sd = 1;
      for (int64_t t = 0; t < T; ++t) row[t] = float((row[t] - mean) / sd);
    }
    x = from_vector<float>(v, {C, T});
  }
}

std::string json_list(const std::vector<double>& v) { return nlohmann::json(v).dump(); }
std::string json_list(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

void describe(SequenceData& d, const data::SeriesSet& train) {
  d.name = train.name;
  d.channels = train.channels();
  d.min_length = train.min_length();
  d.max_length = train.max_length();
  d.regression = train.is_regression();
  if (!d.regression) d.classes = train.classes;
}

SequenceData load_csv(const SeriesOptions& o, const data::SeriesReadOptions& ro) {
  if (!o.test_file.empty())
    fail("--test: a CSV series is split in time (the last --val-split of its rows, default 0.2, is the test "
         "part); give only --train");
  if (o.target.empty()) fail(o.train_file, ": a CSV series needs --target COLUMN (the column to forecast)");
  data::ForecastOptions fo;
  fo.targets = o.target;
  fo.inputs = o.inputs;
  fo.window = o.window;
  fo.horizon = o.horizon;
  fo.val_fraction = 0;
  fo.test_fraction = o.val_split > 0 ? o.val_split : 0.2;
  data::ForecastData f = data::read_csv_forecast(o.train_file, fo, ro);
  if (f.train.size() == 0 || f.test.size() == 0)
    fail(o.train_file, ": ", f.train_rows, " training and ", f.test_rows, " test rows leave no complete window of ",
         o.window, " + ", o.horizon, " steps on one side; lower --window or --horizon");
  SequenceData d;
  describe(d, f.train);
  d.name = fs::path(o.train_file).stem().string();
  d.regression = true;
  d.num_targets = int64_t(f.target_columns.size());
  d.horizon = o.horizon;
  d.target_std = f.target_stats.std;
  d.metadata = {{"data.format", "csv"},
                {"data.target", json_list(f.target_columns)},
                {"data.inputs", json_list(f.input_columns)},
                {"data.window", std::to_string(o.window)},
                {"data.horizon", std::to_string(o.horizon)},
                {"data.input_mean", json_list(f.input_stats.mean)},
                {"data.input_std", json_list(f.input_stats.std)},
                {"data.target_mean", json_list(f.target_stats.mean)},
                {"data.target_std", json_list(f.target_stats.std)}};
  d.train = std::make_shared<data::SeriesDataset>(std::move(f.train));
  d.test = std::make_shared<data::SeriesDataset>(std::move(f.test));
  return d;
}

}  // namespace

SequenceData load_series_data(const SeriesOptions& o) {
  data::SeriesReadOptions ro;
  ro.missing = data::missing_from_name(o.missing);
  if (extension(o.train_file) == ".csv") return load_csv(o, ro);
  if (o.test_file.empty() && !(o.val_split > 0))
    fail("give --test FILE, or --val-split F to hold out part of ", o.train_file, " as the test set");
  data::SeriesSet train = read_existing(o.train_file, ro), test;
  if (train.size() == 0) fail(o.train_file, ": the file holds no series");
  if (!o.test_file.empty()) {
    if (extension(o.test_file) != extension(o.train_file))
      fail("--test ", o.test_file, " is not in the format of --train ", o.train_file, " (", extension(o.train_file),
           ")");
    test = read_existing(o.test_file, ro);
    if (test.size() == 0) fail(o.test_file, ": the file holds no series");
    if (test.channels() != train.channels())
      fail(o.test_file, ": its series have ", test.channels(), " channels but those of ", o.train_file, " have ",
           train.channels());
    if (test.is_regression() != train.is_regression())
      fail(o.test_file, ": one of --train and --test has regression targets and the other class labels");
    if (!train.is_regression()) align_classes(train, test, o.test_file);
  } else {
    const data::Split split = data::stratified_split(train.labels, o.val_split, o.seed);
    if (split.val.empty() || split.train.empty())
      fail("--val-split ", o.val_split, " of ", o.train_file, "'s ", train.size(),
           " series leaves one side empty; change --val-split");
    test = subset(train, split.val);
    train = subset(train, split.train);
  }
  if (!train.is_regression() && train.classes.size() < 2)
    fail(o.train_file, ": classification needs at least 2 classes, found ", train.classes.size());
  SequenceData d;
  d.metadata = {{"data.format", extension(o.train_file).substr(1)}, {"data.normalize", o.normalize}};
  if (o.normalize == "series") {
    znorm_each(train);
    znorm_each(test);
  } else if (o.normalize == "channel") {
    const data::ChannelStats st = data::ChannelStats::fit(train.series);
    for (Tensor& x : train.series) x = st.apply(x);
    for (Tensor& x : test.series) x = st.apply(x);
    d.metadata["data.channel_mean"] = json_list(st.mean);
    d.metadata["data.channel_std"] = json_list(st.std);
  }
  describe(d, train);
  if (d.name.empty()) d.name = fs::path(o.train_file).stem().string();
  if (!d.regression) d.metadata["data.classes"] = json_list(d.classes);
  d.metadata["data.length"] = std::to_string(d.max_length);
  d.train = std::make_shared<data::SeriesDataset>(std::move(train));
  d.test = std::make_shared<data::SeriesDataset>(std::move(test));
  return d;
}

SequenceData load_text_data(const SeriesOptions& o, const std::string& out_dir, bool read_val) {
  const std::string train_dir = o.data_dir + "/train", test_dir = o.data_dir + "/test";
  for (const std::string& dir : {train_dir, test_dir})
    if (!fs::is_directory(dir))
      fail("--data ", o.data_dir, ": expected review folders train/<class>/*.txt and test/<class>/*.txt, but ", dir,
           " is not a folder");
  const data::TextFolder train = data::read_text_folder(train_dir);
  const data::TextFolder test = data::read_text_folder(test_dir, train.classes);
  const std::string val_dir = o.data_dir + "/val";
  const bool with_val = read_val && fs::is_directory(val_dir);
  const data::TextFolder val = with_val ? data::read_text_folder(val_dir, train.classes) : data::TextFolder{};
  if (with_val && val.size() == 0) fail(val_dir, ": the validation folder holds no .txt reviews");
  if (train.classes.size() < 2) fail(train_dir, ": expected at least 2 class folders, found ", train.classes.size());
  if (train.size() == 0 || test.size() == 0) fail("--data ", o.data_dir, ": no .txt reviews in train/ or test/");
  const data::Side side = data::side_from_name(o.truncate);
  SequenceData d;
  d.tokens = true;
  d.name = fs::path(o.data_dir).filename().string();
  d.classes = train.classes;
  d.metadata = {{"data.format", "text"},
                {"data.tokenizer", o.tokenizer},
                {"data.max_len", std::to_string(o.max_len)},
                {"data.truncate", o.truncate},
                {"data.classes", json_list(d.classes)}};
  if (o.tokenizer == "sentencepiece") {
    const data::SentencePieceTokenizer sp(o.spm_model);
    d.vocab_size = sp.size();
    d.train = data::make_token_dataset(train, sp, o.max_len, side);
    d.test = data::make_token_dataset(test, sp, o.max_len, side);
    if (with_val) d.val = data::make_token_dataset(val, sp, o.max_len, side);
    d.metadata["data.spm_model"] = fs::absolute(o.spm_model).string();
  } else {
    const auto train_tokens = data::tokenize_all(train.texts);
    // --vocab-size counts the embedding rows: the padding and OOV ids plus the words.
    const data::WordVocab vocab = data::WordVocab::build(train_tokens, o.vocab_size - data::WordVocab::kFirstWord);
    d.vocab_size = vocab.size();
    d.train = data::make_token_dataset(train, train_tokens, vocab, o.max_len, side);
    d.test = data::make_token_dataset(test, data::tokenize_all(test.texts), vocab, o.max_len, side);
    if (with_val) d.val = data::make_token_dataset(val, data::tokenize_all(val.texts), vocab, o.max_len, side);
    vocab.save(out_dir + "/vocab.txt");
    d.metadata["data.vocab"] = "vocab.txt";  // beside model.safetensors
  }
  d.max_length = o.max_len;
  d.min_length = 1;
  if (with_val) d.val_source = val_dir;
  return d;
}

void hold_out_validation(SequenceData& d, const SeriesOptions& o) {
  const std::string what = d.tokens ? o.data_dir + "/train" : o.train_file;
  if (o.val_fraction == 0) {
    d.val.reset(), d.val_source.clear();
    return;
  }
  if (o.val_fraction < 0 && d.val) return;  // the --data/val folder
  d.val.reset(), d.val_source.clear();
  const double f = o.val_fraction > 0 ? o.val_fraction : d.tokens ? 0.2 : 0.1;
  const int64_t n = d.train->size();
  data::Split split;
  if (d.metadata.count("data.format") && d.metadata.at("data.format") == "csv") {
    // Windows start one row apart in time order: the last ones validate; horizon − 1 windows
    // before them go to neither part, so no target row is trained on and validated.
    const int64_t nv = std::llround(f * double(n)), gap = std::max<int64_t>(d.horizon, 1) - 1;
    if (nv < 1 || n - nv - gap < 1)
      fail("--val-fraction ", f, " of ", what, "'s ", n, " training windows leaves ",
           nv < 1 ? "no validation window" : "no training window",
           "; change it, or turn validation off with --val-fraction 0");
    for (int64_t i = 0; i < n - nv - gap; ++i) split.train.push_back(i);
    for (int64_t i = n - nv; i < n; ++i) split.val.push_back(i);
    d.val_source = "the last " + std::to_string(nv) + " of " + what + "'s training windows";
  } else {
    std::vector<int64_t> labels(size_t(n), 0);
    if (!d.regression)
      for (int64_t i = 0; i < n; ++i) labels[size_t(i)] = d.train->label(i);
    if (o.val_fraction > 0) {
      split = validation_split(labels, f, o.seed, what);
    } else if (auto s = default_validation_split(labels, f, o.seed, what)) {
      split = std::move(*s);
    } else {
      return;  // too small for the default: no validation
    }
    d.val_source = fraction_source(f, what, o.seed);
  }
  d.val = std::make_shared<data::SubsetDataset>(d.train, split.val);
  d.train = std::make_shared<data::SubsetDataset>(d.train, std::move(split.train));
}

}  // namespace finch::apps
