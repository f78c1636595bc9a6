// bert_sim_check.h: program vs simulation, value by value.
#include "apps/lib/bert_sim_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>

#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::apps {

compile::BertProgramSpec bert_program_spec(const models::BertConfig& c, int64_t max_seq_length) {
  compile::BertProgramSpec s;
  s.layers = c.num_hidden_layers;
  s.heads = c.num_attention_heads;
  s.layer_norm_eps = c.layer_norm_eps;
  s.hidden_act = c.hidden_act;
  s.max_seq_length = max_seq_length;
  return s;
}

std::string SimCheck::summary() const {
  std::ostringstream s;
  s << "verify: " << windows << " windows; " << logits << " logits (" << logits_differ << " differ, max |diff| "
    << max_logit_diff << "), " << codes << (dynamic ? " f32 elements of " : " int8 codes of ") << values << " values ("
    << codes_differ
    << " differ): deployed " << (agree() ? "==" : "!=") << " simulated -> " << (agree() ? "AGREE" : "DIFFER");
  return s.str();
}

namespace {

// Elements whose bits differ (f32 or i8 of one shape); a shape mismatch counts every element.
int64_t differing(const Tensor& a_in, const Tensor& b_in, double* max_diff) {
  if (a_in.shape() != b_in.shape() || a_in.dtype() != b_in.dtype()) return std::max(a_in.numel(), b_in.numel());
  const Tensor a = a_in.contiguous(), b = b_in.contiguous();
  int64_t n = 0;
  if (a.dtype() == DType::f32) {
    const float *pa = a.data<float>(), *pb = b.data<float>();
    for (int64_t i = 0; i < a.numel(); ++i) {
      n += std::memcmp(pa + i, pb + i, sizeof(float)) != 0;
      if (max_diff) *max_diff = std::max(*max_diff, double(std::fabs(pa[i] - pb[i])));
    }
    return n;
  }
  const auto va = a.to_vector<int64_t>(), vb = b.to_vector<int64_t>();
  for (size_t i = 0; i < va.size(); ++i) n += va[i] != vb[i];
  return n;
}

// What both checks share: the logits, then each value of the program that `sim_name` maps to a
// simulated one (empty: not compared), and the windows. Returns the program's logits.
template <class SimName>
std::vector<Tensor> compare(const runtime::Program& program, const std::vector<Tensor>& all,
                            const quant::BertSimOutputs& o, const std::map<std::string, Tensor>& sim,
                            SimName sim_name, int64_t windows, SimCheck& c) {
  const runtime::Graph& g = program.graph();
  const Tensor start = all[size_t(g.outputs.at(0))], end = all[size_t(g.outputs.at(1))];
  c.logits_differ += differing(start, o.start_logits, &c.max_logit_diff) + differing(end, o.end_logits, &c.max_logit_diff);
  c.logits += start.numel() + end.numel();
  int64_t values = 0;
  for (size_t v = 0; v < g.values.size(); ++v) {
    if (g.values[v].is_constant() || !all[v].defined()) continue;
    const std::string name = sim_name(g.values[v].name, all[v]);
    const auto it = name.empty() ? sim.end() : sim.find(name);
    if (it == sim.end()) continue;
    c.codes_differ += differing(all[v], it->second, nullptr);
    c.codes += all[v].numel();
    ++values;
  }
  c.values = std::max(c.values, values);
  c.windows += windows;
  return {start, end};
}

}  // namespace

std::vector<Tensor> check_against_sim(runtime::Program& program, quant::BertStaticSim& sim,
                                      const std::vector<Tensor>& inputs, SimCheck& c) {
  NoGradGuard ng;
  const std::vector<Tensor> all = program.run_all(inputs);
  std::map<std::string, Tensor> codes;
  const quant::BertSimOutputs o = sim.forward(inputs.at(0), inputs.at(1), inputs.at(2), &codes);
  // The program's int8 codes are its values named "<simulated value>.q".
  const auto coded = [](const std::string& name, const Tensor&) {
    return name.size() >= 3 && name.compare(name.size() - 2, 2, ".q") == 0 ? name.substr(0, name.size() - 2)
                                                                         : std::string();
  };
  return compare(program, all, o, codes, coded, inputs.at(0).size(0), c);
}

std::vector<Tensor> check_against_dynamic_sim(runtime::Program& program, nn::Module& model,
                                              const compile::BertProgramSpec& spec, const std::vector<Tensor>& inputs,
                                              SimCheck& c) {
  NoGradGuard ng;
  c.dynamic = true;
  const std::vector<Tensor> all = program.run_all(inputs);
  std::map<std::string, Tensor> sim;
  const quant::BertSimOutputs o = quant::bert_dynamic_sim_forward(model, spec, inputs.at(0), inputs.at(1), inputs.at(2), &sim);
  // The program's f32 values under the simulation's names.
  const auto f32 = [](const std::string& name, const Tensor& t) {
    return t.dtype() == DType::f32 ? name : std::string();
  };
  return compare(program, all, o, sim, f32, inputs.at(0).size(0), c);
}

}  // namespace finch::apps
