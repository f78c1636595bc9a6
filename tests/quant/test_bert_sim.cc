// The simulated static int8 BERT (quant/bert_sim.h) against the deployed program: every logit
// and every int8 code equal bit for bit (PTQ program with its ranges read back, at full and padded
// lengths and through a file; a QAT-trained model's export), a perturbed constant on either side
// detected, QAT lowering the loss, and the straight-through gradient reaching every parameter.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/adam.h"
#include "compile/bert_program.h"
#include "compile/dynamic_rnn.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "kernels/reference.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "quant/bert_sim.h"
#include "quant/bert_static.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/compile/graph_test_util.h"
#include "tests/error_text.h"
#include "tests/golden/golden.h"
#include "tests/temp_dir.h"

using namespace finch;

namespace {

struct Batch {
  Tensor ids, types, mask;
  std::vector<Tensor> inputs() const { return {ids, types, mask}; }
};

// B sequences of length S: random ids, a question/context split of token types, sample b padded
// after S − 3·b tokens.
Batch batch(int64_t vocab, int64_t B, int64_t S, uint64_t seed) {
  Generator gen(seed);
  std::vector<int64_t> ids, types, mask;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t s = 0; s < S; ++s) {
      ids.push_back(1 + int64_t(gen.next_u64() % uint64_t(vocab - 1)));
      types.push_back(s >= S / 3 ? 1 : 0);
      mask.push_back(s < std::max<int64_t>(1, S - 3 * b) ? 1 : 0);
    }
  return {from_vector(ids, {B, S}), from_vector(types, {B, S}), from_vector(mask, {B, S})};
}

compile::BertProgramSpec spec_of(const models::BertConfig& c, int64_t S) {
  compile::BertProgramSpec s;
  s.layers = c.num_hidden_layers, s.heads = c.num_attention_heads, s.layer_norm_eps = c.layer_norm_eps;
  s.hidden_act = c.hidden_act, s.max_seq_length = S;
  return s;
}

// Program vs simulation on one batch: differing logits, and differing codes over every simulated
// value the program holds as "<name>.q" (values compared returned in *values).
int64_t compare(runtime::Program& p, quant::BertStaticSim& sim, const Batch& x, int64_t* values = nullptr) {
  NoGradGuard ng;
  const std::vector<Tensor> all = p.run_all(x.inputs());
  std::map<std::string, Tensor> codes;
  const quant::BertSimOutputs o = sim.forward(x.ids, x.types, x.mask, &codes);
  const auto& g = p.graph();
  int64_t bad = test::differing(all[size_t(g.outputs[0])], o.start_logits.contiguous()) +
                test::differing(all[size_t(g.outputs[1])], o.end_logits.contiguous());
  int64_t n = 0;
  for (size_t v = 0; v < g.values.size(); ++v) {
    const std::string& name = g.values[v].name;
    if (name.size() < 3 || name.compare(name.size() - 2, 2, ".q") != 0) continue;
    const auto it = codes.find(name.substr(0, name.size() - 2));
    if (it == codes.end() || !all[v].defined()) continue;
    bad += test::differing(all[v], it->second);
    ++n;
  }
  if (values) *values = n;
  return bad;
}

