// The shared pieces of finch's series commands (series_simulation.h).
#include "apps/lib/series_simulation.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "apps/lib/sequence_program.h"
#include "autograd/nn/embedding.h"
#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "framework/error.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;

// A word vocabulary is rebuilt from the training reviews (as train_text does, deterministically)
// into a scratch folder that is removed afterwards.
class ScratchDir {
 public:
  ScratchDir() {
    std::string t = (fs::temp_directory_path() / "finch-vocab-XXXXXX").string();
    if (!mkdtemp(t.data())) fail("could not create a scratch folder under ", fs::temp_directory_path().string());
    path_ = t;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

bool is_text_metadata(const std::map<std::string, std::string>& meta) {
  const auto it = meta.find("data.format");
  return it != meta.end() && it->second == "text";
}

// The data as the checkpoint's training run prepared it; `what` names the checkpoint.
SequenceData load_sequence_data(SeriesOptions& s, const std::map<std::string, std::string>& meta,
                                const std::string& data_dir, const std::string& what) {
  const std::string model = meta.count("model") ? meta.at("model") : "a series model";
  if (is_text_metadata(meta)) {
    if (data_dir.empty())
      fail(what, " is a text model (", model, "); give its review folder with --data DIR, as train_text took it");
    if (!s.train_file.empty()) fail(what, " is a text model (", model, "); it takes --data DIR, not --train FILE");
    s.data_dir = data_dir;
    ScratchDir scratch;
    return load_text_data(s, scratch.path());
  }
  if (!data_dir.empty())
    fail(what, " is a series model (", model,
         "); it takes --train FILE [--test FILE], not --data (that is for "
         "text models and image datasets)");
  if (s.train_file.empty())
    fail(what, " is a series model (", model,
         "); give its data with --train FILE and --test FILE (or --val-split), "
         "as train_series took it");
  return load_series_data(s);
}

std::string recorded_sequence_data(const nlohmann::json& sd, SeriesOptions& s) try {
  if (!sd.is_object()) fail("expected an object, found ", sd.type_name());
  s.train_file = sd.value("train", ""), s.test_file = sd.value("test", ""), s.val_split = sd.value("val_split", 0.0);
  s.missing = sd.value("missing", s.missing), s.normalize = sd.value("normalize", s.normalize);
  s.target = sd.value("target", s.target), s.inputs = sd.value("inputs", s.inputs);
  s.window = sd.value("window", s.window), s.horizon = sd.value("horizon", s.horizon);
  s.vocab_size = sd.value("vocab_size", s.vocab_size), s.max_len = sd.value("max_len", s.max_len);
  s.truncate = sd.value("truncate", s.truncate), s.tokenizer = sd.value("tokenizer", s.tokenizer);
  s.spm_model = sd.value("spm_model", s.spm_model);
  return sd.value("data", "");
} catch (const nlohmann::json::exception& e) {  // a hostile program file: one sentence
  fail("the program's meta.sequence_data has a field of the wrong type (", e.what(), ")");
}

nlohmann::json sequence_data_json(const SeriesOptions& s) {
  return {{"train", s.train_file},    {"test", s.test_file},        {"data", s.data_dir},
          {"val_split", s.val_split}, {"missing", s.missing},       {"normalize", s.normalize},
          {"target", s.target},       {"inputs", s.inputs},         {"window", s.window},
          {"horizon", s.horizon},     {"vocab_size", s.vocab_size}, {"max_len", s.max_len},
          {"truncate", s.truncate},   {"tokenizer", s.tokenizer},   {"spm_model", s.spm_model}};
}

double metric_of(const train::EvalResult& r) { return r.regression ? r.mse : r.accuracy; }

data::Batch first_batch(const std::shared_ptr<const data::Dataset>& ds, int64_t batch) {
  data::DataLoaderOptions lo;
  lo.batch_size = batch;
  data::DataLoader l(ds, lo);
  l.start_epoch(0);
  data::Batch b;
  if (!l.next(b)) fail("finch: the data set is empty");
  return b;
}

Simulation prepare_simulation(nn::Module& model, const Tensor& example, const quant::PrepareOptions& given,
                              int64_t rounding_steps) {
  Simulation s;
  model.eval();
  // Embeddings are quantized per row by QatEmbeddings (the program's qembedding), not by prepare.
  quant::PrepareOptions po = given;
  for (auto& [path, m] : model.named_modules())
    if (dynamic_cast<nn::Embedding*>(m) && !std::count(po.skip.begin(), po.skip.end(), path)) po.skip.push_back(path);
  s.q = quant::prepare(model, example, po, false);
  quant::QatLstmOptions min_max;
  min_max.averaging = 0;  // post-training: min/max over the calibration batches
  s.grus = quant::prepare_qat_gru(model, min_max);
  min_max.rounding_steps = rounding_steps;
  s.lstms = quant::prepare_qat_lstm(model, min_max);
  for (const auto& l : s.lstms)
    if (std::count(po.skip.begin(), po.skip.end(), l->path()))
      fail("--skip ", l->path(), ": recurrent layers are always int8 in a static program (skip the convs or the head)");
  for (const auto& l : s.grus)
    if (std::count(po.skip.begin(), po.skip.end(), l->path()))
      fail("--skip ", l->path(), ": recurrent layers are always int8 in a static program (skip the convs or the head)");
  s.embeddings = std::make_unique<quant::QatEmbeddings>(model);
  return s;
}

void freeze(Simulation& s) {
  quant::convert(*s.q);
  s.q->enable_observers(false);
  for (auto& l : s.lstms) l->enable_observers(false), l->round_weights(), l->enable_fake_quant(true);
  for (auto& l : s.grus) l->enable_observers(false), l->enable_fake_quant(true);
}

runtime::Graph static_program(nn::Module& model, Simulation& s, const data::Batch& b, int64_t T) {
  const auto [x, len] = padded_to(b.images, b.lengths, T);
  runtime::Graph g = capture_sequence_model(model, x, len);
  compile::lower_quantized(g);
  quant::lower_qat_lstm(g, s.lstms);
  quant::lower_qat_gru(g, s.grus);
  if (compile::quantize_embeddings(g) != s.embeddings->count())
    fail("finch quantize: not every embedding became qembedding in the program");
  compile::fold_constants(g);
  compile::remove_dead(g);
  return g;
}

}  // namespace finch::apps
