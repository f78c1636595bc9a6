// `finch emit-c` on text programs and dynamic int8 programs: the static int8 IMDB models
// (qembedding → quantize → qlstm → … → qlinear, token ids and lengths in) and every program
// `finch quantize --mode dynamic` makes from the series and text models (dq_lstm with and without
// the projection, bidirectional, dq_gru, qembedding, dq_linear). The emitted C, built with the
// system C compiler, gives the runtime's outputs byte for byte on padded batches with unequal
// lengths, at the declared batch and re-declared for batch 1; a token id outside 0..V-1 and a
// non-finite value to quantize are refused by the emitted main in one sentence, as by the
// runtime; the comparison fails when the LSTM cell update is computed unfused (one rounding more).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "compile/capture.h"
#include "compile/dynamic_rnn.h"
#include "compile/emit_c.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/series_spec.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/test_emit_c_util.h"
#include "tests/temp_dir.h"

using namespace finch;

namespace {

using finch::test::Built;
using finch::test::shell;
using finch::test::slurp;

constexpr int64_t kC = 3, kT = 20, kB = 4, kV = 40;

Tensor lengths_of(const std::vector<int64_t>& l) { return from_vector<int64_t>(l, {int64_t(l.size())}); }

models::SeriesSpec spec_of(const std::string& name) {
  models::SeriesSpec s;
  s.name = name;
  s.in_channels = kC, s.num_classes = name.rfind("imdb", 0) == 0 ? 1 : 3, s.hidden_size = 8, s.num_layers = 2;
  if (name == "lstm_proj") s.name = "lstm", s.proj_size = 4;
  if (name == "bigru") s.name = "gru", s.bidirectional = true;
  if (models::is_text_model(s.name)) s.vocab_size = kV, s.embed_dim = 6;
  return s;
}

bool is_text(const std::string& name) { return name.rfind("imdb", 0) == 0; }

// A batch of B samples: series [B, C, T] random normal (scale ×40 for `loud`), or token ids
// [B, T] in 1..V-1 zero padded past each sample's length.
std::vector<Tensor> batch(const std::string& name, int64_t B, int i, Generator& gen) {
  std::vector<int64_t> l;
  for (int64_t b = 0; b < B; ++b) l.push_back(i == 0 ? kT : 1 + (b * 7 + i * 5) % kT);
  if (!is_text(name)) return {randn({B, kC, kT}, gen) * (i == 2 ? 40.0f : 1.0f), lengths_of(l)};
  std::vector<int64_t> ids(size_t(B * kT), 0);
  const Tensor u = rand({B, kT}, gen);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < l[size_t(b)]; ++t)
      ids[size_t(b * kT + t)] = 1 + int64_t(u.data<float>()[b * kT + t] * float(kV - 1)) % (kV - 1);
  return {from_vector<int64_t>(ids, {B, kT}), lengths_of(l)};
}

// The program as finch quantize builds it: --mode dynamic (compile::quantize_dynamic_graph on the
// float program) or, for the text models, static (head prepared and calibrated, each lstm node
// calibrated and made qlstm, the embedding made qembedding); declared batch kB.
runtime::Graph program(const std::string& name, bool dynamic) {
  Generator gen(41);
  nn::ModulePtr model = models::create_series(spec_of(name), &gen);
  model->eval();
  std::vector<std::vector<Tensor>> calib;
  for (int i = 0; i < 3; ++i) calib.push_back(batch(name, 8, i + 1, gen));
  const std::vector<Tensor> ex = batch(name, kB, 0, gen);
  std::unique_ptr<quant::QuantizedModel> q;
  if (!dynamic) {
    quant::PrepareOptions po;
    po.qconfig = quant::qconfig_preset("int8");
    q = quant::prepare(*model, ex[0].slice(0, 0, 1).contiguous(), po, false);
    {
      NoGradGuard ng;
      for (const auto& c : calib) model->forward(c[0]);
    }
    quant::convert(*q);
    q->enable_observers(false);
  }
  runtime::Graph g = compile::capture_graph_with_lengths(*model, ex[0], ex[1]);
  if (dynamic) {
    compile::fuse_activations(g);
    compile::fold_constants(g);
    compile::remove_dead(g);
    compile::quantize_dynamic_graph(g);
    return g;
  }
  compile::lower_quantized(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  compile::quantize_static_lstm(g, calib);
  compile::quantize_embeddings(g);
  q->remove();
  return g;
}

int count_op(const runtime::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op == op;
  return n;
}

void write_raw(const std::string& path, const std::vector<Tensor>& ts) {
  std::ofstream f(path, std::ios::binary);
  for (const Tensor& t : ts) f.write(static_cast<const char*>(t.contiguous().raw_data()), std::streamsize(t.nbytes()));
}

using Records = std::vector<std::vector<Tensor>>;  // per record: the program's inputs

std::string run_runtime(const runtime::Graph& g, const Records& r) {
  runtime::Program p(g, "test program");
  std::string bytes;
  for (const auto& in : r) {
    const Tensor y = p.run(in)[0].contiguous();
    bytes.append(static_cast<const char*>(y.raw_data()), y.nbytes());
  }
  return bytes;
}

// Runs the emitted main on the records (one file per input); its exit status in *status.
std::string run_emitted(const std::string& exe, const Records& r, const finch::test::TempDir& dir, int* status = nullptr) {
  std::string files;
  for (size_t k = 0; k < r[0].size(); ++k) {
    std::vector<Tensor> col;
    for (const auto& in : r) col.push_back(in[k]);
    const std::string f = dir / ("in" + std::to_string(k) + ".bin");
    write_raw(f, col);
    files += " " + f;
  }
  std::remove((dir / "out.bin").c_str());
  const int rc = shell(exe + files + " --out " + (dir / "out.bin") + " --quiet 2> " + (dir / "err.txt"));
  if (status) *status = rc;
  else EXPECT_EQ(rc, 0) << slurp(dir / "err.txt");
  return slurp(dir / "out.bin");
}

int64_t differing_floats(const std::string& a, const std::string& b) {
  int64_t n = 0;
  for (size_t i = 0; i + 4 <= a.size() && i + 4 <= b.size(); i += 4) n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}

Records records(const std::string& name, int64_t B, Generator& gen) {
  Records r;
  for (int i = 0; i < 4; ++i) r.push_back(batch(name, B, i, gen));
  return r;
}

struct Case {
  std::string model;
  bool dynamic;
  int64_t batch;  // 0: the declared kB; else with_batch
};
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << (c.dynamic ? " dynamic" : " static") << " batch " << (c.batch ? c.batch : kB);
}