TEST(BertSim, EqualsThePtqProgramBitForBit) {
  auto m = models::load_bert_for_question_answering(test::golden_path("bert_tiny"));
  m->eval();
  const auto& c = m->bert->config;
  const compile::BertProgramSpec spec = spec_of(c, 32);
  const runtime::Graph fp32 = compile::bert_qa_program(*m, spec);
  std::vector<std::vector<Tensor>> samples;
  for (uint64_t k = 0; k < 4; ++k) samples.push_back(batch(c.vocab_size, 2, 32 - int64_t(k), 500 + k).inputs());
  for (bool integer_gelu : {false, true}) {
    quant::BertStaticOptions so;
    so.integer_gelu = integer_gelu;
    const runtime::Graph g = quant::quantize_bert_static(fp32, samples, so);
    quant::BertStaticOptions read;
    const quant::BertStaticParams params = quant::bert_static_params(g, &read);
    EXPECT_EQ(read.integer_gelu, integer_gelu);
    quant::BertStaticSim sim(*m, spec, read);
    sim.set_params(params);
    runtime::Program p(g, "static");
    for (int64_t S : {32, 9, 1}) {
      int64_t values = 0;
      EXPECT_EQ(compare(p, sim, batch(c.vocab_size, 3, S, 900 + uint64_t(S)), &values), 0) << "S " << S;
      EXPECT_EQ(values, 10 * c.num_hidden_layers) << "every simulated value has its codes in the program";
    }
    // Through a file: the ranges read back from it simulate it.
    const test::TempDir dir("bert_sim");
    const std::string path = dir / "static.finch";
    runtime::write_program(g, path);
    runtime::Program back(runtime::read_program(path), path);
    quant::BertStaticSim sim2(*m, spec, read);
    sim2.set_params(quant::bert_static_params(back.graph()));
    EXPECT_EQ(compare(back, sim2, batch(c.vocab_size, 2, 20, 77)), 0);
  }
}

// A head-pruned model (compress/ leaves layer l with c.layer_heads[l] heads of the config's head
// width): the simulation takes each layer's head count from its attention width, as the program
// does, so the two stay equal bit for bit. Before, it split every layer into the config's heads.
TEST(BertSim, HeadPrunedModelEqualsItsProgram) {
  models::BertConfig c;
  c.vocab_size = 60, c.hidden_size = 32, c.num_hidden_layers = 2, c.num_attention_heads = 4;
  c.intermediate_size = 48, c.max_position_embeddings = 32, c.initializer_range = 0.2;
  c.layer_heads = {1, 3};
  c.layer_intermediate_sizes = {24, 40};
  models::BertForQuestionAnswering model(c, false, 21);
  model.eval();
  const compile::BertProgramSpec spec = spec_of(c, 24);
  const runtime::Graph fp32 = compile::bert_qa_program(model, spec);
  std::vector<std::vector<Tensor>> samples;
  for (uint64_t k = 0; k < 3; ++k) samples.push_back(batch(c.vocab_size, 2, 24, 40 + k).inputs());
  const runtime::Graph g = quant::quantize_bert_static(fp32, samples, {});
  quant::BertStaticOptions read;
  const quant::BertStaticParams params = quant::bert_static_params(g, &read);
  quant::BertStaticSim sim(model, spec, read);
  sim.set_params(params);
  runtime::Program p(g, "static");
  for (int64_t S : {24, 7}) {
    int64_t values = 0;
    EXPECT_EQ(compare(p, sim, batch(c.vocab_size, 3, S, 70 + uint64_t(S)), &values), 0) << "S " << S;
    EXPECT_EQ(values, 10 * c.num_hidden_layers);
  }
}

