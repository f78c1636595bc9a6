// BERT-mini compressed three ways, side by side in one run: the dense model, its FFN Linears
// factorized by truncated SVD at half and at a quarter of their rank (compress::factorize_module),
// and half its attention heads and FFN neurons removed (compress::prune_structured, l2 scores).
// For each: parameters, fp32 and dynamic-int8 program bytes, the fidelity of the fp32 program's
// start/end logits against the dense model's (max |Δ| and relative L2 over the test sequences),
// and the batch-1 median latency of both programs at --seq tokens, variants interleaved so that
// machine load slows them alike.
//
// Random initialization (transformers' N(0, 0.02), a seeded generator) unless --dir names a
// trained BertForQuestionAnswering directory (train_squad's output): size and latency do not
// depend on the values; fidelity does, so the random-init rows say nothing about accuracy.
//   build/bin/bert_compress_table [--dir DIR] [--seq 128] [--reps 30] [--threads 1]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "compile/bert_program.h"
#include "compile/dynamic_rnn.h"
#include "compile/passes.h"
#include "compress/lowrank.h"
#include "compress/structured.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

using namespace finch;

namespace {

struct Variant {
  std::string name;
  std::shared_ptr<models::BertForQuestionAnswering> model;
  runtime::Graph fp32, int8;
  std::unique_ptr<runtime::Program> p32, p8;
  std::vector<double> ms32, ms8;
};

models::BertConfig mini() {  // google/bert_uncased_L-4_H-256_A-4
  models::BertConfig c;
  c.hidden_size = 256, c.num_hidden_layers = 4, c.num_attention_heads = 4, c.intermediate_size = 1024;
  return c;
}

std::shared_ptr<models::BertForQuestionAnswering> load(const std::string& dir) {
  if (!dir.empty()) return models::load_bert_for_question_answering(dir);
  auto m = std::make_shared<models::BertForQuestionAnswering>(mini(), false, 7);
  Generator gen(7);
  models::init_bert_weights(*m, m->bert->config, gen);
  return m;
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir;
  int64_t S = 128, reps = 30, threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    else if (!std::strcmp(argv[i], "--seq")) S = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--reps")) reps = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads")) threads = std::atoll(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: bert_compress_table [--dir DIR] [--seq N] [--reps N] [--threads N]\n");
      return 2;
    }
  }
  set_num_threads(int(threads));
  NoGradGuard ng;
  std::vector<Variant> vs;
  for (const char* name : {"dense", "ffn rank 1/2", "ffn rank 1/4", "heads+ffn pruned 1/2"}) {
    Variant v;
    v.name = name;
    v.model = load(dir);
    v.model->eval();
    const models::BertConfig& c = v.model->bert->config;
    const int64_t full = std::min(c.hidden_size, c.intermediate_size);
    const std::string n = name;
    if (n.rfind("ffn rank", 0) == 0) {
      const int64_t r = n == "ffn rank 1/2" ? full / 2 : full / 4;
      for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
        const std::string p = "bert.encoder.layer." + std::to_string(l);
        compress::factorize_module(*v.model, p + ".intermediate.dense", r);
        compress::factorize_module(*v.model, p + ".output.dense", r);
      }
    } else if (n != "dense") {
      compress::StructuredOptions o;
      o.amount = 0.5;
      o.score = compress::Score::l2;
      Generator g(3);
      compress::prune_structured(*v.model, randint(1, c.vocab_size, {1, 16}, g), o);
    }
    compile::BertProgramSpec spec;
    spec.layers = c.num_hidden_layers, spec.heads = c.num_attention_heads, spec.layer_norm_eps = c.layer_norm_eps;
    spec.hidden_act = c.hidden_act, spec.max_seq_length = S;
    v.fp32 = compile::bert_qa_program(*v.model, spec);
    v.int8 = v.fp32;
    compile::quantize_dynamic_graph(v.int8);
    compile::fold_constants(v.int8);
    compile::remove_dead(v.int8);
    v.p32 = std::make_unique<runtime::Program>(v.fp32, v.name);
    v.p8 = std::make_unique<runtime::Program>(v.int8, v.name + " int8");
    vs.push_back(std::move(v));
  }
  // Fidelity on 8 random sequences against the dense fp32 program.
  Generator gen(5);
  const int64_t vocab = vs[0].model->bert->config.vocab_size;
  std::vector<std::vector<Tensor>> inputs;
  for (int i = 0; i < 8; ++i)
    inputs.push_back({randint(1, vocab, {1, S}, gen), zeros({1, S}, DType::i64), ones({1, S}, DType::i64)});
  std::vector<std::vector<float>> ref;
  for (const auto& x : inputs) {
    const auto o = vs[0].p32->run(x);
    std::vector<float> a = o[0].to_vector<float>(), b = o[1].to_vector<float>();
    a.insert(a.end(), b.begin(), b.end());
    ref.push_back(a);
  }
  // Latency: one call of each program per round, variants interleaved; 3 warm-up rounds.
  for (int64_t r = -3; r < reps; ++r)
    for (auto& v : vs)
      for (int k = 0; k < 2; ++k) {
        runtime::Program& p = k ? *v.p8 : *v.p32;
        const auto t0 = std::chrono::steady_clock::now();
        p.run(inputs[size_t((r + 3) % 8)]);
        const double ms = 1e3 * std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (r >= 0) (k ? v.ms8 : v.ms32).push_back(ms);
      }
  std::printf("BERT %s, S=%lld, %lld thread(s), %lld timed runs each (median ms)\n",
              dir.empty() ? "mini (L4 H256 A4 I1024, random init)" : dir.c_str(), static_cast<long long>(S),
              static_cast<long long>(threads), static_cast<long long>(reps));
  std::printf("%-22s %10s %12s %12s %10s %10s %9s %9s %7s\n", "variant", "params", "fp32 bytes", "int8 bytes",
              "max|dlog|", "rel L2", "fp32 ms", "int8 ms", "x dense");
  const double base = median(vs[0].ms32);
  for (auto& v : vs) {
    double worst = 0, num = 0, den = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto o = v.p32->run(inputs[i]);
      std::vector<float> a = o[0].to_vector<float>(), b = o[1].to_vector<float>();
      a.insert(a.end(), b.begin(), b.end());
      for (size_t j = 0; j < a.size(); ++j) {
        const double d = double(a[j]) - double(ref[i][j]);
        worst = std::max(worst, std::fabs(d));
        num += d * d, den += double(ref[i][j]) * double(ref[i][j]);
      }
    }
    std::printf("%-22s %10lld %12zu %12zu %10.4f %10.4f %9.3f %9.3f %7.3f\n", v.name.c_str(),
                static_cast<long long>(v.model->num_parameters()), runtime::serialize_program(v.fp32).size(),
                runtime::serialize_program(v.int8).size(), worst, std::sqrt(num / std::max(den, 1e-30)),
                median(v.ms32), median(v.ms8), median(v.ms32) / base);
  }
  return 0;
}
