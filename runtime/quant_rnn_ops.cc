// The runtime's dynamic int8 recurrent ops and the per-row int8 embedding: dq_lstm / dq_gru (int8
// weights with one scale per gate row, each step's x row and h row quantized at run time from
// their own min/max, int32 dot products on kernels::QDynamicLinear, f32 gates and cell, as
// kernels/qs8_dq_lstm.h / qs8_dq_gru.h, whose input_gates() and step_gx() each runs (= step()), and PyTorch's quantize_dynamic; dq_lstm's projection, when it has one,
// a third dynamic linear on the cell output) and qembedding (int8 rows, one scale per
// row, so a rare token's small row keeps its precision). The plain fn and the prepared kernel
// are the same code: the prepared one only builds the packed weights once.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include "framework/error.h"
#include "kernels/qs8_dq_gru.h"
#include "kernels/qs8_dq_linear.h"
#include "kernels/qs8_dq_lstm.h"
#include "ops/lstm.h"
#include "ops/op_attrs.h"
#include "ops/shape.h"
#include "runtime/op_table.h"

namespace finch::runtime {

namespace {

using Outs = std::vector<Tensor>;
using quant::kernels::QDynamicGru;
using quant::kernels::QDynamicLinear;
using quant::kernels::QDynamicLstm;

// The per-row scales of an int8 weight value (symmetric: every zero point 0): one per row (axis
// 0), or one for every row.
std::vector<float> row_scales(const Node& n, const Graph& g, int32_t v, int64_t rows) {
  const Value& w = g.values[size_t(v)];
  const bool ok = w.quant && w.quant->zero_point.size() == w.quant->scale.size() &&
                  (w.quant->scale.size() == 1 || (int64_t(w.quant->scale.size()) == rows && w.quant->axis == 0));
  if (!ok)
    fail(node_where(n), ": expected weight '", w.name, "' quantized with one scale, or one per row (", rows,
         " rows, axis 0)");
  for (size_t i = 0; i < w.quant->scale.size(); ++i)
    if (w.quant->zero_point[i] != 0 || !(w.quant->scale[i] > 0) || !std::isfinite(w.quant->scale[i]))
      fail(node_where(n), ": expected weight '", w.name, "' with zero points 0 and finite positive scales, found row ", i,
           " with scale ", w.quant->scale[i], " and zero point ", w.quant->zero_point[i]);
  return w.quant->scale.size() == 1 ? std::vector<float>(size_t(rows), w.quant->scale[0]) : w.quant->scale;
}

Tensor input_or_none(const std::vector<Tensor>& in, size_t i) { return i < in.size() ? in[i] : Tensor(); }

// One direction. The LSTM is kernels::QDynamicLstm (b_ih + b_hh folded into the input side: the
// gates are one sum; the projection, when there is one, a third linear); the GRU is
// kernels::QDynamicGru, which keeps b_hh with h (r multiplies W_hn·h + b_hn).
struct DqDirection {
  std::shared_ptr<const QDynamicLstm> lstm;
  std::shared_ptr<const QDynamicGru> gru;
};

struct DqRnn {
  bool lstm = true, batch_first = false;
  int64_t H = 0, HO = 0;  // hidden (cell) width; h's width (P with a projection)
  std::vector<DqDirection> dirs;
};

// dq_lstm's inputs: x, lengths?, w_ih, w_hh, b_ih?, b_hh?, the same 4 reversed, then w_hr? and
// w_hr_reverse? (the projections last, so a file written before they existed reads unchanged).
constexpr size_t kHr = 10;

DqRnn build(const Node& n, const Graph& g, const std::vector<Tensor>& in, bool lstm) {
  DqRnn r;
  r.lstm = lstm;
  r.batch_first = ops::read_bool(n.attrs, ops::attr::batch_first, node_where(n), false);
  const bool two = input_or_none(in, 6).defined();
  for (size_t d = 0; d < (two ? 2u : 1u); ++d) {
    const size_t o = 2 + 4 * d;
    const Tensor w_ih = in[o], w_hh = in[o + 1], b_ih = input_or_none(in, o + 2), b_hh = input_or_none(in, o + 3);
    const int64_t G = w_ih.size(0);
    DqDirection dir;
    if (!lstm) {
      r.H = r.HO = w_hh.size(1);
      dir.gru = std::make_shared<const QDynamicGru>(
          QDynamicLinear(w_ih, row_scales(n, g, n.inputs[o], G), b_ih, "none"),
          QDynamicLinear(w_hh, row_scales(n, g, n.inputs[o + 1], G), b_hh, "none"));
      r.dirs.push_back(dir);
      continue;
    }
    // The LSTM's two biases are summed once in f32 (as kernels::QDynamicLstm).
    Tensor b_in = b_ih.defined() ? b_ih : b_hh;
    if (b_ih.defined() && b_hh.defined()) {
      const std::vector<float> a = b_ih.contiguous().to_vector<float>(), c = b_hh.contiguous().to_vector<float>();
      std::vector<float> sum(a.size());
      for (size_t i = 0; i < a.size(); ++i) sum[i] = a[i] + c[i];
      b_in = from_vector(sum, {G});
    }
    std::optional<QDynamicLinear> hr;
    if (const Tensor w_hr = input_or_none(in, kHr + d); w_hr.defined())
      hr.emplace(w_hr, row_scales(n, g, n.inputs[kHr + d], w_hr.size(0)), Tensor(), "none");
    dir.lstm = std::make_shared<const QDynamicLstm>(
        QDynamicLinear(w_ih, row_scales(n, g, n.inputs[o], G), b_in, "none"),
        QDynamicLinear(w_hh, row_scales(n, g, n.inputs[o + 1], G), Tensor(), "none"), std::move(hr));
    r.H = dir.lstm->hidden_size(), r.HO = dir.lstm->output_size();
    r.dirs.push_back(dir);
  }
  return r;
}

Outs run_dq(const DqRnn& r, const std::vector<Tensor>& in) {
  const Tensor x = (r.batch_first ? in[0].transpose(0, 1) : in[0]).contiguous();
  const int64_t T = x.size(0), B = x.size(1), IN = x.size(2), H = r.H, HO = r.HO, D = int64_t(r.dirs.size());
  std::vector<int64_t> len(size_t(B), T);
  if (in.size() > 1 && in[1].defined()) {
    const Tensor l = in[1].contiguous();
    if (l.dtype() != DType::i64 || l.dim() != 1 || l.size(0) != B)
      fail("dq rnn: expected lengths I64 [", B, "], found ", dtype_name(l.dtype()), " ", shape_str(l.shape()));
    for (int64_t b = 0; b < B; ++b) {
      len[size_t(b)] = l.data<int64_t>()[b];
      if (len[size_t(b)] < 1 || len[size_t(b)] > T)
        fail("dq rnn: expected every length in 1..", T, ", found length ", len[size_t(b)], " for sample ", b);
    }
  }
  Tensor y = zeros({T, B, D * HO}), h_n = zeros({D, B, HO}), c_n = zeros({D, B, H});
  const float* xp = x.data<float>();
  float* yp = y.data<float>();
  const auto nH = static_cast<size_t>(H), nHO = static_cast<size_t>(HO);
  std::vector<float> h(nHO), c(nH);
  QDynamicLstm::Scratch scratch;
  QDynamicGru::Scratch gru_scratch;
  const int64_t G = (r.lstm ? 4 : 3) * H;
  std::vector<float> gx;
  for (int64_t d = 0; d < D; ++d)
    for (int64_t b = 0; b < B; ++b) {
      const int64_t L = len[size_t(b)];
      const DqDirection& dir = r.dirs[size_t(d)];
      std::fill(h.begin(), h.end(), 0.0f);
      std::fill(c.begin(), c.end(), 0.0f);
      // The input side of a chunk of steps at once (x does not depend on h), then the steps:
      // the same bits as step() per step (kernels/qs8_dq_lstm.h, input_gates / step_gx).
      for (int64_t s0 = 0; s0 < L; s0 += quant::kernels::kDqInputChunk) {
        const int64_t n = std::min(quant::kernels::kDqInputChunk, L - s0);
        const int64_t t0 = d == 1 ? L - 1 - s0 : s0, stride = (d == 1 ? -B : B) * IN;
        gx.resize(size_t(n * G));
        if (r.lstm) dir.lstm->input_gates(xp + (t0 * B + b) * IN, n, stride, gx.data());
        else dir.gru->input_gates(xp + (t0 * B + b) * IN, n, stride, gx.data());
        for (int64_t s = s0; s < s0 + n; ++s) {
          const int64_t t = d == 1 ? L - 1 - s : s;
          float* gt = gx.data() + (s - s0) * G;
          if (r.lstm) dir.lstm->step_gx(gt, h.data(), c.data(), h.data(), c.data(), scratch);
          else dir.gru->step_gx(gt, h.data(), h.data(), gru_scratch);
          std::copy(h.begin(), h.end(), yp + (t * B + b) * D * HO + d * HO);
        }
      }
      std::copy(h.begin(), h.end(), h_n.data<float>() + (d * B + b) * HO);
      std::copy(c.begin(), c.end(), c_n.data<float>() + (d * B + b) * H);
    }
  if (r.batch_first) y = y.transpose(0, 1).contiguous();
  Outs out = {y, h_n};
  if (r.lstm) out.push_back(c_n);
  return out;
}

Outs dq_lstm(const Node& n, const std::vector<Tensor>& in, const Graph& g) { return run_dq(build(n, g, in, true), in); }
Outs dq_gru(const Node& n, const std::vector<Tensor>& in, const Graph& g) { return run_dq(build(n, g, in, false), in); }

template <class F>
class FnKernel final : public NodeKernel {
 public:
  explicit FnKernel(F f) : f_(std::move(f)) {}
  std::vector<Tensor> run(const std::vector<Tensor>& in) const override { return f_(in); }

