// train_text: trains seed 002's IMDB LSTM or BiLSTM on review folders (aclImdb) with a word
// vocabulary or a sentencepiece model, and leaves train_cifar's result files.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "apps/lib/distributed.h"
#include "apps/lib/series_data.h"
#include "apps/lib/series_options.h"
#include "apps/lib/series_qat.h"
#include "apps/lib/series_train.h"
#include "apps/lib/trainer.h"
#include "apps/lib/user_errors.h"
#include "framework/parallel.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Train a text classifier (seed 002's IMDB LSTM or BiLSTM) on review folders such as aclImdb.\n"
      "Writes model.safetensors (its metadata names the vocabulary and max length), vocab.txt,\n"
      "best.safetensors, checkpoint.safetensors, metrics.csv, summary.json and report.html into --out.\n"
      "The best epoch is chosen on validation reviews (--data/val, or --val-fraction of train/), never on the\n"
      "test set; model.safetensors holds its weights (--keep best). Example:\n"
      "  train_text --data aclImdb --model imdb_lstm --out runs/imdb"};
  finch::apps::SeriesOptions o;
  finch::apps::add_sequence_train_options(
      app, o, {"imdb_lstm", "imdb_bilstm"},
      "network: imdb_lstm (Embedding 2000x64, LSTM 16, LSTM 16, Dense 1) or imdb_bilstm (Embedding 2000x30, "
      "BiLSTM 64+64, Dense 1)");
  finch::apps::add_text_data_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "train_text: " << e.what() << " (see train_text --help)\n";
    return e.get_exit_code();
  }
  o.model_given = app.count("--model") > 0;
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // Under mpirun a failed rank ends the whole job (apps/lib/distributed.h).
  return finch::apps::end_job_on_error(finch::apps::run_with_user_errors("train_text", [&] {
    finch::apps::finalize_sequence_options(o);
    finch::set_num_threads(o.threads);
    finch::apps::create_out_dir(o.out_dir);  // vocab.txt is written while the data is read
    const bool training = !o.eval_only && !o.qat;
    finch::apps::SequenceData d = finch::apps::load_text_data(o, o.out_dir, training && o.val_fraction < 0);
    if (o.eval_only) return finch::apps::run_sequence_eval("train_text", o, d, command_line);
    if (o.qat) return finch::apps::run_sequence_qat("train_text", o, d, command_line, false);
    finch::apps::hold_out_validation(d, o);  // chooses the best epoch (apps/lib/model_selection.h)
    return finch::apps::run_sequence_training("train_text", o, d, command_line, false);
  }));
}
