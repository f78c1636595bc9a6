// Static int8 for a BERT question-answering program (compile/bert_program.h): activation ranges
// calibrated by observers on sample inputs, then every encoder Linear (Q, K, V, attention output,
// FFN in and out) a qlinear with int8 per-channel weights and static input/output scales, the
// attention a qattention (int8 Q·Kᵀ and P·V, integer softmax), the FFN's GELU a qgelu table;
// LayerNorm, the residual adds and the embeddings' sums stay float (docs/bert-integer.md gives
// the measured numbers behind each choice). The QA head and the embedding tables then go
// through quantize_dynamic_graph (dq_linear, qembedding) as in the dynamic program.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"
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

}  // namespace finch::quant
