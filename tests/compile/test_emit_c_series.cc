// `finch emit-c` on the static int8 series programs `finch quantize --mode static` makes (LSTM,
// GRU, BiLSTM, a projected LSTM, DeepConvLSTM: quantize → qconv2d/permute/reshape → qlstm/qgru
// → cat/select → qlinear → dequantize, with the lengths input): the emitted C, built with the
// system C compiler, takes the series and the lengths and gives the runtime's outputs byte for
// byte, on padded batches with unequal lengths and re-declared for batch 1 (compile::with_batch);
// a length outside 1..T is refused by the emitted main in one sentence, as by the runtime; the
// comparison fails when one requantization shift of the emitted source is changed.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "compile/capture.h"
#include "compile/emit_c.h"
#include "compile/passes.h"
#include "compile/static_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/qs8_rnn.h"
#include "models/series_spec.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/test_emit_c_util.h"
#include "tests/error_text.h"
#include "tests/temp_dir.h"

using namespace finch;

namespace {

using finch::test::Built;
using finch::test::shell;
using finch::test::slurp;

constexpr int64_t kC = 3, kT = 24, kB = 4;

Tensor lengths_of(const std::vector<int64_t>& l) { return from_vector<int64_t>(l, {int64_t(l.size())}); }

// "<model>" or "<model>_proj" (proj_size 4): the static int8 program as finch quantize builds it
// (apps/lib/series_quantize_cmd.cc): convs and head prepared, calibrated and lowered, then every
// lstm/gru node calibrated on the float program and made qlstm/qgru; declared batch kB.
runtime::Graph series_program(const std::string& name) {
  const bool proj = name.size() > 5 && name.compare(name.size() - 5, 5, "_proj") == 0;
  models::SeriesSpec s;
  s.name = proj ? name.substr(0, name.size() - 5) : name;
  s.in_channels = kC, s.num_classes = 4, s.hidden_size = 8, s.num_layers = 2, s.proj_size = proj ? 4 : 0;
  if (s.name == "deepconvlstm") s.width = 6;
  Generator gen(21);
  nn::ModulePtr model = models::create_series(s, &gen);
  model->eval();
  std::vector<Tensor> calib;
  for (int i = 0; i < 4; ++i) calib.push_back(randn({8, kC, kT}, gen));
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(*model, calib[0].slice(0, 0, 1).contiguous(), po, false);
  {
    NoGradGuard ng;
    for (const Tensor& x : calib) model->forward(x);
  }
  quant::convert(*q);
  q->enable_observers(false);
  runtime::Graph g = compile::capture_graph_with_lengths(*model, calib[0].slice(0, 0, kB).contiguous(),
                                                         lengths_of(std::vector<int64_t>(kB, kT)));
  compile::lower_quantized(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  std::vector<std::vector<Tensor>> ins;
  for (const Tensor& x : calib) ins.push_back({x, lengths_of(std::vector<int64_t>(8, kT))});
  compile::quantize_static_lstm(g, ins);
  compile::quantize_static_gru(g, ins);
  q->remove();
  return g;
}

int count_op(const runtime::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op == op;
  return n;
}

// R records of the program's declared batch: random-normal series (one scaled ×40, reaching the
// clamps) and unequal lengths in [lo, kT], one record all kT.
struct Records {
  std::vector<Tensor> x, len;
};
Records records(int64_t B, int64_t lo, Generator& gen) {
  Records r;
  for (int i = 0; i < 4; ++i) {
    Tensor x = randn({B, kC, kT}, gen);
    if (i == 2) x = x * 40.0f;
    std::vector<int64_t> l;
    for (int64_t b = 0; b < B; ++b) l.push_back(i == 0 ? kT : lo + (b * 7 + i * 5) % (kT - lo + 1));
    r.x.push_back(x), r.len.push_back(lengths_of(l));
  }
  return r;
}

void write_raw(const std::string& path, const std::vector<Tensor>& ts) {
  std::ofstream f(path, std::ios::binary);
  for (const Tensor& t : ts) f.write(static_cast<const char*>(t.contiguous().raw_data()), std::streamsize(t.nbytes()));
}

std::string run_runtime(const runtime::Graph& g, const Records& r) {
  runtime::Program p(g, "test program");
  std::string bytes;
  for (size_t i = 0; i < r.x.size(); ++i) {
    const Tensor y = p.run({r.x[i], r.len[i]})[0].contiguous();
    bytes.append(static_cast<const char*>(y.raw_data()), y.nbytes());
  }
  return bytes;
}

std::string run_emitted(const std::string& exe, const Records& r, const finch::test::TempDir& dir) {
  write_raw(dir / "x.bin", r.x);
  write_raw(dir / "len.bin", r.len);
  std::remove((dir / "out.bin").c_str());
  EXPECT_EQ(shell(exe + " " + (dir / "x.bin") + " " + (dir / "len.bin") + " --out " + (dir / "out.bin") + " --quiet"), 0);
  return slurp(dir / "out.bin");
}

int64_t differing_floats(const std::string& a, const std::string& b) {
  int64_t n = 0;
  for (size_t i = 0; i + 4 <= a.size() && i + 4 <= b.size(); i += 4) n += std::memcmp(&a[i], &b[i], 4) != 0;
  return n;
}

struct Case {
  std::string model;
  int64_t batch;  // 0: the declared kB; else with_batch
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " batch " << (c.batch ? c.batch : kB); }

class EmitCSeries : public ::testing::TestWithParam<Case> {};

TEST_P(EmitCSeries, OutputsEqualTheRuntimeByteForByte) {
  SKIP_WITHOUT_COMPILER();
  const Case c = GetParam();
  runtime::Graph g = series_program(c.model);
  const bool gru = c.model == "gru", dcl = c.model == "deepconvlstm";
  ASSERT_EQ(count_op(g, gru ? "qgru" : "qlstm"), c.model.rfind("bilstm", 0) == 0 ? 4 : 2);
  ASSERT_EQ(count_op(g, "qlinear"), 1) << "the head is int8";
  ASSERT_EQ(count_op(g, "lstm") + count_op(g, "gru") + count_op(g, "linear"), 0);
  if (dcl) {
    ASSERT_EQ(count_op(g, "qconv2d"), 4);
  }
  if (c.batch) g = compile::with_batch(g, c.batch, "test program");
  const int64_t B = c.batch ? c.batch : kB;
  finch::test::TempDir dir("emit_c_series");
  const Built b = finch::test::build(g, dir, c.model == "gru");
  ASSERT_TRUE(b.error.empty()) << b.error;
  Generator gen(31);
  const Records r = records(B, dcl ? 17 : 1, gen);  // DeepConvLSTM's valid convs take 16 steps
  const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(differing_floats(got, want), 0) << c.model << ": outputs differing from the runtime's";
  const std::string source = slurp(dir / "net.c");
  EXPECT_NE(source.find("net_q16_sigmoid[65536]"), std::string::npos);
  EXPECT_NE(source.find("int net_run(const float* input, const int64_t* input1, float* output)"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Models, EmitCSeries,
                         ::testing::Values(Case{"lstm", 0}, Case{"gru", 0}, Case{"bilstm", 0}, Case{"lstm_proj", 0},
                                           Case{"bilstm_proj", 1}, Case{"deepconvlstm", 0}, Case{"lstm", 1},
                                           Case{"gru", 1}, Case{"bilstm", 3}),
                         [](const auto& info) {
                           return info.param.model + "_batch" + std::to_string(info.param.batch ? info.param.batch : kB);
                         });

// The check can fail: one requantization shift of the emitted source (the first recurrent
// cell's o·tanh(c') → h shift, +1) changes the outputs.
TEST(EmitCSeriesCheck, APerturbedShiftDiffers) {
  SKIP_WITHOUT_COMPILER();
  const runtime::Graph g = series_program("lstm");
  finch::test::TempDir dir("emit_c_series");
  compile::EmittedC e = compile::emit_c(g, "net", "test program");
  const std::regex shift(", (\\d+), net_q16_sigmoid, net_q16_tanh\\}");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(e.source, m, shift));
  e.source.replace(size_t(m.position(1)), size_t(m.length(1)), std::to_string(std::stoi(m[1].str()) + 1));
  compile::write_emitted_c(e, dir.str());
  const Built b = finch::test::build_emitted(dir);
  ASSERT_TRUE(b.error.empty()) << b.error;
  Generator gen(32);
  const Records r = records(kB, 1, gen);
  const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_GT(differing_floats(got, want), 0);
}

// The check can fail: one entry of the emitted sigmoid table changed. The entry is one the first
// step certainly reads: on a series of zeros the first qlstm's x codes are all z_x and its h
// starts at z_h, so gate i of row 0 has the pre-activation q16_add_sat(q16_gate(b_ih[0]),
// q16_gate(b_hh[0])), found from the node's constants by the kernels' own functions.
TEST(EmitCSeriesCheck, APerturbedTableEntryDiffers) {
  SKIP_WITHOUT_COMPILER();
  const runtime::Graph g = series_program("lstm");
  const runtime::Node* first = nullptr;
  for (const runtime::Node& n : g.nodes)
    if (!first && n.op == "qlstm") first = &n;
  ASSERT_NE(first, nullptr);
  namespace qk = quant::kernels;
  const auto& vals = g.values;
  const float sx = vals[size_t(first->inputs[0])].quant->scale[0], sh = vals[size_t(first->outputs[0])].quant->scale[0];
  const auto m_ih = qk::gate_multipliers(sx, vals[size_t(first->inputs[2])].quant->scale);
  const auto m_hh = qk::gate_multipliers(sh, vals[size_t(first->inputs[3])].quant->scale);
  const int32_t b_ih = vals[size_t(first->inputs[4])].data.contiguous().to_vector<int32_t>()[0];
  const int32_t b_hh = vals[size_t(first->inputs[5])].data.contiguous().to_vector<int32_t>()[0];
  const int16_t pre = qk::q16_add_sat(qk::q16_gate(b_ih, m_ih[0]), qk::q16_gate(b_hh, m_hh[0]));
  const size_t index = uint16_t(pre);
  compile::EmittedC e = compile::emit_c(g, "net", "test program");
  // The entry's text: past the table's opening brace, `index` commas on.
  size_t at = e.source.find("net_q16_sigmoid[65536] = {");
  ASSERT_NE(at, std::string::npos);
  at = e.source.find('{', at) + 1;
  for (size_t i = 0; i < index; ++i) at = e.source.find(',', at) + 1;
  while (e.source[at] == ' ' || e.source[at] == '\n') ++at;
  const size_t end = e.source.find(',', at);
  const int entry = std::stoi(e.source.substr(at, end - at));
  ASSERT_EQ(entry, qk::q16_sigmoid(pre)) << "the emitted entry is the runtime's";
  e.source.replace(at, end - at, std::to_string(entry > 16384 ? 0 : 32767));
  finch::test::TempDir dir("emit_c_series");
  compile::write_emitted_c(e, dir.str());
  const Built b = finch::test::build_emitted(dir);
  ASSERT_TRUE(b.error.empty()) << b.error;
  Records r;
  r.x = {zeros({kB, kC, kT})}, r.len = {lengths_of(std::vector<int64_t>(kB, kT))};
  const std::string want = run_runtime(g, r), got = run_emitted(b.exe, r, dir);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_GT(differing_floats(got, want), 0) << "sigmoid entry " << index << " changed from " << entry;
}

// A length outside 1..T: the runtime refuses it, the emitted NAME_run returns 1 and its main says
// so in one sentence.
TEST(EmitCSeriesCheck, ALengthOutsideTheStepsIsRefused) {
  SKIP_WITHOUT_COMPILER();
  const runtime::Graph g = compile::with_batch(series_program("gru"), 1, "test program");
  finch::test::TempDir dir("emit_c_series");
  const Built b = finch::test::build(g, dir);
  ASSERT_TRUE(b.error.empty()) << b.error;
  Generator gen(33);
  for (int64_t bad : {int64_t(0), kT + 1, int64_t(-5)}) {
    Records r;
    r.x = {randn({1, kC, kT}, gen)}, r.len = {lengths_of({bad})};
    runtime::Program p(g, "test program");
    EXPECT_ANY_THROW(p.run({r.x[0], r.len[0]}));
    write_raw(dir / "x.bin", r.x);
    write_raw(dir / "len.bin", r.len);
    EXPECT_EQ(shell(b.exe + " " + (dir / "x.bin") + " " + (dir / "len.bin") + " --quiet 2> " + (dir / "err.txt")), 1);
    EXPECT_NE(slurp(dir / "err.txt").find("record 0 of " + (dir / "len.bin") + ": a length is outside 1..T"),
              std::string::npos)
        << slurp(dir / "err.txt");
  }
  // A lengths file whose record count differs from the series file's.
  write_raw(dir / "len2.bin", {lengths_of({3}), lengths_of({4})});
  EXPECT_EQ(shell(b.exe + " " + (dir / "x.bin") + " " + (dir / "len2.bin") + " --quiet 2> " + (dir / "err.txt")), 1);
  EXPECT_NE(slurp(dir / "err.txt").find("holds 2 records; expected 1"), std::string::npos) << slurp(dir / "err.txt");
}

TEST(EmitCSeriesCheck, WhatItDoesNotCoverIsOneSentence) {
  const runtime::Graph g = series_program("lstm");
  // An op after the head that emit-c does not cover (the runtime runs it).
  runtime::Graph tanh = g;
  runtime::Node t;
  t.op = "tanh", t.name = "head.tanh", t.inputs = {tanh.outputs[0]};
  runtime::Value v = tanh.values[size_t(tanh.outputs[0])];
  v.name = "squashed";
  t.outputs = {tanh.add_value(v)};
  tanh.nodes.push_back(t);
  tanh.outputs = {t.outputs[0]};
  EXPECT_ERROR_HAS(compile::emit_c(tanh, "net", "p.finch"), "p.finch: node 'head.tanh' (tanh) is an op emit-c does not cover");
  // --batch: a batch outside 1..2^20, inputs that disagree on their batch.
  EXPECT_ERROR_HAS(compile::with_batch(g, 0, "p.finch"), "expected --batch to be a whole number from 1 to 1048576");
  runtime::Graph two = g;
  two.values[size_t(two.inputs[1])].shape = {kB + 1};
  EXPECT_ERROR_HAS(compile::with_batch(two, 1, "p.finch"), "p.finch: its inputs declare batches 4 and 5");
}

}  // namespace
