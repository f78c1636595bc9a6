// finch: the model-shrinking command line. `finch quantize` (post-training quantization with a
// side-by-side table); the compiler issue adds compile, run, inspect and verify.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "apps/lib/quantize_run.h"
#include "framework/error.h"

int main(int argc, char** argv) {
  CLI::App app{"finch: quantize trained models and compare them with fp32.\n"
               "  finch quantize --checkpoint out/resnet20/model.safetensors --dataset fashion-mnist "
               "--mode static --out resnet20-int8.safetensors"};
  app.require_subcommand(1);
  finch::apps::QuantizeOptions q;
  CLI::App* quantize = app.add_subcommand("quantize", "post-training quantization: static, dynamic or fp16");
  finch::apps::add_quantize_options(*quantize, q);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::cerr << "finch: " << e.what() << " (see finch --help)\n";
    return e.get_exit_code();
  }
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  try {
    if (quantize->parsed()) {
      q.data.model_given = quantize->count("--model") > 0;
      finch::apps::finalize_quantize_options(q);
      return finch::apps::run_quantize(q, command_line);
    }
  } catch (const finch::Error& e) {
    std::cerr << "finch: " << e.what() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "finch: " << e.what() << "\n";
  }
  return 1;
}
