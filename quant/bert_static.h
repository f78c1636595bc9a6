// Static int8 for a BERT question-answering program (compile/bert_program.h): activation ranges
// calibrated by observers on sample inputs, then every encoder Linear (Q, K, V, attention output,
// FFN in and out) a qlinear with int8 per-channel weights and static input/output scales, the
// attention a qattention (int8 Q·Kᵀ and P·V, integer softmax), the FFN's GELU a qgelu table;
// LayerNorm, the residual adds and the embeddings' sums stay float (docs/bert-integer.md gives
// the measured numbers behind each choice). The QA head and the embedding tables then go
// through quantize_dynamic_graph (dq_linear, qembedding) as in the dynamic program.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "kernels/qparams.h"
#include "runtime/graph.h"

namespace finch::quant {

struct BertStaticOptions {
  std::string observer = "minmax";  // any make_observer name (minmax, percentile, histogram-mse, ...)
  bool integer_gelu = false;        // qgelu's I-BERT integer form instead of the float table
};

struct BertStaticReport {
  int linear = 0, attention = 0, gelu = 0;  // nodes turned int8
  int64_t samples = 0;                      // calibration runs
};

// `fp32`: a program of compile::bert_qa_program (meta.model "bert_qa", precision "fp32").
// `samples`: calibration inputs, each {input_ids, token_type_ids, attention_mask} as the program
// takes them. Returns the static int8 program (meta.precision "int8-static", meta.calibration
// {observer, samples, gelu}); fails with one sentence on an empty sample list, a program that is
// not an fp32 BERT program, or an encoder layer whose pattern this pass does not know.
runtime::Graph quantize_bert_static(const runtime::Graph& fp32, const std::vector<std::vector<Tensor>>& samples,
                                    const BertStaticOptions& options = {}, BertStaticReport* report = nullptr);

// The two halves of quantize_bert_static, so that the activation ranges may come from elsewhere
// (a QAT model, quant/bert_sim.h) and a program's ranges may be read back for its simulation.
// Keys are the fp32 program's value names (compile/bert_program.h: "<node>.out", e.g.
// bert.encoder.layer.0.attention.self.query.out); the values every encoder Linear reads and
// writes, the attention outputs and the GELU outputs.
using BertStaticParams = std::map<std::string, QParams>;
// Observes those values of the fp32 program over `samples` (observer `options.observer`; the
// values read by the attention symmetric, the rest affine, all int8 per tensor).
BertStaticParams calibrate_bert_static(const runtime::Graph& fp32, const std::vector<std::vector<Tensor>>& samples,
                                       const BertStaticOptions& options = {}, BertStaticReport* report = nullptr);
// The rewrite with given ranges; a value the rewrite needs and `params` lacks, or a range the
// attention cannot take (a non-zero zero point), fails with one sentence naming it.
runtime::Graph lower_bert_static(const runtime::Graph& fp32, const BertStaticParams& params,
                                 const BertStaticOptions& options = {}, BertStaticReport* report = nullptr);
// The ranges a static program carries (its coded values "<fp32 name>.q"), keyed by fp32 name; and
// its options (meta.calibration: the GELU form). Fails on a program that is not int8-static.
BertStaticParams bert_static_params(const runtime::Graph& program, BertStaticOptions* options = nullptr);
// The names of the values bert_static_params / calibrate_bert_static key, for a model of `layers`
// encoder layers (10 per layer), in forward order.
std::vector<std::string> bert_static_value_names(int64_t layers);
// True for the values the attention reads (Q, K, V outputs): quantized symmetrically.
bool bert_static_symmetric(const std::string& value_name);
// The activation spec of such a value (int8 per tensor, full range; symmetric or affine).
QSpec bert_activation_spec(bool symmetric);
// int8 symmetric narrow weights, one scale per output row: what the static program stores for an
// encoder Linear's weight [OC, K].
QParams bert_weight_params(const Tensor& w);

}  // namespace finch::quant
