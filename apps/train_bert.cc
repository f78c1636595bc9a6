// train_bert: masked-language-model pretraining of a BERT encoder on plain text, written as a
// Hugging Face directory that train_squad --init and infer_squad --model read.
#include <CLI/CLI.hpp>

#include <iostream>

#include "apps/lib/bert_pretrain.h"
#include "apps/lib/distributed.h"
#include "apps/lib/user_errors.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Pretrain BERT with the masked-language-model objective (15 % of tokens predicted: 80 % [MASK],\n"
      "10 % random, 10 % kept) on text files, folders of .txt files and SQuAD contexts, packed into\n"
      "--seq-len sequences. AdamW, linear warm-up and decay, clipping, accumulation. Writes config.json,\n"
      "vocab.txt, model.safetensors, checkpoint.safetensors, metrics.csv, summary.json and report.html.\n"
      "  train_bert --vocab vocab.txt --text aclImdb/train --squad-contexts dev-v1.1.json --preset mini \\\n"
      "             --steps 2000 --out runs/bert-mini"};
  finch::apps::BertPretrainOptions o;
  finch::apps::add_bert_pretrain_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "train_bert: " << e.what() << " (see train_bert --help)\n";
    return e.get_exit_code();
  }
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // Under mpirun a failed rank ends the whole job (apps/lib/distributed.h).
  return finch::apps::end_job_on_error(finch::apps::run_with_user_errors("train_bert",
                                           [&] { return finch::apps::run_bert_pretraining(o, command_line); }));
}
