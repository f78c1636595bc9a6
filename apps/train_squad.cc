// train_squad: fine-tunes BERT for SQuAD question answering on a split of a SQuAD file by article,
// scores EM/F1 on the held-out articles and writes a Hugging Face directory for infer_squad.
#include <CLI/CLI.hpp>

#include <iostream>

#include "apps/lib/squad_train.h"
#include "apps/lib/distributed.h"
#include "apps/lib/user_errors.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Fine-tune BERT for SQuAD question answering (start/end cross-entropy) on the articles of a SQuAD\n"
      "file chosen by --split-by-article, and report EM/F1 on the held-out articles. AdamW, linear warm-up\n"
      "and decay, clipping, accumulation. Writes config.json, vocab.txt, model.safetensors (infer_squad\n"
      "--model takes the directory), predictions.json, checkpoint.safetensors, metrics.csv, summary.json\n"
      "and report.html.\n"
      "  train_squad --data dev-v1.1.json --init runs/bert-mini --split-by-article 0.8 --out runs/squad"};
  finch::apps::SquadTrainOptions o;
  finch::apps::add_squad_train_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "train_squad: " << e.what() << " (see train_squad --help)\n";
    return e.get_exit_code();
  }
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // Under mpirun a failed rank ends the whole job (apps/lib/distributed.h).
  return finch::apps::end_job_on_error(finch::apps::run_with_user_errors("train_squad",
                                           [&] { return finch::apps::run_squad_training(o, command_line); }));
}
