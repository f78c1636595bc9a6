// finch_run: the deployable side of finch. Loads a .finch program and classifies images with it,
// linking only the runtime (runtime → kernels → ops → framework), never autograd,
// models or the training code; its stripped size is what a device has to carry.
//
//   finch_run model.finch                          program summary (inputs, outputs, classes)
//   finch_run model.finch a.pgm b.png c.jpg ...    one line per image: file, class, score
//   finch_run model.finch --raw batch.f32          a raw little-endian f32 tensor [N, C, H, W]
//                                                  that is already the network's input
//   --logits FILE.csv   also write every output row (written to a temporary file, then renamed)
//   --bench N           time N batch-1 runs of the first image, print the median in ms
//   --threads N         compute threads (default: all cores)
//   --max-memory BYTES  activation memory one image may need (default FINCH_MAX_ACTIVATION_BYTES
//                       or 4 GiB): a program or batch over it is refused before allocating
//
// Images are binary PGM (P5, 1 channel) or PPM (P6, 3 channels) with maxval 255 at the size the
// program was built for, or PNG/JPEG/BMP at any size (resized bilinearly). They are preprocessed
// as in training with the mean/std the program carries in its meta (image_input.h, shared with
// the sorter).
//
// Argument parsing is by hand on purpose: CLI11 would be most of this file's binary size.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "apps/lib/user_errors.h"
#include "apps/runtime/cli_args.h"
#include "apps/runtime/image_input.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace {

using namespace finch;
using namespace finch::apps;

struct Args {
  std::string program, raw, logits;
  std::vector<std::string> images;
  int64_t bench = 0, threads = 0, max_memory = 0;
};

int64_t parse_count(const std::string& flag, const std::string& s) {
  return parse_int_flag(flag, s, 0, INT64_MAX, "a non-negative integer");
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&] { return flag_value(argc, argv, i); };
    if (s == "--raw") a.raw = value();
    else if (s == "--logits") a.logits = value();
    else if (s == "--bench") a.bench = parse_count(s, value());
    else if (s == "--threads") a.threads = parse_count(s, value());
    else if (s == "--max-memory") {
      a.max_memory = parse_count(s, value());
      if (a.max_memory < 1) fail(s, ": expected a positive number of bytes, found 0");
    }
    else if (s.rfind("--", 0) == 0)
      fail("unknown option ", s, " (expected --raw, --logits, --bench, --threads or --max-memory)");
    else if (a.program.empty()) a.program = s;
    else a.images.push_back(s);
  }
  if (a.program.empty()) fail("usage: finch_run MODEL.finch [IMAGE.pgm|.ppm|.png|.jpg|.bmp ...] [--raw FILE.f32] "
                              "[--logits FILE.csv] [--bench N] [--threads N] [--max-memory BYTES]");
  return a;
}

Tensor read_raw(const std::string& path, const Shape& in) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open the raw tensor");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const int64_t per = in[1] * in[2] * in[3] * 4;
  if (bytes.empty() || int64_t(bytes.size()) % per != 0)
    fail(path, ": expected a multiple of ", per, " bytes (f32 images of ", in[1], "x", in[2], "x", in[3], "), found ",
         bytes.size());
  Tensor x = empty({int64_t(bytes.size()) / per, in[1], in[2], in[3]}, DType::f32);
  std::memcpy(x.data<float>(), bytes.data(), bytes.size());
  return x;
}

void print_summary(const runtime::Program& p, const std::string& path) {
  const runtime::Graph& g = p.graph();
  std::printf("%s: %s %s program, %zu nodes, activation arena %.1f KiB\n", path.c_str(),
              g.meta.value("model", "?").c_str(), g.meta.value("precision", "?").c_str(), g.nodes.size(),
              p.memory().arena_bytes / 1024.0);
  for (int64_t i : g.inputs) std::printf("  input  %s %s\n", g.values[size_t(i)].name.c_str(), shape_str(g.values[size_t(i)].shape).c_str());
  for (int64_t i : g.outputs) std::printf("  output %s %s\n", g.values[size_t(i)].name.c_str(), shape_str(g.values[size_t(i)].shape).c_str());
}

int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (a.threads > 0) set_num_threads(int(a.threads));
  runtime::ProgramOptions po;
  po.max_activation_bytes = a.max_memory;  // 0: FINCH_MAX_ACTIVATION_BYTES or the default
  runtime::Program p(runtime::read_program(a.program), a.program, po);
  const runtime::Graph& g = p.graph();
  const ImageInput in = image_input_of(g, a.program);
  if (a.images.empty() && a.raw.empty()) {
    print_summary(p, a.program);
    return 0;
  }
  std::vector<std::string> names = a.images;
  std::vector<Tensor> batch;
  for (const auto& path : a.images) batch.push_back(load_image(path, in));
  if (!a.raw.empty()) {
    const Tensor r = read_raw(a.raw, in.shape);
    for (int64_t i = 0; i < r.shape()[0]; ++i) {
      batch.push_back(r.narrow(0, i, 1).contiguous());
      names.push_back(a.raw + "[" + std::to_string(i) + "]");
    }
  }
  std::ostringstream csv;
  for (size_t i = 0; i < batch.size(); ++i) {
    const Tensor y = p.run(batch[i]).to(DType::f32).contiguous();
    const float* v = y.data<float>();
    const int64_t n = y.numel();
    const Decision d = decide(v, n, in);
    std::printf("%s\t%lld\t%s\t%.6g\n", names[i].c_str(), static_cast<long long>(d.index), d.name.c_str(), d.score);
    csv << names[i];
    for (int64_t k = 0; k < n; ++k) csv << ',' << v[k];
    csv << '\n';
  }
  if (!a.logits.empty()) write_file_atomically(a.logits, csv.str());
  if (a.bench > 0) {
    std::vector<double> ms;
    for (int64_t r = 0; r < a.bench; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      p.run(batch[0]);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    std::printf("batch-1 latency: median %.3f ms over %lld runs, %d threads\n", ms[ms.size() / 2],
                static_cast<long long>(a.bench), get_num_threads());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // One line for every error: a finch::Error's sentence, out of memory, or a named internal error.
  return finch::apps::run_with_user_errors("finch_run", [&] { return run(argc, argv); });
}
