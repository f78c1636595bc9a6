// train_cifar: trains (or evaluates) a model-zoo CNN on CIFAR-10/100, Fashion-MNIST or an image
// folder and leaves weights, a resumable checkpoint, metrics, a summary and an HTML report.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "apps/lib/distributed.h"
#include "apps/lib/run.h"
#include "apps/lib/train_options.h"
#include "apps/lib/user_errors.h"
#include "framework/error.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Train a CNN from the finch model zoo on CIFAR-10, CIFAR-100, Fashion-MNIST or an image folder.\n"
      "Writes model.safetensors, best.safetensors, checkpoint.safetensors, metrics.csv, summary.json\n"
      "and report.html into --out. Example:\n"
      "  train_cifar --model lenet5 --dataset fashion-mnist --data /usr/share/datasets/fashion-mnist"};
  finch::apps::TrainOptions o;
  finch::apps::add_train_options(app, o);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    // One sentence and a pointer to --help instead of CLI11's full usage dump.
    std::cerr << "train_cifar: " << e.what() << " (see train_cifar --help)\n";
    return e.get_exit_code();
  }
  o.model_given = app.count("--model") > 0;
  o.width_given = app.count("--width") > 0;
  o.stem_given = app.count("--stem") > 0;
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  // Every error is one line: the sentence of a finch::Error, or a named internal error (exit 2).
  // Under mpirun a failed rank ends the whole job (apps/lib/distributed.h).
  return finch::apps::end_job_on_error(finch::apps::run_with_user_errors(
      "train_cifar", [&] { return finch::apps::run_train_cifar(o, command_line); }));
}
