// BERT encoder forward latency (eval, no autograd) of models::BertForQuestionAnswering with
// random weights: the finch side of bench/bert_forward_vs_torch.py (issue 17's speed shapes:
// BERT-base 12 × 768 and BERT-mini 4 × 256, batch 1, sequence 384, 1 and 2 threads).
// A plain program, not a Google Benchmark, so the driver can alternate it with PyTorch round by
// round.
//
// Usage: bert_forward [--layers L] [--hidden H] [--heads NH] [--intermediate I] [--seq S]
//                     [--batch B] [--threads N] [--iters K] [--warmup W]
// (--intermediate defaults to 4·H and --heads to H / 64.) Prints one JSON line:
// {"impl": "finch", "ms": median, "ms_min": ..., ...}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/bert.h"

using namespace finch;

namespace {
int64_t parse_int(const char* flag, const char* v, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (!v[0] || *end || x < lo || x > hi)
    fail("bert_forward: expected ", flag, " to be an integer in [", lo, ", ", hi, "], found '", v, "'");
  return x;
}
}  // namespace

int main(int argc, char** argv) try {
  int64_t L = 12, H = 768, NH = 0, I = 0, S = 384, B = 1, threads = 1, iters = 10, warmup = 2;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) fail("bert_forward: ", a, " needs a value");
      return argv[++i];
    };
    if (a == "--layers") L = parse_int("--layers", next(), 1, 256);
    else if (a == "--hidden") H = parse_int("--hidden", next(), 1, 16384);
    else if (a == "--heads") NH = parse_int("--heads", next(), 1, 16384);
    else if (a == "--intermediate") I = parse_int("--intermediate", next(), 1, 65536);
    else if (a == "--seq") S = parse_int("--seq", next(), 1, 4096);
    else if (a == "--batch") B = parse_int("--batch", next(), 1, 4096);
    else if (a == "--threads") threads = parse_int("--threads", next(), 1, 1024);
    else if (a == "--iters") iters = parse_int("--iters", next(), 1, 100000);
    else if (a == "--warmup") warmup = parse_int("--warmup", next(), 0, 100000);
    else if (a == "--help") {
      std::printf("usage: bert_forward [--layers L] [--hidden H] [--heads NH] [--intermediate I] "
                  "[--seq S] [--batch B] [--threads N] [--iters K] [--warmup W]\n");
      return 0;
    } else {
      fail("bert_forward: unknown option '", a, "' (see --help)");
    }
  }
  models::BertConfig c;
  c.num_hidden_layers = L;
  c.hidden_size = H;
  c.num_attention_heads = NH ? NH : std::max<int64_t>(1, H / 64);
  c.intermediate_size = I ? I : 4 * H;
  c.max_position_embeddings = std::max<int64_t>(512, S);
  c.validate("bert_forward");
  set_num_threads(int(threads));
  models::BertForQuestionAnswering model(c);
  model.eval();
  Generator gen(7);
  std::vector<int64_t> ids(size_t(B * S));
  for (auto& v : ids) v = int64_t(gen.below(uint64_t(c.vocab_size)));
  const Tensor input_ids = from_vector(ids, {B, S});
  const Tensor mask = ones({B, S}, DType::i64);
  const Tensor types = zeros({B, S}, DType::i64);
  NoGradGuard ng;
  std::vector<double> ms;
  for (int64_t it = 0; it < warmup + iters; ++it) {
    const auto t0 = std::chrono::steady_clock::now();
    const models::BertQAOutputs r = model.forward(input_ids, mask, types);
    const double dt = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!r.start_logits.defined()) fail("bert_forward: no output");
    if (it >= warmup) ms.push_back(dt);
  }
  std::sort(ms.begin(), ms.end());
  std::printf("{\"impl\": \"finch\", \"layers\": %lld, \"hidden\": %lld, \"seq\": %lld, \"batch\": %lld, "
              "\"threads\": %lld, \"ms\": %.3f, \"ms_min\": %.3f}\n",
              (long long)L, (long long)H, (long long)S, (long long)B, (long long)threads, ms[ms.size() / 2], ms[0]);
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
