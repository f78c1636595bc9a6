// `finch emit-c` (apps/lib/emit_c_cmd.h): reads the program, emits it, writes the three files
// (each to a temporary name, then renamed) and says how to build them.
#include "apps/lib/emit_c_cmd.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <filesystem>
#include <iostream>

#include "compile/emit_c.h"
#include "runtime/program_file.h"

namespace finch::apps {

void add_emit_c_options(CLI::App& app, EmitCOptions& o) {
  app.add_option("program", o.program, "the .finch program")->required();
  app.add_option("--out", o.out, "the folder to write NAME.c, NAME.h and NAME_main.c into (created if missing)")->required();
  app.add_option("--name", o.name, "the C prefix of the files and functions (NAME_run); default: the program's file name");
  app.add_option_function<int64_t>(
      "--batch", [&o](const int64_t& b) { o.batch = b, o.batch_given = true; },
      "emit for this batch instead of the program's declared one (a series program declares its calibration "
                 "batch; --batch 1 runs one sequence per call)");
}

int run_emit_c(const EmitCOptions& o) {
  std::string name = o.name;
  if (name.empty()) {  // "resnet20-int8.finch" -> "resnet20_int8"
    for (char c : std::filesystem::path(o.program).stem().string())
      name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) name = "p_" + name;
    if (name.size() > 64) name.resize(64);
  }
  runtime::Graph g = runtime::read_program(o.program);
  if (o.batch_given) g = compile::with_batch(g, o.batch, o.program);
  const compile::EmittedC e = compile::emit_c(g, name, o.program);
  compile::write_emitted_c(e, o.out);
  const std::string dir = (std::filesystem::path(o.out) / "").string();
  std::cout << "wrote " << dir << e.name << ".c (" << e.source.size() << " bytes: " << e.kernels.size() << " kernels, "
            << e.constant_bytes << " bytes of constants, a " << e.arena_bytes << "-byte arena and "
            << e.scratch_bytes << " bytes of scratch), " << dir << e.name
            << ".h and " << dir << e.name << "_main.c\n"
            << "build: cc -O2 -o " << e.name << " " << dir << e.name << ".c " << dir << e.name << "_main.c -lm\n";
  if (g.inputs.size() > 1) std::cout << "run: ./" << e.name << " INPUT.bin INPUT1.bin [--out OUTPUT.bin] (one file per program input; a series program: f32 series, then int64 lengths; a text program: int64 token ids, then int64 lengths)\n";
  return 0;
}

}  // namespace finch::apps
