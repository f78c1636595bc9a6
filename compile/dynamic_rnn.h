// Dynamic int8 quantization of a float program (PyTorch's quantize_dynamic, on the graph): each
// lstm / gru with constant weights becomes dq_lstm / dq_gru, each linear with a constant weight
// dq_linear, and each embedding qembedding. Weights become int8 with one scale per row (gate row,
// projection row, output channel, vocabulary row: kernels::quantize_matrix, symmetric narrow);
// activations are quantized at run time by the ops themselves (an LSTM projection's input, the
// cell output o·tanh(c'), one row per step like x and h), so nothing is calibrated.
#pragma once

#include "runtime/graph.h"

namespace finch::compile {

struct DynamicQuantReport {
  int lstm = 0, gru = 0, linear = 0, embedding = 0;
  int skipped = 0;  // recurrent / linear / embedding nodes left in float (non-constant weights)
};

struct DynamicQuantOptions {
  // dq_linear quantizes each row of its input from the row's own min/max (attribute per_row)
  // instead of the whole input at once: what a transformer needs, whose tokens' ranges differ
  // by orders of magnitude (one scale for 384 tokens would leave most of them a few codes).
  bool per_row_activations = false;
};

// Rewrites `g` in place (a captured fp32 graph, after the float passes) and drops the float
// weights no node reads any more.
DynamicQuantReport quantize_dynamic_graph(runtime::Graph& g, const DynamicQuantOptions& options = {});

// Only the embeddings: each embedding with a constant f32 weight becomes qembedding (int8 rows,
// one scale per row, as above): what QAT's per-row embedding fake quantization simulates
// (quant/qat_rnn.h). Returns how many.
int quantize_embeddings(runtime::Graph& g);

}  // namespace finch::compile