 private:
  F f_;
};

// Prepared when every weight and bias is a constant: the packed weights are built once.
template <bool Lstm>
std::unique_ptr<NodeKernel> prepare_dq(const Node& n, const Graph& g) {
  std::vector<Tensor> in;
  for (size_t i = 0; i < n.inputs.size(); ++i) {
    const int32_t v = n.inputs[i];
    if (i >= 2 && v >= 0 && !g.values[size_t(v)].is_constant()) return nullptr;
    in.push_back(i >= 2 && v >= 0 ? g.values[size_t(v)].data : Tensor());
  }
  auto r = std::make_shared<const DqRnn>(build(n, g, in, Lstm));
  auto f = [r](const std::vector<Tensor>& x) { return run_dq(*r, x); };
  return std::make_unique<FnKernel<decltype(f)>>(f);
}

// out[i..., :] = float(code[id, :]) · scale[id].
Outs qembedding(const Node& n, const std::vector<Tensor>& in, const Graph& g) {
  const Tensor w = in[1].contiguous();
  const int64_t V = w.size(0), E = w.size(1);
  const std::vector<float> s = row_scales(n, g, n.inputs[1], V);
  const Tensor ids = in[0].dtype() == DType::i64 ? in[0].contiguous() : in[0].to(DType::i64).contiguous();
  Shape ys = ids.shape();
  ys.push_back(E);
  Tensor y = empty(ys);
  const int64_t* id = ids.data<int64_t>();
  const int8_t* q = w.data<int8_t>();
  float* yp = y.data<float>();
  for (int64_t i = 0; i < ids.numel(); ++i) {
    if (id[i] < 0 || id[i] >= V) fail(node_where(n), ": token id ", id[i], " at position ", i, " is outside [0, ", V, ")");
    for (int64_t e = 0; e < E; ++e) yp[i * E + e] = float(q[id[i] * E + e]) * s[size_t(id[i])];
  }
  return {y};
}

}  // namespace

const std::vector<std::pair<std::string, OpImpl>>& quant_rnn_ops() {
  static const std::vector<std::pair<std::string, OpImpl>> t = {
      {"dq_lstm", {dq_lstm, prepare_dq<true>}},
      {"dq_gru", {dq_gru, prepare_dq<false>}},
      {"qembedding", {qembedding}},
  };
  return t;
}

}  // namespace finch::runtime
