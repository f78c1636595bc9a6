// emit_c_check: the runtime's side of bench/emit_c_check.sh. Preprocesses a list of images exactly
// as finch_run and the sorter do (apps/runtime/image_input.h), writes them as one raw f32 record
// file (the input of the emitted program's NAME_main), runs the program on each image alone
// (batch 1, 1 thread, optimized kernels) and writes its raw outputs, then times batch-1 runs of
// the first image.
//   emit_c_check PROGRAM.finch LIST.txt RECORDS.f32 OUTPUTS.bin [--bench N]
// LIST.txt: one image path per line (PNG/JPEG/BMP/PGM/PPM).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "apps/lib/user_errors.h"
#include "apps/runtime/image_input.h"
#include "bench/emit_c_check_timing.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace {

using namespace finch;

int run(int argc, char** argv) {
  if (argc != 5 && argc != 7)
    fail("usage: emit_c_check PROGRAM.finch LIST.txt RECORDS.f32 OUTPUTS.bin [--bench N]");
  int64_t bench = 0;
  if (argc == 7) {
    if (std::string(argv[5]) != "--bench") fail("emit_c_check: unknown option ", argv[5], " (expected --bench N)");
    try {
      bench = std::stoll(argv[6]);
    } catch (...) {
      bench = -1;
    }
    if (bench < 1 || bench > 1000000) fail("emit_c_check: expected --bench to be 1 to 1000000, got '", argv[6], "'");
  }
  set_num_threads(1);
  runtime::Program p(runtime::read_program(argv[1]), argv[1]);
  const apps::ImageInput in = apps::image_input_of(p.graph(), argv[1]);
  std::ifstream list(argv[2]);
  if (!list) fail("emit_c_check: cannot open the image list ", argv[2]);
  std::string records, outputs, line;
  Tensor first;
  int64_t n = 0;
  while (std::getline(list, line)) {
    if (line.empty()) continue;
    const Tensor x = apps::load_image(line, in).contiguous();
    if (!first.defined()) first = x;
    const Tensor y = p.run(x).contiguous();
    records.append(reinterpret_cast<const char*>(x.data<float>()), x.nbytes());
    outputs.append(static_cast<const char*>(y.raw_data()), y.nbytes());
    ++n;
  }
  if (n == 0) fail("emit_c_check: ", argv[2], " lists no image");
  write_file_atomically(argv[3], records);
  write_file_atomically(argv[4], outputs);
  std::printf("runtime: %lld images, %zu output bytes\n", static_cast<long long>(n), outputs.size());
  if (bench > 0) finch::bench::print_runtime_times(p, {first}, bench, argv[1], "image 0");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return finch::apps::run_with_user_errors("emit_c_check", [&] { return run(argc, argv); });
}
