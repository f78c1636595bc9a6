// `finch compress --checkpoint M.safetensors --recipe RECIPE.json|NAME --dataset D --out DIR`:
// runs every variant of a recipe (compress_recipe.h) by composing the single-step commands
// (finch prune, finch lowrank, distillation, train_cifar --qat, finch quantize, finch compile),
// each step starting from the previous one's model, and writes DIR/<variant>/ (model.safetensors,
// model.finch, steps/, variant.json) plus DIR/report.json and DIR/report.html (compress_report.h).
// A variant is built in DIR/<variant>.partial and renamed when complete, so an interrupted or
// failing run leaves the finished variants intact, and a rerun reuses them. Image models, BERT
// question-answering directories and series/text models go through the same runner: what differs
// per kind (the steps that apply, the data, the metric, the programs' inputs) is compress_model.h.
#pragma once

#include <cstdint>
#include <string>

#include "apps/lib/bert_compress_cmd.h"
#include "apps/lib/series_options.h"
#include "apps/lib/train_options.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct CompressOptions {
  TrainOptions train;  // model, checkpoint, dataset, data, out, batch size, seed, limits, threads
  std::string recipe;
  std::string weights = "1,1,1";  // wS,wT,wA of seed 004's criterion
  bool seed_sign = false;          // + wA·ΔA as the seed printed it
  int64_t latency_rounds = 5, latency_iters = 20;
  int latency_threads = -1;        // < 0: --threads
  bool lr_given = false;           // --lr given (BERT and series steps: else their commands' default)
  // A BERT directory's SQuAD flags and a series/text checkpoint's data flags, as finch prune takes
  // them (the model kind is found from --checkpoint: compress_model.h).
  BertSquadFlags bert;
  SeriesOptions series;
};

void add_compress_options(CLI::App& app, CompressOptions& o);
// After parsing: which flags were given (--model, --width, --lr, --batch-size), and one sentence
// for a kind's data flags given with another kind's checkpoint.
void check_compress_flags(const CLI::App& app, CompressOptions& o);
int run_compress(CompressOptions o, const std::string& command_line);

}  // namespace finch::apps
