// The simulated (fake-quant) model of the static int8 BERT encoder (quant/bert_static.h): an
// autograd forward over a BertForQuestionAnswering's modules (Hugging Face names) that computes
// exactly what the deployed program computes, so that a program's logits equal the simulation's
// bit for bit and QAT trains the model the program runs.
//
// How it is exact by construction, not by tolerance (as quant/qat_rnn does for the LSTM): every
// quantized piece computes its forward value with the integer arithmetic of the program's op —
// integer_linear (exact integer accumulation, the same int32 bias and fixed-point requantization
// as qlinear), kernels::qs8_attention (the qattention op's kernel: int8 Q·Kᵀ, integer softmax,
// P·V), the qgelu table, reference::dq_linear_rows for the per-row int8 QA head, per-row int8
// word/type embedding rows; the float parts (the embeddings' sums, the residual adds, LayerNorm)
// call the kernels the program's float ops call. The gradient comes from a float surrogate of each
// piece (the float op on the fake-quantized inputs and weights) through a straight-through node
// that passes it where the surrogate was inside the output's int8 range and stops it where the
// quantizer clamped (fake_quant's rule, Bengio et al. 2013).
//
// Ranges: keyed by the fp32 program's value names (bert_static_value_names). Either set from a
// program (bert_static_params: the simulation of a PTQ program, for verification) or observed
// during QAT by moving-average min/max observers (PyTorch's MovingAverageMinMaxObserver: the first
// batch sets the range, each later one moves it by `averaging`), frozen by enable_observers(false).
// lower_bert_static(fp32 program, params()) then gives the program that equals this simulation.
//
// Factorized Linears (compress/lowrank.h, config key finch_layer_ranks: Sequential(Linear(in, r,
// no bias), Linear(r, out)) where a dense Linear was) are simulated as the program computes them:
// two qlinear units through the rank-r activation, whose codes are the values "<linear>.0.out" and
// "<linear>.1.out" (the fp32 program's names) instead of "<linear>.out"; the second one's output is
// what the next piece reads (symmetric where the attention reads it).
//
// Not simulated: attention-probability dropout (the integer attention has no float P to drop);
// the hidden dropouts are applied on the simulated values in training mode (identity in eval).
//
// Shapes: B batch, S sequence, H hidden, I intermediate.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "compile/bert_program.h"
#include "quant/bert_static.h"

namespace finch::quant {

// The straight-through node of every quantized piece: returns `exact` (computed without a tape) as
// the forward value and gives `surrogate` the incoming gradient where the surrogate's code
// round(x/s) + z lay inside [qmin, qmax] (fake_quant's rule), 0 where the quantizer clamped it
// (p null: everywhere).
Tensor bert_straight_through(const Tensor& surrogate, Tensor exact, const QParams* p);

struct BertSimOutputs {
  Tensor start_logits, end_logits;  // f32 [B, S]
};

// reference::dq_linear_rows (the per-row dq_linear) with its sums done as one exact f64 matrix
// product instead of scalar loops: each row of x quantized from its own min/max, Σ (q − z)·w
// (exact: every partial sum is an integer below 2^53), wrapped to int32 as the reference does,
// then fma(float(acc), s_x·s_w[oc], bias[oc]). Equal to the reference bit for bit (tested), and
// fast enough to simulate BERT on SQuAD windows. x f32 [.., K], w i8 [OC, K], bias f32 [OC] or none.
Tensor bert_dq_linear_rows(const Tensor& x, const Tensor& w, const std::vector<float>& s_w, const Tensor& bias);

// The dynamic int8 BERT program (compile::quantize_dynamic_graph with per-row activations: every
// Linear a dq_linear with int8 weights of one scale per row and each row of its input quantized at
// run time from its own min/max; the word and type tables per-row int8) as a forward over the same
// modules, for verification (no gradient). Each dq_linear is reference::dq_linear_rows on
// quantize_matrix's codes (the op's kernels equal it on every target), a factorized Linear two of
// them; the rest are the float kernels the program's ops call, in their order (embedding sums,
// attention on head views, GELU, residual adds, LayerNorm). `values`, when given, receives the f32
// output of every Linear (each factor of a factorized one), attention, activation and LayerNorm,
// keyed by the program's value names ("<node>.out"). Fails with one sentence on a missing module,
// an activation other than gelu, gelu_new or relu, or token ids out of range.
BertSimOutputs bert_dynamic_sim_forward(nn::Module& qa_model, const compile::BertProgramSpec& spec,
                                        const Tensor& input_ids, const Tensor& token_type_ids,
                                        const Tensor& attention_mask, std::map<std::string, Tensor>* values = nullptr);

class BertStaticSim {
 public:
  // `qa_model`: a BertForQuestionAnswering (bert.embeddings.*, bert.encoder.layer.N.*,
  // qa_outputs), borrowed, with any encoder Linear dense or factorized; `spec`: its layers, heads
  // and hidden_act (only "gelu" has a static program); `options.integer_gelu` picks the qgelu form.
  // Fails with one sentence on a missing module or another activation.
  BertStaticSim(nn::Module& qa_model, const compile::BertProgramSpec& spec, const BertStaticOptions& options = {});

