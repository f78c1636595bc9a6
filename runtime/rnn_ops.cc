// The runtime's fp32 recurrent ops (lstm, gru: one layer, one or two directions, optional
// per-sample lengths) through ops/rnn_seq.h, the kernels training uses, so an fp32 program
// computes what its model computed; and embedding, permute and select, which the recurrent
// models' graphs need around them.
#include <algorithm>
#include <memory>
#include <utility>

#include "framework/error.h"
#include "ops/embedding.h"
#include "ops/op_attrs.h"
#include "ops/rnn_seq.h"
#include "ops/shape.h"
#include "runtime/op_table.h"
#include "runtime/step_ops.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;

Tensor input_or_none(const std::vector<Tensor>& in, size_t i) { return i < in.size() ? in[i] : Tensor(); }

// [D] tensors [B, F] -> [D, B, F].
Tensor stack0(const std::vector<Tensor>& xs) {
  std::vector<Tensor> u;
  for (const Tensor& x : xs) u.push_back(x.unsqueeze(0));
  return ops::cat(u, 0);
}

using Packed = std::vector<std::shared_ptr<const ops::PackedRecurrent>>;

// lstm (gates 4, w_hr slot) and gru (gates 3): inputs as op_schema_rnn.cc lists them. `packed`:
// each direction's W_hh packed at load (prepare_rnn), or empty (the kernels pack per call).
Outs rnn(const Node& n, const std::vector<Tensor>& in, bool lstm, const Packed& packed = {}) {
  const bool batch_first = ops::read_bool(n.attrs, ops::attr::batch_first, node_where(n), false);
  const Tensor x = (batch_first ? in[0].transpose(0, 1) : in[0]).contiguous();
  const Tensor lengths = input_or_none(in, 1);
  const size_t per = lstm ? 5 : 4;
  const bool two = input_or_none(in, 2 + per).defined();
  std::vector<Tensor> ys, hs, cs;
  for (size_t d = 0; d < (two ? 2u : 1u); ++d) {
    const size_t o = 2 + d * per;
    const ops::RnnWeights w{in[o], in[o + 1], input_or_none(in, o + 2), input_or_none(in, o + 3),
                            lstm ? input_or_none(in, o + 4) : Tensor(),
                            d < packed.size() ? packed[d] : nullptr};
    ops::RnnSeqOutput r = lstm ? ops::lstm_seq(x, Tensor(), Tensor(), w, lengths, d == 1)
                               : ops::gru_seq(x, Tensor(), w, lengths, d == 1);
    ys.push_back(r.y);
    hs.push_back(r.h_n);
    if (lstm) cs.push_back(r.c_n);
  }
  Tensor y = two ? ops::cat(ys, 2) : ys[0];
  if (batch_first) y = y.transpose(0, 1).contiguous();
  Outs out = {y, stack0(hs)};
  if (lstm) out.push_back(stack0(cs));
  return out;
}

Outs lstm_op(const Node& n, const std::vector<Tensor>& in, const Graph&) { return rnn(n, in, true); }
Outs gru_op(const Node& n, const std::vector<Tensor>& in, const Graph&) { return rnn(n, in, false); }

// An lstm/gru whose every W_hh is an f32 constant: packed once at load for the per-step product
// (ops/rnn_seq.h PackedRecurrent) instead of on every run; the same sums as the plain op.
class RnnKernel final : public NodeKernel {
 public:
  RnnKernel(Node n, bool lstm, Packed packed) : n_(std::move(n)), lstm_(lstm), packed_(std::move(packed)) {}
  Outs run(const std::vector<Tensor>& in) const override { return rnn(n_, in, lstm_, packed_); }

 private:
  Node n_;
  bool lstm_;
  Packed packed_;
};

std::unique_ptr<NodeKernel> prepare_rnn(const Node& n, const Graph& g, bool lstm) {
  const size_t per = lstm ? 5 : 4;
  Packed packed;
  for (size_t d = 0; d < 2; ++d) {
    const size_t i = 2 + d * per + 1;  // w_hh of direction d
    if (i >= n.inputs.size() || n.inputs[i] < 0) break;
    const Value& w = g.values[size_t(n.inputs[i])];
    if (!w.is_constant() || w.dtype != DType::f32 || w.shape.size() != 2) return nullptr;
    packed.push_back(std::make_shared<const ops::PackedRecurrent>(ops::pack_recurrent(w.data)));
  }
  if (packed.empty()) return nullptr;
  return std::make_unique<RnnKernel>(n, lstm, std::move(packed));
}
std::unique_ptr<NodeKernel> prepare_lstm(const Node& n, const Graph& g) { return prepare_rnn(n, g, true); }
std::unique_ptr<NodeKernel> prepare_gru(const Node& n, const Graph& g) { return prepare_rnn(n, g, false); }

Outs embedding_op(const Node&, const std::vector<Tensor>& in, const Graph&) { return {ops::embedding(in[0], in[1])}; }

Outs permute_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  return {in[0].permute(ops::read_ints(n.attrs, ops::attr::dims, node_where(n))).contiguous()};
}

Outs select_op(const Node& n, const std::vector<Tensor>& in, const Graph&) {
  const int64_t d = ops::read_int(n.attrs, ops::attr::dim, node_where(n));
  int64_t i = ops::read_int(n.attrs, ops::attr::index, node_where(n));
  if (d < 0 || d >= in[0].dim()) fail(node_where(n), ": attribute 'dim' is ", d, "; expected a dim of the ", in[0].dim(), "-d input");
  const int64_t size = in[0].size(d);
  if (i < -size || i >= size)
    fail(node_where(n), ": attribute 'index' is ", i, "; expected an index into dim ", d, " of size ", size);
  if (i < 0) i += size;
  return {in[0].select(d, i).contiguous()};
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& rnn_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = [] {
    std::vector<std::pair<std::string, OpImpl>> r = {
        {"lstm", {lstm_op, prepare_lstm}},
        {"gru", {gru_op, prepare_gru}},
        {"embedding", {embedding_op}},
        {"permute", {permute_op}},
        {"select", {select_op}},
    };
    for (const auto& e : quant_rnn_ops()) r.push_back(e);
    for (const auto& e : qlstm_ops()) r.push_back(e);
    for (const auto& e : transformer_ops()) r.push_back(e);
    for (const auto& e : step_ops()) r.push_back(e);
    return r;
  }();
  return t;
}

std::vector<bool> sequence_length_values(const Graph& g) {
  std::vector<bool> lengths(g.values.size(), false);
  for (const Node& n : g.nodes)
    if ((is_recurrent_op(n.op) || is_step_op(n.op)) && n.inputs.size() > 1 && n.inputs[1] >= 0)
      lengths[size_t(n.inputs[1])] = true;
  // Backwards, so a chain of add_scalar nodes is followed to its start in one pass.
  for (auto n = g.nodes.rbegin(); n != g.nodes.rend(); ++n)
    if (n->op == "add_scalar" && n->inputs.size() == 1 && n->inputs[0] >= 0 && lengths[size_t(n->outputs[0])])
      lengths[size_t(n->inputs[0])] = true;
  return lengths;
}

}  // namespace finch::runtime
