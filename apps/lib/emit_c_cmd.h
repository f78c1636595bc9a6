// `finch emit-c PROGRAM.finch --out DIR [--name NAME] [--batch N]`: the program as a self-contained C source
// (compile/emit_c.h): DIR/NAME.c, DIR/NAME.h and the command-line driver DIR/NAME_main.c.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace finch::apps {

struct EmitCOptions {
  std::string program;  // the .finch file
  std::string out;      // the folder to write
  std::string name;     // the C prefix (default: the program file's name made an identifier)
  int64_t batch = 0;         // re-declare the program for this batch (compile::with_batch) ...
  bool batch_given = false;  // ... when --batch was given (any value: 0 or less is one sentence)
};

void add_emit_c_options(CLI::App& app, EmitCOptions& o);
int run_emit_c(const EmitCOptions& o);

}  // namespace finch::apps
