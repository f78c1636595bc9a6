// Deployed == simulated for static int8 BERT programs: the program (its optimized kernels) and
// quant::BertStaticSim run on the same windows, every logit and every int8 code compared for
// equality of bits. Used by infer_squad --verify and by train_squad --qat after its export.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "compile/bert_program.h"
#include "models/bert.h"
#include "quant/bert_sim.h"
#include "runtime/executor.h"

namespace finch::apps {

// The program spec (layers, heads, eps, activation, longest sequence) of a BERT configuration.
compile::BertProgramSpec bert_program_spec(const models::BertConfig& c, int64_t max_seq_length);

struct SimCheck {
  int64_t windows = 0;
  int64_t logits = 0, logits_differ = 0;  // start and end logits
  int64_t codes = 0, codes_differ = 0;    // int8 codes (static) or f32 elements (dynamic) of the simulated values
  int64_t values = 0;                     // distinct values compared per run
  bool dynamic = false;                   // the values are f32 (a dynamic program's), not int8 codes
  double max_logit_diff = 0;
  bool agree() const { return windows > 0 && logits_differ == 0 && codes_differ == 0 && values > 0; }
  std::string summary() const;  // one line ending in AGREE or DIFFER
};

// Runs one batch {input_ids, token_type_ids, attention_mask} (I64 [B, S]) through both and adds
// the comparison to `c`. Returns the program's outputs (start, end logits).
std::vector<Tensor> check_against_sim(runtime::Program& program, quant::BertStaticSim& sim,
                                      const std::vector<Tensor>& inputs, SimCheck& c);

// The same for a dynamic int8 program (quant::bert_dynamic_sim_forward of `model` with `spec`):
// every logit, and every element of each f32 value the simulation names (the Linears', attention,
// activation and LayerNorm outputs) that the program computes, compared for equality of bits.
std::vector<Tensor> check_against_dynamic_sim(runtime::Program& program, nn::Module& model,
                                              const compile::BertProgramSpec& spec, const std::vector<Tensor>& inputs,
                                              SimCheck& c);

}  // namespace finch::apps
