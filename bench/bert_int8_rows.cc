// Dynamic int8 BERT programs, activations quantized per tensor (PyTorch's quantize_dynamic) vs
// per row (finch's per_row dq_linear), against the fp32 program of the same Hugging Face
// checkpoint on random token windows: the largest and mean |logit error| and how often the
// best start and end positions agree with fp32. Accuracy only (no timing).
//
// Usage: bert_int8_rows DIR [--windows N] [--seq S] [--pad P] [--seed K]
// (each window: S tokens, the last P of them padding; ids uniform over the vocabulary).
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "compile/bert_program.h"
#include "compile/dynamic_rnn.h"
#include "framework/error.h"
#include "framework/random.h"
#include "models/bert_io.h"
#include "runtime/executor.h"

using namespace finch;

namespace {

int64_t arg(int argc, char** argv, const char* flag, int64_t fallback, int64_t lo, int64_t hi) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::string(argv[i]) == flag) {
      char* end = nullptr;
      const long long v = std::strtoll(argv[i + 1], &end, 10);
      if (!argv[i + 1][0] || *end || v < lo || v > hi) fail(flag, " expects an integer in [", lo, ", ", hi, "], got '", argv[i + 1], "'");
      return v;
    }
  return fallback;
}

int64_t argmax(const float* x, int64_t n) {
  int64_t b = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[b]) b = i;
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc < 2) fail("usage: bert_int8_rows DIR [--windows N] [--seq S] [--pad P] [--seed K]");
    const int64_t N = arg(argc, argv, "--windows", 20, 1, 100000), S = arg(argc, argv, "--seq", 384, 2, 4096);
    const int64_t P = arg(argc, argv, "--pad", 100, 0, S - 1), seed = arg(argc, argv, "--seed", 1, 0, 1 << 30);
    auto model = models::load_bert_for_question_answering(argv[1]);
    model->eval();
    const models::BertConfig c = model->bert->config;
    compile::BertProgramSpec spec;
    spec.layers = c.num_hidden_layers, spec.heads = c.num_attention_heads, spec.layer_norm_eps = c.layer_norm_eps;
    spec.hidden_act = c.hidden_act, spec.max_seq_length = S;
    const runtime::Graph g = compile::bert_qa_program(*model, spec);
    model.reset();
    runtime::Program fp32(g, "fp32");
    std::vector<std::pair<std::string, runtime::Program>> q;
    for (bool per_row : {false, true}) {
      runtime::Graph h = g;
      compile::DynamicQuantOptions o;
      o.per_row_activations = per_row;
      compile::quantize_dynamic_graph(h, o);
      q.emplace_back(per_row ? "per-row" : "per-tensor", runtime::Program(std::move(h), "int8"));
    }
    Generator gen(uint64_t(seed) + 1);
    std::vector<double> max_err(2, 0), sum_err(2, 0);
    std::vector<int64_t> agree(2, 0);
    for (int64_t w = 0; w < N; ++w) {
      std::vector<int64_t> ids(static_cast<size_t>(S)), types(static_cast<size_t>(S)), mask(static_cast<size_t>(S));
      for (int64_t s = 0; s < S; ++s) {
        ids[size_t(s)] = s < S - P ? int64_t(gen.next_u64() % uint64_t(c.vocab_size)) : 0;
        types[size_t(s)] = s >= S / 6 && s < S - P ? 1 : 0;
        mask[size_t(s)] = s < S - P ? 1 : 0;
      }
      const std::vector<Tensor> in = {from_vector(ids, {1, S}), from_vector(types, {1, S}), from_vector(mask, {1, S})};
      const std::vector<Tensor> ref = fp32.run(in);
      for (size_t k = 0; k < 2; ++k) {
        const std::vector<Tensor> out = q[k].second.run(in);
        bool same = true;
        for (size_t o = 0; o < 2; ++o) {
          const float* a = ref[o].data<float>();
          const float* b = out[o].data<float>();
          for (int64_t i = 0; i < S; ++i) {
            const double e = std::fabs(double(a[i]) - double(b[i]));
            max_err[k] = std::max(max_err[k], e);
            sum_err[k] += e;
          }
          same = same && argmax(a, S - P) == argmax(b, S - P);
        }
        agree[k] += same;
      }
    }
    for (size_t k = 0; k < 2; ++k)
      std::printf("%-10s max |logit error| %.4g  mean %.4g  best start and end equal to fp32's: %lld/%lld windows\n",
                  q[k].first.c_str(), max_err[k], sum_err[k] / double(N * S * 2), (long long)agree[k], (long long)N);
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "bert_int8_rows: %s\n", e.what());
    return 1;
  }
}