// Factorized encoder Linears (config key finch_layer_ranks; compress/lowrank.h's Sequential of
// Linear(in, r, no bias) and Linear(r, out)): the program runs two qlinear nodes through the
// rank-r activation, and so does the simulation, with the codes of both ("<linear>.0.out",
// "<linear>.1.out") compared. Every kind of Linear is factorized in some layer (Q/K/V, whose
// second half the attention reads symmetrically; the attention output; the FFN in and out), one
// layer keeps dense ones, and a second model is pruned as well (fewer heads and FFN neurons).
TEST(BertSim, FactorizedModelEqualsItsProgram) {
  for (bool pruned : {false, true}) {
    models::BertConfig c;
    c.vocab_size = 60, c.hidden_size = 32, c.num_hidden_layers = 3, c.num_attention_heads = 4;
    c.intermediate_size = 48, c.max_position_embeddings = 32, c.initializer_range = 0.2;
    if (pruned) c.layer_heads = {2, 3, 4}, c.layer_intermediate_sizes = {24, 40, 48};
    c.layer_ranks = {{"attention.self.query", {5, 0, 0}}, {"attention.self.key", {5, 0, 3}},
                     {"attention.self.value", {0, 0, 7}}, {"attention.output.dense", {4, 0, 6}},
                     {"intermediate.dense", {0, 0, 9}},   {"output.dense", {8, 0, 2}}};
    c.validate("test");
    models::BertForQuestionAnswering model(c, false, 31 + pruned);
    model.eval();
    const compile::BertProgramSpec spec = spec_of(c, 24);
    const runtime::Graph fp32 = compile::bert_qa_program(model, spec);
    std::vector<std::vector<Tensor>> samples;
    for (uint64_t k = 0; k < 3; ++k) samples.push_back(batch(c.vocab_size, 2, 24, 60 + k).inputs());
    const runtime::Graph g = quant::quantize_bert_static(fp32, samples, {});
    const int factorized = 9;  // Linears with a rank above
    int64_t qlinear = 0;
    for (const auto& n : g.nodes) qlinear += n.op == "qlinear";
    EXPECT_EQ(qlinear, 6 * c.num_hidden_layers + factorized) << "a factorized Linear is two qlinear nodes";
    quant::BertStaticOptions read;
    const quant::BertStaticParams params = quant::bert_static_params(g, &read);
    quant::BertStaticSim sim(model, spec, read);
    EXPECT_EQ(sim.value_names().size(), size_t(10 * c.num_hidden_layers + factorized));
    EXPECT_EQ(params.size(), sim.value_names().size()) << "the program codes exactly the simulated values";
    EXPECT_EQ(params.at("bert.encoder.layer.0.attention.self.query.1.out").zero_point[0], 0)
        << "the attention reads the factorized query's second half";
    sim.set_params(params);
    runtime::Program p(g, "static");
    for (int64_t S : {24, 7}) {
      int64_t values = 0;
      EXPECT_EQ(compare(p, sim, batch(c.vocab_size, 3, S, 80 + uint64_t(S)), &values), 0) << "S " << S;
      EXPECT_EQ(values, 10 * c.num_hidden_layers + factorized) << (pruned ? "pruned" : "dense widths");
    }
    // Moving the rank-r range of one factorized Linear in the simulation is caught.
    quant::BertStaticParams moved = params;
    moved.at("bert.encoder.layer.2.output.dense.0.out").scale[0] *= 1.01f;
    sim.set_params(moved);
    EXPECT_GT(compare(p, sim, batch(c.vocab_size, 2, 24, 5)), 0);
  }
}

// QAT of a factorized model: the observers key the rank-r values too (the attention's inputs
// symmetric), and the exported program equals the simulation.
TEST(BertSim, FactorizedQatExportEqualsTheSimulation) {
  models::BertConfig c;
  c.vocab_size = 50, c.hidden_size = 16, c.num_hidden_layers = 1, c.num_attention_heads = 2;
  c.intermediate_size = 32, c.max_position_embeddings = 16, c.initializer_range = 0.2;
  c.layer_ranks = {{"attention.self.value", {3}}, {"intermediate.dense", {5}}};
  models::BertForQuestionAnswering model(c, false, 8);
  model.eval();
  const compile::BertProgramSpec spec = spec_of(c, 12);
  quant::BertStaticSim sim(model, spec);
  sim.enable_observers(true);
  {
    NoGradGuard ng;
    for (uint64_t k = 0; k < 3; ++k) {
      const Batch x = batch(c.vocab_size, 2, 12, 30 + k);
      sim.forward(x.ids, x.types, x.mask);
    }
  }
  sim.enable_observers(false);
  ASSERT_TRUE(sim.ready());
  EXPECT_EQ(sim.params().at("bert.encoder.layer.0.attention.self.value.1.out").zero_point[0], 0);
  const runtime::Graph g = quant::lower_bert_static(compile::bert_qa_program(model, spec), sim.params());
  runtime::Program p(g, "qat");
  EXPECT_EQ(compare(p, sim, batch(c.vocab_size, 2, 12, 99)), 0);
}

