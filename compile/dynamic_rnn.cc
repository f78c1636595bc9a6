// quantize_dynamic_graph (dynamic_rnn.h): the float recurrent, linear and embedding nodes of a
// program rewritten to their dynamic int8 forms, weights quantized per row here once.
#include "compile/dynamic_rnn.h"

#include "compile/passes.h"
#include "framework/error.h"
#include "kernels/qs8_rnn.h"

namespace finch::compile {

namespace {

using runtime::Graph;
using runtime::Node;
using runtime::Value;

bool constant_f32(const Graph& g, int32_t v, int64_t rank) {
  if (v < 0) return false;
  const Value& x = g.values[size_t(v)];
  return x.is_constant() && x.dtype == DType::f32 && int64_t(x.shape.size()) == rank;
}

// A new int8 constant holding weight v's rows quantized (symmetric narrow, one scale per row).
int32_t int8_rows(Graph& g, int32_t v, const char* op) {
  const Value& w = g.values[size_t(v)];
  const int64_t rows = w.shape[0], cols = w.shape[1];
  const quant::kernels::QMatrix q =
      quant::kernels::quantize_matrix(op, w.name.c_str(), w.data.contiguous().to_vector<float>(), rows, cols);
  Value c;
  c.name = w.name + ".int8";
  c.shape = w.shape;
  c.dtype = DType::i8;
  runtime::QuantInfo qi;
  qi.scale = q.s_w;
  qi.zero_point.assign(q.s_w.size(), 0);
  qi.axis = 0;
  qi.qmin = -127, qi.qmax = 127;
  c.quant = qi;
  c.data = from_vector(q.w, {rows, cols});
  return g.add_value(std::move(c));
}

int32_t input(const Node& n, size_t i) { return i < n.inputs.size() ? n.inputs[i] : -1; }

// lstm (5 inputs per direction, the 5th w_hr) or gru (4) -> the dq form: 4 per direction, and
// for an LSTM with a projection its w_hr (int8 per row too) and w_hr_reverse at inputs 10 and 11
// (runtime/ops.md).
bool rewrite_rnn(Graph& g, Node& n, bool lstm) {
  const size_t per = lstm ? 5 : 4;
  const bool two = input(n, 2 + per) >= 0;
  for (size_t d = 0; d < (two ? 2u : 1u); ++d) {
    const size_t o = 2 + d * per;
    if (!constant_f32(g, input(n, o), 2) || !constant_f32(g, input(n, o + 1), 2)) return false;
    for (size_t k = 2; k < 4; ++k)
      if (input(n, o + k) >= 0 && !constant_f32(g, input(n, o + k), 1)) return false;
    if (lstm && input(n, o + 4) >= 0 && !constant_f32(g, input(n, o + 4), 2)) return false;
  }
  const char* op = lstm ? "dq_lstm" : "dq_gru";
  std::vector<int32_t> in{n.inputs[0], input(n, 1)};
  std::vector<int32_t> hr;
  for (size_t d = 0; d < (two ? 2u : 1u); ++d) {
    const size_t o = 2 + d * per;
    in.push_back(int8_rows(g, n.inputs[o], op));
    in.push_back(int8_rows(g, n.inputs[o + 1], op));
    in.push_back(input(n, o + 2));
    in.push_back(input(n, o + 3));
    if (lstm && input(n, o + 4) >= 0) hr.push_back(int8_rows(g, n.inputs[o + 4], op));
  }
  if (!hr.empty()) {
    in.resize(10, -1);
    in.insert(in.end(), hr.begin(), hr.end());
  }
  n.op = op;
  n.inputs = std::move(in);
  return true;
}

}  // namespace

DynamicQuantReport quantize_dynamic_graph(Graph& g, const DynamicQuantOptions& options) {
  DynamicQuantReport r;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& n = g.nodes[i];
    if (n.op == "lstm" || n.op == "gru") {
      const bool lstm = n.op == "lstm";
      if (rewrite_rnn(g, g.nodes[i], lstm)) ++(lstm ? r.lstm : r.gru);
      else ++r.skipped;
    } else if (n.op == "linear") {
      if (!constant_f32(g, input(n, 1), 2) || (input(n, 2) >= 0 && !constant_f32(g, input(n, 2), 1))) {
        ++r.skipped;
        continue;
      }
      const int32_t w = int8_rows(g, n.inputs[1], "dq_linear");
      g.nodes[i].inputs[1] = w;
      g.nodes[i].op = "dq_linear";
      if (options.per_row_activations) g.nodes[i].attrs["per_row"] = true;
      ++r.linear;
    } else if (n.op == "embedding") {
      if (!constant_f32(g, input(n, 1), 2)) {
        ++r.skipped;
        continue;
      }
      const int32_t w = int8_rows(g, n.inputs[1], "qembedding");
      g.nodes[i].inputs[1] = w;
      g.nodes[i].op = "qembedding";
      ++r.embedding;
    }
  }
  remove_dead(g);
  return r;
}

int quantize_embeddings(Graph& g) {
  int n = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].op == "embedding" && constant_f32(g, input(g.nodes[i], 1), 2)) {
      const int32_t w = int8_rows(g, g.nodes[i].inputs[1], "qembedding");
      g.nodes[i].inputs[1] = w;
      g.nodes[i].op = "qembedding";
      ++n;
    }
  remove_dead(g);
  return n;
}

}  // namespace finch::compile