class EmitCTextAndDynamic : public ::testing::TestWithParam<Case> {};

TEST_P(EmitCTextAndDynamic, OutputsEqualTheRuntimeByteForByte) {
  SKIP_WITHOUT_COMPILER();
  const Case c = GetParam();
  runtime::Graph g = program(c.model, c.dynamic);
  const bool gru = c.model.find("gru") != std::string::npos;
  ASSERT_EQ(count_op(g, "lstm") + count_op(g, "gru") + count_op(g, "linear") + count_op(g, "embedding"), 0);
  if (c.dynamic) {
    ASSERT_EQ(count_op(g, gru ? "dq_gru" : "dq_lstm"), 2);
    ASSERT_EQ(count_op(g, "dq_linear"), 1);
  } else {
    ASSERT_EQ(count_op(g, "qlstm"), c.model == "imdb_bilstm" ? 4 : 2);
    ASSERT_EQ(count_op(g, "qlinear"), 1);
  }
  if (is_text(c.model)) ASSERT_EQ(count_op(g, "qembedding"), 1);
  if (c.batch) g = compile::with_batch(g, c.batch, "test program");
  finch::test::TempDir dir("emit_c_dq");
  const Built b = finch::test::build(g, dir, c.model == "gru");
  ASSERT_TRUE(b.error.empty()) << b.error;
  Generator gen(51);
  const Records r = records(c.model, c.batch ? c.batch : kB, gen);
  const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_GT(want.size(), 0u);
  EXPECT_EQ(differing_floats(got, want), 0) << "outputs differing from the runtime's";
  if (is_text(c.model))
    EXPECT_NE(slurp(dir / "net.c").find("int net_run(const int64_t* input, const int64_t* input1, float* output)"),
              std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Models, EmitCTextAndDynamic,
                         ::testing::Values(Case{"imdb_lstm", false, 0}, Case{"imdb_bilstm", false, 1},
                                           Case{"imdb_lstm", true, 0}, Case{"imdb_bilstm", true, 1},
                                           Case{"lstm", true, 0}, Case{"lstm_proj", true, 0}, Case{"bilstm", true, 1},
                                           Case{"gru", true, 0}, Case{"bigru", true, 3}, Case{"lstm", true, 1}),
                         [](const auto& info) {
                           return info.param.model + (info.param.dynamic ? "_dynamic" : "_static") + "_batch" +
                                  std::to_string(info.param.batch ? info.param.batch : kB);
                         });

// Many records, one per call (batch 1, as a deployed program runs): 128 reviews or series each
// with its own length 1..T, for a static text, a dynamic text and a dynamic projected program.
TEST(EmitCDynamicCheck, HundredsOfRecordsAtBatch1EqualTheRuntime) {
  SKIP_WITHOUT_COMPILER();
  for (const auto& [name, dynamic] : {std::pair<std::string, bool>{"imdb_lstm", false}, {"imdb_bilstm", true}, {"lstm_proj", true}}) {
    const runtime::Graph g = compile::with_batch(program(name, dynamic), 1, "test program");
    finch::test::TempDir dir("emit_c_dq");
    const Built b = finch::test::build(g, dir);
    ASSERT_TRUE(b.error.empty()) << b.error;
    Generator gen(56);
    Records r;
    for (int i = 0; i < 128; ++i) r.push_back(batch(name, 1, 1 + i, gen));
    const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(differing_floats(got, want), 0) << name;
  }
}

// dq_linear with per_row (what BERT's dynamic programs use: each row of x quantized from its own
// min/max) on a batch of 4, and with a fused relu: the emitted head equals the runtime's too.
TEST(EmitCDynamicCheck, PerRowAndReluHeadsEqualTheRuntime) {
  SKIP_WITHOUT_COMPILER();
  for (const char* act : {"none", "relu"}) {
    runtime::Graph g = program("gru", true);
    int heads = 0;
    for (runtime::Node& n : g.nodes)
      if (n.op == "dq_linear") n.attrs["per_row"] = true, n.attrs["act"] = act, ++heads;
    ASSERT_EQ(heads, 1);
    finch::test::TempDir dir("emit_c_dq");
    const Built b = finch::test::build(g, dir);
    ASSERT_TRUE(b.error.empty()) << b.error;
    Generator gen(55);
    const Records r = records("gru", kB, gen);
    const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_EQ(differing_floats(got, want), 0) << act;
  }
}

// The check can fail: the LSTM cell update c' = f·c + i·g computed with two roundings instead of
// the runtime's one fused multiply-add changes some output bits.
TEST(EmitCDynamicCheck, AnUnfusedCellUpdateDiffers) {
  SKIP_WITHOUT_COMPILER();
  const runtime::Graph g = program("lstm", true);
  compile::EmittedC e = compile::emit_c(g, "net", "test program");
  const std::string fused = "c[j] = fmaf(gf, c[j], gi * gg);";
  const size_t at = e.source.find(fused);
  ASSERT_NE(at, std::string::npos);
  e.source.replace(at, fused.size(), "{ volatile float fc = gf * c[j]; c[j] = fc + gi * gg; }");
  finch::test::TempDir dir("emit_c_dq");
  compile::write_emitted_c(e, dir.str());
  const Built b = finch::test::build_emitted(dir);
  ASSERT_TRUE(b.error.empty()) << b.error;
  Generator gen(52);
  const Records r = records("lstm", kB, gen);
  const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_GT(differing_floats(got, want), 0);
}

// A token id outside 0..V-1: the runtime refuses it, the emitted NAME_run returns 2 and its main
// says so in one sentence naming the record.
TEST(EmitCDynamicCheck, ATokenIdOutsideTheVocabularyIsRefused) {
  SKIP_WITHOUT_COMPILER();
  for (bool dynamic : {false, true}) {
    const runtime::Graph g = compile::with_batch(program("imdb_lstm", dynamic), 1, "test program");
    finch::test::TempDir dir("emit_c_dq");
    const Built b = finch::test::build(g, dir);
    ASSERT_TRUE(b.error.empty()) << b.error;
    Generator gen(53);
    for (int64_t bad : {kV, int64_t(-1), int64_t(1) << 40}) {
      Records r = {batch("imdb_lstm", 1, 0, gen), batch("imdb_lstm", 1, 1, gen)};
      r[1][0].data<int64_t>()[3] = bad;
      runtime::Program p(g, "test program");
      EXPECT_NO_THROW(p.run(r[0]));
      EXPECT_ANY_THROW(p.run(r[1]));
      int status = 0;
      run_emitted(b.exe, r, dir, &status);
      EXPECT_EQ(status, 1);
      EXPECT_NE(slurp(dir / "err.txt").find("record 1 of " + (dir / "in0.bin") + ": a token id is outside 0..V-1"),
                std::string::npos)
          << slurp(dir / "err.txt");
    }
  }
}

// A series value that is not finite: the dynamic program's first dq_lstm cannot quantize it (the
// runtime refuses it); the emitted NAME_run returns 3 and its main says so in one sentence.
TEST(EmitCDynamicCheck, ANonFiniteValueIsRefused) {
  SKIP_WITHOUT_COMPILER();
  const runtime::Graph g = compile::with_batch(program("gru", true), 1, "test program");
  finch::test::TempDir dir("emit_c_dq");
  const Built b = finch::test::build(g, dir);
  ASSERT_TRUE(b.error.empty()) << b.error;
  Generator gen(54);
  for (float bad : {NAN, INFINITY}) {
    Records r = {batch("gru", 1, 0, gen)};
    r[0][0].data<float>()[5] = bad;
    runtime::Program p(g, "test program");
    EXPECT_ANY_THROW(p.run(r[0]));
    int status = 0;
    run_emitted(b.exe, r, dir, &status);
    EXPECT_EQ(status, 1);
    EXPECT_NE(slurp(dir / "err.txt").find("record 0 of " + (dir / "in0.bin") + ": a value the program quantizes dynamically is not finite"),
              std::string::npos)
        << slurp(dir / "err.txt");
  }
}

}  // namespace