// The dynamic int8 program (every Linear a per-row dq_linear, the word/type tables per-row int8)
// against bert_dynamic_sim_forward: the logits and every Linear, attention, activation and
// LayerNorm output equal bit for bit, for the golden BERT and for a factorized + pruned one with
// each activation the program takes, at full and padded lengths, on the optimized and the
// reference kernels; a weight moved in the program is caught.
// The simulation's per-row dq_linear equals the scalar reference bit for bit: rows of very
// different ranges (a constant row too), K up to 4096 with a row of weights 127 (sums past 2^24,
// where float(acc) rounds), with and without a bias.
TEST(BertSim, DqLinearRowsEqualsTheReference) {
  Generator gen(4);
  for (int64_t K : {1, 7, 64, 4096}) {
    const int64_t OC = 9, R = 6;
    std::vector<float> x(static_cast<size_t>(R * K)), b(static_cast<size_t>(OC)), s_w(static_cast<size_t>(OC));
    std::vector<int8_t> w(static_cast<size_t>(OC * K));
    for (int64_t r = 0; r < R; ++r)
      for (int64_t k = 0; k < K; ++k)
        x[size_t(r * K + k)] = r == 2 ? 0.5f : std::fabs(float(gen.normal())) * std::pow(10.f, float(r - 3));
    for (auto& v : w) v = int8_t(int(gen.next_u64() % 255) - 127);
    for (int64_t k = 0; k < K; ++k) w[size_t(k)] = 127;  // row 0: at K 4096 its sums pass 2^24
    for (int64_t o = 0; o < OC; ++o) b[size_t(o)] = float(gen.normal()), s_w[size_t(o)] = 0.001f * float(o + 1);
    Tensor wt = empty({OC, K}, DType::i8);
    std::memcpy(wt.data<int8_t>(), w.data(), w.size());
    const Tensor xt = from_vector(x, {2, R / 2, K});
    for (bool with_bias : {true, false}) {
      const Tensor bias = with_bias ? from_vector(b, {OC}) : Tensor();
      EXPECT_EQ(test::differing(quant::bert_dq_linear_rows(xt, wt, s_w, bias),
                                quant::reference::dq_linear_rows(xt, wt, s_w, bias, "none")),
                0)
          << "K " << K << (with_bias ? " bias" : "");
    }
  }
}

