// LSTM/GRU training throughput (forward + backward, sequences/s) of nn::LSTM / nn::GRU: the
// finch side of bench/lstm_train_vs_torch.py (issue 16's speed target: batch 64, 100 steps,
// hidden 128). A plain program, not a Google Benchmark, so the driver can alternate it with
// the PyTorch peers round by round.
//
// Usage: lstm_train [--mode lstm|gru] [--threads N] [--batch B] [--steps T] [--input IN]
//                   [--hidden H] [--layers L] [--bidirectional] [--iters K] [--warmup W]
// Prints one JSON line: {"seq_per_s": ..., "ms_per_iter": ...} (the median iteration).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/rnn.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {
int64_t parse_int(const char* flag, const char* v, int64_t lo) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (!v[0] || *end || x < lo)
    fail("lstm_train: expected ", flag, " to be an integer >= ", lo, ", found '", v, "'");
  return x;
}
}  // namespace

int main(int argc, char** argv) try {
  std::string mode = "lstm";
  int64_t threads = 1, B = 64, T = 100, IN = 32, H = 128, L = 1, iters = 20, warmup = 3;
  bool bi = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) fail("lstm_train: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--mode") mode = next();
    else if (a == "--threads") threads = parse_int("--threads", next(), 1);
    else if (a == "--batch") B = parse_int("--batch", next(), 1);
    else if (a == "--steps") T = parse_int("--steps", next(), 1);
    else if (a == "--input") IN = parse_int("--input", next(), 1);
    else if (a == "--hidden") H = parse_int("--hidden", next(), 1);
    else if (a == "--layers") L = parse_int("--layers", next(), 1);
    else if (a == "--iters") iters = parse_int("--iters", next(), 1);
    else if (a == "--warmup") warmup = parse_int("--warmup", next(), 0);
    else if (a == "--bidirectional") bi = true;
    else if (a == "--help") {
      std::printf("usage: lstm_train [--mode lstm|gru] [--threads N] [--batch B] [--steps T] "
                  "[--input IN] [--hidden H] [--layers L] [--bidirectional] [--iters K] [--warmup W]\n");
      return 0;
    } else fail("lstm_train: unknown option '", a, "' (see --help)");
  }
  if (mode != "lstm" && mode != "gru") fail("lstm_train: expected --mode lstm or gru, found '", mode, "'");
  set_num_threads(int(threads));
  Generator g(1);
  const nn::RnnOptions opt{.num_layers = L, .bidirectional = bi};
  std::shared_ptr<nn::RNNBase> m;
  if (mode == "lstm") m = std::make_shared<nn::LSTM>(IN, H, opt, &g);
  else m = std::make_shared<nn::GRU>(IN, H, opt, &g);
  const Tensor x = randn({T, B, IN}, g);
  const Tensor gout = randn({T, B, (bi ? 2 : 1) * H}, g);
  std::vector<double> ms;
  for (int64_t it = 0; it < warmup + iters; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    m->zero_grad();
    const nn::RnnOutput r = m->forward_seq(x);
    backward(r.output, gout);
    const auto t1 = std::chrono::steady_clock::now();
    if (it >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double med = ms[ms.size() / 2];
  std::printf("{\"impl\": \"finch\", \"mode\": \"%s\", \"threads\": %lld, \"ms_per_iter\": %.3f, "
              "\"seq_per_s\": %.1f}\n",
              mode.c_str(), (long long)threads, med, double(B) * 1000.0 / med);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
