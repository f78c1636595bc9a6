// train_series: trains a time-series model (FCN, ResNet, LSTM/GRU, DeepConvLSTM, HAR and ECG
// CNNs, an LSTM forecaster) on UCR/UEA .ts, UCR text or CSV files and leaves train_cifar's
// result files.
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
#include "models/series_spec.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Train a time-series classifier or forecaster on UCR/UEA .ts, UCR .txt/.tsv or CSV files.\n"
      "Writes model.safetensors (its metadata rebuilds the model and the input preparation), best.safetensors,\n"
      "checkpoint.safetensors, metrics.csv, summary.json and report.html into --out. The best epoch is chosen\n"
      "on --val-fraction (default 0.1) of --train, never on the test set; model.safetensors holds its weights\n"
      "(--keep best). Examples:\n"
      "  train_series --train GunPoint_TRAIN.ts --test GunPoint_TEST.ts --model fcn --out runs/gunpoint\n"
      "  train_series --train ECG5000_TRAIN.txt --val-split 0.2 --model resnet1d --out runs/ecg5000\n"
      "  train_series --train ETTh1.csv --target OT --window 96 --horizon 24 --model lstm_forecaster --out runs/etth1"};
  finch::apps::SeriesOptions o;
  std::vector<std::string> models;
  for (const std::string& m : finch::models::series_model_names())
    if (!finch::models::is_text_model(m)) models.push_back(m);
  finch::apps::add_sequence_train_options(
      app, o, models,
      "network: fcn, resnet1d (Wang et al. 2017), lstm, gru, bilstm, deepconvlstm, har_cnn, ecg_cnn, ecg_resnet, "
      "lstm_forecaster (CSV forecasting)");
  finch::apps::add_series_data_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "train_series: " << e.what() << " (see train_series --help)\n";
    return e.get_exit_code();
  }
  o.model_given = app.count("--model") > 0;
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // Under mpirun a failed rank ends the whole job (apps/lib/distributed.h).
  return finch::apps::end_job_on_error(finch::apps::run_with_user_errors("train_series", [&] {
    finch::apps::finalize_sequence_options(o);
    finch::set_num_threads(o.threads);
    finch::apps::SequenceData d = finch::apps::load_series_data(o);
    if (o.eval_only) return finch::apps::run_sequence_eval("train_series", o, d, command_line);
    if (o.qat) return finch::apps::run_sequence_qat("train_series", o, d, command_line, false);
    finch::apps::hold_out_validation(d, o);  // chooses the best epoch (apps/lib/model_selection.h)
    return finch::apps::run_sequence_training("train_series", o, d, command_line, false);
  }));
}