TEST(BertSim, DynamicProgramEqualsItsSimulation) {
  auto golden = models::load_bert_for_question_answering(test::golden_path("bert_tiny"));
  models::BertConfig c;
  c.vocab_size = 60, c.hidden_size = 32, c.num_hidden_layers = 2, c.num_attention_heads = 4;
  c.intermediate_size = 48, c.max_position_embeddings = 32, c.initializer_range = 0.2;
  c.layer_heads = {3, 4};
  c.layer_ranks = {{"attention.self.query", {5, 0}}, {"output.dense", {0, 7}}};
  for (const char* act : {"gelu", "gelu_new", "relu"}) {
    c.hidden_act = act;
    auto small = std::make_shared<models::BertForQuestionAnswering>(c, false, 12);
    for (auto* m : {golden.get(), small.get()}) {
      if (m == golden.get() && std::string(act) != "gelu") continue;
      m->eval();
      const models::BertConfig& mc = m->bert->config;
      const compile::BertProgramSpec spec = spec_of(mc, 24);
      runtime::Graph g = compile::bert_qa_program(*m, spec);
      compile::DynamicQuantOptions o;
      o.per_row_activations = true;
      compile::quantize_dynamic_graph(g, o);
      for (bool reference : {false, true}) {
        runtime::ProgramOptions po;
        po.reference_kernels = reference;
        runtime::Program p(g, "dynamic", po);
        for (int64_t S : {24, 7}) {
          const Batch x = batch(mc.vocab_size, 3, S, 300 + uint64_t(S));
          NoGradGuard ng;
          const std::vector<Tensor> all = p.run_all(x.inputs());
          std::map<std::string, Tensor> values;
          const quant::BertSimOutputs out = quant::bert_dynamic_sim_forward(*m, spec, x.ids, x.types, x.mask, &values);
          EXPECT_EQ(test::differing(all[size_t(g.outputs[0])], out.start_logits), 0) << act << " S " << S;
          EXPECT_EQ(test::differing(all[size_t(g.outputs[1])], out.end_logits), 0) << act << " S " << S;
          int64_t compared = 0, bad = 0;
          for (size_t v = 0; v < g.values.size(); ++v) {
            const auto it = values.find(g.values[v].name);
            if (it == values.end() || g.values[v].is_constant()) continue;
            ASSERT_TRUE(all[v].defined()) << g.values[v].name;
            bad += test::differing(all[v], it->second.contiguous());
            ++compared;
          }
          EXPECT_EQ(bad, 0) << act << (reference ? " reference" : " optimized") << " S " << S;
          // Per layer 6 Linears (+1 per factorized one), attention, activation, 2 LayerNorms; the
          // embeddings' LayerNorm and the QA head.
          int64_t factorized = 0;
          for (const auto& [name, ranks] : mc.layer_ranks)
            for (int64_t r : ranks) factorized += r > 0;
          EXPECT_EQ(compared, 10 * mc.num_hidden_layers + factorized + 2);
        }
      }
      // A weight code moved in the program.
      runtime::Graph moved = g;
      for (auto& n : moved.nodes)
        if (n.op == "dq_linear" && n.name == "bert.encoder.layer.1.intermediate.dense") {
          runtime::Value& w = moved.values[size_t(n.inputs[1])];
          w.data = w.data.clone();
          w.data.data<int8_t>()[0] = int8_t(w.data.data<int8_t>()[0] == 5 ? 6 : 5);
        }
      runtime::Program p(moved, "moved");
      const Batch x = batch(mc.vocab_size, 2, 24, 1);
      NoGradGuard ng;
      const std::vector<Tensor> all = p.run_all(x.inputs());
      const quant::BertSimOutputs out = quant::bert_dynamic_sim_forward(*m, spec, x.ids, x.types, x.mask);
      EXPECT_GT(test::differing(all[size_t(moved.outputs[0])], out.start_logits), 0) << act;
    }
  }
}

TEST(BertSim, PerturbedConstantIsDetected) {
  auto m = models::load_bert_for_question_answering(test::golden_path("bert_tiny"));
  m->eval();
  const auto& c = m->bert->config;
  const compile::BertProgramSpec spec = spec_of(c, 24);
  const runtime::Graph fp32 = compile::bert_qa_program(*m, spec);
  const runtime::Graph g = quant::quantize_bert_static(fp32, {batch(c.vocab_size, 2, 24, 5).inputs()});
  const Batch x = batch(c.vocab_size, 2, 24, 6);
  runtime::Program p(g, "static");
  // Program side: one int32 bias of the last layer's FFN output moved by a few output steps.
  runtime::Graph bent = g;
  bool moved = false;
  for (const auto& n : bent.nodes)
    if (n.op == "qlinear" && n.name == "bert.encoder.layer.1.output.dense") {
      runtime::Value& b = bent.values[size_t(n.inputs[2])];
      b.data = b.data.clone();
      b.data.data<int32_t>()[0] += 1 << 14;
      moved = true;
    }
  ASSERT_TRUE(moved);
  runtime::Program pb(bent, "bent");
  quant::BertStaticSim sim(*m, spec);
  sim.set_params(quant::bert_static_params(g));
  EXPECT_EQ(compare(p, sim, x), 0);
  EXPECT_GT(compare(pb, sim, x), 0) << "a changed bias in the program must show";
  // Simulation side: one range's scale a part in 10^4 off.
  quant::BertStaticParams q = quant::bert_static_params(g);
  q.at("bert.encoder.layer.0.attention.self.out").scale[0] *= 1.0001f;
  sim.set_params(q);
  EXPECT_GT(compare(p, sim, x), 0) << "a changed range in the simulation must show";
}

