// What `finch compress` does differently per model kind, found from --checkpoint: an image model
// (a train_cifar checkpoint), a BERT question-answering directory (train_squad's output) or a
// series/text model (train_series/train_text). The runner (compress_cmd.cc) is one for all: it
// checks that every step of the recipe applies to the kind before any work, runs each variant's
// steps through the kind's single-step commands, measures each variant on the kind's task metric
// and times every program side by side on the kind's batch-1 input.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/compress_cmd.h"
#include "apps/lib/compress_recipe.h"
#include "apps/lib/compress_report.h"
#include "framework/tensor.h"
#include "runtime/graph.h"

namespace finch::apps {

// BERT: a directory with a BERT config.json; series: a checkpoint recording a series/text model;
// anything else is an image checkpoint (its own loading names what is wrong with it).
ModelKind model_kind_of(const std::string& checkpoint);
// "image models", "BERT directories", "series and text models".
const char* kind_words(ModelKind k);

// Why step `st` does not apply to models of kind `k` (the tail of a sentence), or "".
std::string step_refusal(ModelKind k, const RecipeStep& st);
// The first step of `r` that does not apply to `k`, as one sentence naming the recipe, the variant,
// the step and the kind; nothing when every step applies.
void check_recipe_applies(const Recipe& r, ModelKind k);

// What one step gets: the model it starts from, its folder, the uncompressed model (the teacher).
struct StepEnv {
  std::string input;    // a checkpoint file, or a BERT directory
  std::string dir;      // the step's folder (summary.json, the model, a program)
  std::string teacher;  // the uncompressed model
  const std::string& command_line;
};

class CompressModel {
 public:
  virtual ~CompressModel() = default;
  // The task metric: its key in report.json and variant.json ("test_accuracy", "heldout_f1"; a
  // fraction, higher is better: seed 004's A) and its words in the tables.
  virtual std::string metric_key() const = 0;
  virtual std::string metric_name() const = 0;
  // report.json's header fields of this kind (model, dataset, test set size, data flags).
  virtual nlohmann::json header() const = 0;
  // What decides a variant's numbers besides its steps and checkpoint (data, limits, fine-tuning
  // options): a finished variant is reused only when these are the same.
  virtual nlohmann::json settings() const = 0;
  // The model a step or variant folder holds once written (the file, or the folder for BERT).
  virtual std::string model_in(const std::string& dir) const = 0;
  // Runs a prune, lowrank, distill, qat or ptq step; returns the float model the next step takes
  // (qat/ptq: the input, with their program written as e.dir/model.finch).
  virtual std::string run_step(const RecipeStep& st, const StepEnv& e) = 0;
  // Writes `program` at precision c.precision from e.input; `quantized` is the program a qat/ptq
  // step wrote just before ("" when none).
  virtual void compile(const CompileStep& c, const StepEnv& e, const std::string& quantized,
                       const std::string& program) = 0;
  // Copies the variant's float model `input` into its folder `dir`.
  virtual void keep_model(const std::string& input, const std::string& dir) const = 0;
  // The parameters and checkpoint bytes of dir's model, and its program's (dir/model.finch) task
  // metric: row.accuracy, plus any further metrics in row.metrics.
  virtual void measure(const std::string& dir, VariantRow& row) = 0;
  // The batch-1 input of the program `g` (one test sample), for the side-by-side timing.
  virtual std::vector<Tensor> latency_input(const runtime::Graph& g) = 0;
  // Why step `st`, which the kind takes, does not fit this model's structure (the tail of a
  // sentence), or "": a series model with LSTM/GRU layers has no per-tensor int8 (their kernels take
  // weights per row), one without them has no QAT. Such a variant is refused (its row says why);
  // the others run.
  virtual std::string structure_refusal(const RecipeStep&) const { return ""; }
};

// The first step of variant `v` that does not fit `m`'s structure, as one sentence naming the
// recipe, the variant and the step (its 1-based index in `step`); "" when every step fits.
std::string variant_refusal(const Recipe& r, const RecipeVariant& v, const CompressModel& m, int64_t& step);

// Loads the model kind's data (and checks the flags that belong to another kind) once, for every
// variant. `o.train` is prepared as the kind's commands take it.
std::unique_ptr<CompressModel> make_image_compress_model(const CompressOptions& o);
std::unique_ptr<CompressModel> make_bert_compress_model(const CompressOptions& o);
std::unique_ptr<CompressModel> make_series_compress_model(const CompressOptions& o);

}  // namespace finch::apps
