// emit_c_check_series: the runtime's side of bench/emit_c_check_series.sh. Reads a series or text
// program's test set (static or dynamic int8) exactly as `finch run` does (the data flags and
// normalization the program recorded, each series or review zero padded to the program's steps
// with its length), writes the series (f32) or token ids (i64) as one raw record file and the
// lengths as one raw i64 file (the inputs of the emitted program's NAME_main), runs the program
// on each record alone (batch 1, 1 thread, optimized kernels) and writes its raw outputs;
// --bench N then times batch-1 runs of the first record (and 20 on the runtime's scalar
// reference kernels); --limit N takes the first N test records; --data DIR reads a text
// program's reviews from DIR instead of the folder it recorded (a relative path, as written).
//   emit_c_check_series PROGRAM.finch SERIES.bin LENGTHS.i64 OUTPUTS.bin [--bench N] [--limit N] [--data DIR]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#include "apps/lib/sequence_program.h"
#include "apps/lib/series_simulation.h"
#include "apps/lib/user_errors.h"
#include "bench/emit_c_check_timing.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace {

using namespace finch;

int64_t count_flag(const std::string& flag, const char* v) {
  int64_t n = -1;
  try {
    size_t used = 0;
    n = std::stoll(v, &used);
    if (used != std::string(v).size()) n = -1;
  } catch (...) {
  }
  if (n < 1 || n > 1000000) fail("emit_c_check_series: expected ", flag, " to be 1 to 1000000, got '", v, "'");
  return n;
}

int run(int argc, char** argv) {
  if (argc < 5 || argc % 2 == 0)
    fail("usage: emit_c_check_series PROGRAM.finch SERIES.bin LENGTHS.i64 OUTPUTS.bin [--bench N] [--limit N] [--data DIR]");
  int64_t bench = 0, limit = 0;
  std::string data_override;
  for (int a = 5; a + 1 < argc; a += 2) {
    const std::string f = argv[a];
    if (f == "--bench") bench = count_flag(f, argv[a + 1]);
    else if (f == "--limit") limit = count_flag(f, argv[a + 1]);
    else if (f == "--data") data_override = argv[a + 1];
    else fail("emit_c_check_series: unknown option ", f, " (expected --bench N, --limit N or --data DIR)");
  }
  set_num_threads(1);
  const std::string what = argv[1];
  runtime::Program p(runtime::read_program(what), what);
  const nlohmann::json& meta = p.graph().meta;
  std::map<std::string, std::string> recorded;
  try {
    recorded = meta.at("sequence").get<std::map<std::string, std::string>>();
  } catch (const std::exception&) {
    fail(what, ": expected meta.sequence to hold the checkpoint's metadata (a series program of finch quantize)");
  }
  if (!meta.contains("sequence_data") || !meta["sequence_data"].is_object()) fail(what, " records no data (meta.sequence_data)");
  apps::SeriesOptions s;
  std::string data_dir = apps::recorded_sequence_data(meta["sequence_data"], s);
  if (!data_override.empty()) {
    if (data_dir.empty()) fail(what, ": --data names a review folder, but the program records series data, not text");
    data_dir = data_override;
  }
  s.checkpoint = what;
  const apps::SequenceData d = apps::load_sequence_data(s, recorded, data_dir, what);
  const int64_t T = meta.contains("steps") && meta["steps"].is_number_integer() ? meta["steps"].get<int64_t>() : 0;
  if (T < 1) fail(what, ": expected meta.steps >= 1 (the program's step count), found ", T);
  const int64_t n = limit > 0 ? std::min(limit, d.test->size()) : d.test->size();
  Generator g(0);
  std::string series, lengths, outputs;
  std::vector<Tensor> first;
  for (int64_t i = 0; i < n; ++i) {
    const auto [x, len] = apps::padded_to(d.test->get(i, g).image.unsqueeze(0), Tensor(), T);
    const Tensor xc = x.contiguous(), lc = len.contiguous();
    if (first.empty()) first = {xc, lc};
    const Tensor y = p.run({xc, lc})[0].contiguous();
    series.append(static_cast<const char*>(xc.raw_data()), xc.nbytes());
    lengths.append(static_cast<const char*>(lc.raw_data()), lc.nbytes());
    outputs.append(static_cast<const char*>(y.raw_data()), y.nbytes());
  }
  if (n == 0) fail(what, ": the test set is empty");
  write_file_atomically(argv[2], series);
  write_file_atomically(argv[3], lengths);
  write_file_atomically(argv[4], outputs);
  std::printf("runtime: %lld test records of %lld steps, %zu output bytes\n", static_cast<long long>(n),
              static_cast<long long>(T), outputs.size());
  if (bench > 0) finch::bench::print_runtime_times(p, first, bench, what, "series 0");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return finch::apps::run_with_user_errors("emit_c_check_series", [&] { return run(argc, argv); });
}