// A tiny random BERT trained a few steps with the simulation in its forward.
TEST(BertSim, QatLowersTheLossAndItsExportEqualsTheSimulation) {
  models::BertConfig c;
  c.vocab_size = 60, c.hidden_size = 32, c.num_hidden_layers = 2, c.num_attention_heads = 4;
  c.intermediate_size = 64, c.max_position_embeddings = 32, c.initializer_range = 0.1;
  c.hidden_dropout_prob = 0, c.attention_probs_dropout_prob = 0;
  models::BertForQuestionAnswering model(c, false, 11);
  const int64_t B = 4, S = 16;
  const compile::BertProgramSpec spec = spec_of(c, S);
  quant::BertStaticSim sim(model, spec);
  sim.enable_observers(true, 0.1);
  const Batch x = batch(c.vocab_size, B, S, 3);
  const Tensor st = from_vector<int64_t>({1, 4, 7, 2}, {B}), en = from_vector<int64_t>({3, 5, 9, 2}, {B});
  optim::Adam opt(model.parameters(), {.lr = 3e-3});
  auto loss_of = [&] {
    const quant::BertSimOutputs o = sim.forward(x.ids, x.types, x.mask);
    return (cross_entropy(o.start_logits, st) + cross_entropy(o.end_logits, en)) * 0.5;
  };
  model.train();
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    if (step == 10) sim.enable_observers(false);  // ranges frozen for the rest, as the CNN QAT
    opt.zero_grad();
    const Tensor loss = loss_of();
    if (step == 0) first = loss.item();
    last = loss.item();
    backward(loss);
    if (step == 0)
      for (auto& [name, t] : model.named_parameters()) {
        // The key bias adds q·b_k to a whole row of scores, which the softmax ignores: no gradient.
        if (name.find("attention.self.key.bias") != std::string::npos) continue;
        ASSERT_TRUE(t.grad().defined()) << name << ": the straight-through gradient must reach every parameter";
        EXPECT_GT(test::max_abs_diff(t.grad(), zeros_like(t.grad())), 0.0f) << name;
      }
    opt.step();
  }
  EXPECT_LT(last, 0.7 * first) << "QAT steps lower the loss";
  EXPECT_TRUE(sim.ready());
  // Export: the fp32 program of the trained weights lowered with the simulation's ranges.
  model.eval();
  const runtime::Graph g = quant::lower_bert_static(compile::bert_qa_program(model, spec), sim.params());
  runtime::Program p(g, "qat-export");
  EXPECT_EQ(compare(p, sim, x), 0);
  EXPECT_EQ(compare(p, sim, batch(c.vocab_size, 2, 7, 8)), 0);
  // The ranges survive a checkpoint's entries.
  quant::BertStaticSim again(model, spec);
  again.load_state(sim.state(), "ranges.safetensors");
  EXPECT_EQ(compare(p, again, x), 0);
}

TEST(BertSim, StraightThroughHeadGradientIsTheFloatHeads) {
  // d Σ start_logits / d qa_outputs.bias = (number of tokens, 0): the head's logits pass the
  // gradient unchanged; d / d qa_outputs.weight[0] = Σ over tokens of the head's input.
  models::BertConfig c;
  c.vocab_size = 40, c.hidden_size = 16, c.num_hidden_layers = 1, c.num_attention_heads = 2;
  c.intermediate_size = 32, c.max_position_embeddings = 16;
  models::BertForQuestionAnswering model(c, false, 5);
  model.eval();
  quant::BertStaticSim sim(model, spec_of(c, 8));
  sim.enable_observers(true);
  const Batch x = batch(c.vocab_size, 2, 8, 9);
  backward(finch::sum(sim.forward(x.ids, x.types, x.mask).start_logits));
  const std::vector<float> db = model.qa_outputs->bias.grad().to_vector<float>();
  EXPECT_EQ(db[0], 16.0f);
  EXPECT_EQ(db[1], 0.0f);
}