  // Ranges from a program or a checkpoint; every name of value_names() must be there.
  void set_params(const BertStaticParams& p);
  // The simulated values in forward order: bert_static_value_names(layers) for a dense model,
  // with "<linear>.0.out", "<linear>.1.out" in place of "<linear>.out" for a factorized Linear.
  const std::vector<std::string>& value_names() const { return names_; }
  const BertStaticParams& params() const { return params_; }
  bool ready() const { return params_.size() == names_.size(); }
  // On: each forward first moves each range toward the surrogate's min/max (the first one sets
  // it), then quantizes with the moved range.
  void enable_observers(bool on, double averaging = 0.01);
  bool observers_enabled() const { return observe_; }
  const BertStaticOptions& options() const { return options_; }

  // input_ids, token_type_ids, attention_mask: I64 [B, S] (the mask 0/1). `codes`, when given,
  // receives the int8 codes of every simulated value (keyed by name; verification compares them
  // with the program's "<name>.q" values).
  BertSimOutputs forward(const Tensor& input_ids, const Tensor& token_type_ids, const Tensor& attention_mask,
                         std::map<std::string, Tensor>* codes = nullptr);

  // The ranges as tensors "<name>" = f32 [2] (lo, hi) with the observers' state, for checkpoints;
  // load checks every number (one sentence naming the file).
  std::vector<std::pair<std::string, Tensor>> state() const;
  void load_state(const std::vector<std::pair<std::string, Tensor>>& entries, const std::string& file);

 private:
  struct Coded;
  Coded quantize_input(const Tensor& h, const std::string& name, std::map<std::string, Tensor>* codes);
  Coded linear_unit(const Coded& x, const std::string& module, const std::string& out,
                    std::map<std::string, Tensor>* codes);
  // The dense Linear at `path` (one unit, output "<path>.out") or its factorization (two units).
  Coded linear_block(const Coded& x, const std::string& path, std::map<std::string, Tensor>* codes);
  bool factorized(const std::string& path) const { return factorized_.count(path) > 0; }
  Coded attention_unit(const Coded& q, const Coded& k, const Coded& v, const Tensor& mask,
                       const std::string& out, std::map<std::string, Tensor>* codes);
  Coded gelu_unit(const Coded& x, const std::string& out, std::map<std::string, Tensor>* codes);
  const QParams& observe(const std::string& name, const Tensor& surrogate);
  nn::Module& module(const std::string& path) const;

  nn::Module* model_;
  compile::BertProgramSpec spec_;
  int64_t head_dim_ = 0;  // hidden / spec.heads: every layer's heads have this width
  BertStaticOptions options_;
  std::vector<std::string> names_;
  std::set<std::string> symmetric_;   // the values the attention reads (zero point 0)
  std::set<std::string> factorized_;  // paths of the factorized encoder Linears
  std::map<std::string, nn::Module*> modules_;
  BertStaticParams params_;
  std::map<std::string, std::pair<float, float>> ranges_;  // observed lo, hi
  bool observe_ = false;
  double averaging_ = 0.01;
};

}  // namespace finch::quant