// The rule of the qat_bert_straight_through node (registered in test_fake_quant.cc's list): the
// exact value forward; backward dy where the surrogate is inside the output's range, 0 where
// clamped; everything with no range.
TEST(BertSim, StraightThroughFormula) {
  quant::QParams p;
  p.scale = {0.1f}, p.zero_point = {-3}, p.qmin = -128, p.qmax = 127;  // codes round(x/s) − 3 in [-128, 127]
  const std::vector<float> xs = {-20.f, -12.5f, -1.f, 0.f, 4.f, 13.04f, 13.06f, 30.f};  // 13.04 rounds to code 127
  const std::vector<float> want = {0, 1, 1, 1, 1, 1, 0, 0};
  for (bool ranged : {true, false}) {
    Tensor x = from_vector<float>(xs, {8}).set_requires_grad(true);
    const Tensor exact = from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8}, {8});
    const Tensor y = quant::bert_straight_through(finch::mul(x, 1.0), exact, ranged ? &p : nullptr);
    EXPECT_EQ(test::differing(y, exact), 0);
    const Tensor w = from_vector<float>({2, 3, 4, 5, 6, 7, 8, 9}, {8});
    backward(finch::sum(finch::mul(y, w)));
    const std::vector<float> g = x.grad().to_vector<float>();
    for (size_t i = 0; i < xs.size(); ++i)
      EXPECT_EQ(g[i], ranged ? want[i] * float(i + 2) : float(i + 2)) << "x = " << xs[i] << (ranged ? "" : " (no range)");
  }
}

TEST(BertSim, HostileInputsGetOneSentence) {
  models::BertConfig c;
  c.vocab_size = 40, c.hidden_size = 16, c.num_hidden_layers = 1, c.num_attention_heads = 2;
  c.intermediate_size = 32, c.max_position_embeddings = 16;
  models::BertForQuestionAnswering model(c, false, 5);
  compile::BertProgramSpec s = spec_of(c, 8);
  quant::BertStaticSim sim(model, s);
  const Batch x = batch(c.vocab_size, 1, 8, 1);
  EXPECT_ERROR_HAS(sim.forward(x.ids, x.types, x.mask), "no activation range");
  EXPECT_ERROR_HAS(sim.set_params({}), "no activation range for value 'bert.embeddings.LayerNorm.out'");
  // An encoder Linear replaced by something else than a Linear or its factorization.
  {
    models::BertForQuestionAnswering other(c, false, 6);
    for (auto& [name, m] : other.named_modules())
      if (name == "bert.encoder.layer.0.attention.self")
        m->replace_child("key", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
                                    std::make_shared<nn::Linear>(16, 4), std::make_shared<nn::Linear>(4, 16)}));
    EXPECT_ERROR_HAS(quant::BertStaticSim(other, s), "expected module 'bert.encoder.layer.0.attention.self.key' to be a "
                                                     "Linear or a factorized Linear");
  }
  s.hidden_act = "relu";
  EXPECT_ERROR_HAS(quant::BertStaticSim(model, s), "expected hidden_act gelu");
  EXPECT_ERROR_HAS(quant::bert_static_params(compile::bert_qa_program(model, spec_of(c, 8))), "int8-static");
  sim.enable_observers(true);
  EXPECT_ERROR_HAS(sim.forward(x.ids, x.types, from_vector<int64_t>(std::vector<int64_t>(8, 2), {1, 8})), "0 or 1");
  // Ranges from a checkpoint are checked.
  EXPECT_ERROR_HAS(sim.load_state({{"qat_range.bert.embeddings.LayerNorm.out", from_vector<float>({1.f, -1.f}, {2})}},
                                  "r.safetensors"),
                   "lo <= hi");
}

}  // namespace
