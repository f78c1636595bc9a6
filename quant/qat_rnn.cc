// QAT LSTM layers (qat_rnn.h): range observers, the integer forward on kernels::QLstm with the
// float LSTM's backward through a straight-through node, checkpoint entries, and the lowering.
#include "quant/qat_rnn.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "autograd/capture.h"
#include "autograd/nn/embedding.h"
#include "autograd/node.h"
#include "compile/static_rnn.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "kernels/qparams.h"
#include "kernels/quantize.h"
#include "ops/elementwise.h"
#include "ops/rnn_seq.h"
#include "quant/fake_quant.h"
#include "quant/matrix_qparams.h"

namespace finch::quant {

namespace {

namespace qk = kernels;

Tensor det(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }

std::vector<float> values(const Tensor& t) {
  return t.defined() ? t.detach().contiguous().to_vector<float>() : std::vector<float>();
}

// The int8 per-tensor parameters of an activation of the cell.
QParams act_params(const qk::QAct& a) {
  QParams p;
  p.scale = {a.s};
  p.zero_point = {a.z};
  return p;
}

// The int8 affine parameters qlstm_calibrate gives a range (kernels/qs8_rnn_calib.cc).
QParams range_params(float lo, float hi) {
  const QSpec spec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
  return qparams(spec, {lo}, {hi});
}

struct MinMax {
  float lo = 0, hi = 0, absmax = 0;
  void add(const Tensor& t) {
    if (!t.defined()) return;
    for (float v : t.contiguous().to_vector<float>()) {
      if (!std::isfinite(v)) fail("QAT LSTM: expected finite values to observe, found ", v);
      lo = std::min(lo, v), hi = std::max(hi, v), absmax = std::max(absmax, std::fabs(v));
    }
  }
};

// The moving average of PyTorch's MovingAverageMinMaxObserver; the first batch sets the value.
// Averaging 0: the running minimum (average_lo) or maximum (average_hi) over every batch, as
// post-training calibration's MinMaxObserver.
void average(float& v, float now, bool first, double a) { v = first ? now : float(double(v) + a * (double(now) - v)); }
void average_lo(float& v, float now, bool first, double a) {
  if (a == 0) v = first ? now : std::min(v, now);
  else average(v, now, first, a);
}
void average_hi(float& v, float now, bool first, double a) {
  if (a == 0) v = first ? now : std::max(v, now);
  else average(v, now, first, a);
}

// A reverse direction's codes: each sample's valid steps reversed (as the qlstm/qgru op does).
Tensor reversed_codes(const Tensor& codes, const std::vector<int64_t>& len) {
  Tensor out = empty(codes.shape(), DType::i8);
  qk::reverse_steps(codes.size(0), codes.size(1), codes.size(2), codes.data<int8_t>(), len.empty() ? nullptr : len.data(),
                    out.data<int8_t>());
  return out;
}

Tensor masked(const Tensor& g, const Tensor& mask) {
  return g.defined() ? ops::where(mask, g, zeros_like(g)) : Tensor();
}

// x's range (moving average) observed before x is quantized with it.
void observe_x(float& lo, float& hi, const Tensor& x, bool first, double a) {
  MinMax m;
  {
    NoGradGuard ng;
    m.add(x.detach());
  }
  average_lo(lo, m.lo, first, a), average_hi(hi, m.hi, first, a);
}

// The deployed integer sequence as the qlstm/qgru op runs it: x quantized to the cell's input
// grid, the lengths checked, h from the output zero point, a reverse direction on each sample's
// steps reversed; `run(x, lengths, h, y)` runs the kernel. Returns the codes {y [T, B, H], h [B, H]}.
template <class Cell, class Run>
std::pair<Tensor, Tensor> integer_sequence(const char* what, const Cell& cell, const Tensor& x, const Tensor& lengths,
                                           bool reverse, int64_t T, int64_t B, int64_t H, const Run& run) {
  const Tensor xc = quantize(x.detach().contiguous(), act_params(cell.x));
  std::vector<int64_t> len;
  if (lengths.defined()) len = lengths.contiguous().to_vector<int64_t>();
  if (!len.empty() && int64_t(len.size()) != B) fail(what, ": expected ", B, " lengths, found ", len.size());
  Tensor yc = empty({T, B, H}, DType::i8), hc = full({B, H}, double(cell.h.z), DType::i8);
  const Tensor xs = reverse ? reversed_codes(xc, len) : xc;
  run(xs.data<int8_t>(), len.empty() ? nullptr : len.data(), hc.data<int8_t>(), yc.data<int8_t>());
  if (reverse) yc = reversed_codes(yc, len);
  return {yc, hc};
}

// The QAT layer (and its layer index) whose weights an lstm/gru node stores, value for value, in
// direction d; direction d's weights start at input 2 + stride·d (5 for lstm, 4 for gru:
// runtime/ops.md). {nullptr, -1} when no layer's do.
template <class Q>
std::pair<const Q*, int64_t> qat_layer_of(const std::vector<std::unique_ptr<Q>>& q, const runtime::Graph& gr,
                                          const runtime::Node& n, int64_t d, size_t stride) {
  const size_t o = 2 + stride * size_t(d);
  if (n.inputs.size() < o + 2 || n.inputs[o] < 0 || n.inputs[o + 1] < 0) return {nullptr, -1};
  const runtime::Value &vi = gr.values[size_t(n.inputs[o])], &vh = gr.values[size_t(n.inputs[o + 1])];
  if (!vi.is_constant() || !vh.is_constant() || vi.dtype != DType::f32 || vh.dtype != DType::f32) return {nullptr, -1};
  const std::vector<float> wi = vi.data.contiguous().to_vector<float>(), wh = vh.data.contiguous().to_vector<float>();
  for (const auto& l : q)
    for (int64_t k = 0; k < l->num_layers(); ++k) {
      const nn::RNNBase::Weights& w = l->module().weights[size_t(k)];
      if (values(w.w_ih) == wi && values(w.w_hh) == wh) return {l.get(), k};
    }
  return {nullptr, -1};
}

}  // namespace

QatLstm::QatLstm(nn::LSTM& lstm, std::string path, QatLstmOptions o)
    : lstm_(&lstm), path_(std::move(path)), opt_(o) {
  if (!(o.averaging >= 0 && o.averaging <= 1))
    fail("QAT LSTM: expected an observer averaging constant in [0, 1] (0: min/max), got ", o.averaging);
  if (o.rounding_steps < 0) fail("QAT LSTM: expected rounding_steps >= 0, got ", o.rounding_steps);
  const int64_t D = lstm.bidirectional ? 2 : 1;
  ranges_.resize(size_t(lstm.num_layers * D));
  seen_.assign(size_t(lstm.num_layers * D), false);
  lstm.layer_override = [this](int64_t idx, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& len,
                               bool reverse) { return run(idx, x, h0, c0, len, reverse); };
}

QatLstm::~QatLstm() { remove(); }

void QatLstm::remove() {
  if (lstm_) lstm_->layer_override = nullptr;
  lstm_ = nullptr;
}

bool QatLstm::ready() const { return std::all_of(seen_.begin(), seen_.end(), [](bool s) { return s; }); }

const qk::QLstmRanges& QatLstm::ranges(int64_t layer) const {
  if (layer < 0 || layer >= num_layers()) fail("QAT LSTM: layer ", layer, " is out of range (", num_layers(), " layers)");
  return ranges_[size_t(layer)];
}

void QatLstm::set_ranges(int64_t layer, const qk::QLstmRanges& r) {
  ranges(layer);
  for (float v : {r.x_lo, r.x_hi, r.h_lo, r.h_hi, r.c_absmax})
    if (!std::isfinite(v)) fail("QAT LSTM: expected finite ranges for layer ", layer, ", got ", v);
  if (r.x_lo > r.x_hi || r.h_lo > r.h_hi || r.c_absmax < 0)
    fail("QAT LSTM: expected lo <= hi and max |c| >= 0 for layer ", layer, ", got x [", r.x_lo, ", ", r.x_hi, "], h [",
         r.h_lo, ", ", r.h_hi, "], max |c| ", r.c_absmax);
  if (!std::isfinite(r.m_lo) || !std::isfinite(r.m_hi) || r.m_lo > r.m_hi)
    fail("QAT LSTM: expected a finite projection input range lo <= hi for layer ", layer, ", got [", r.m_lo, ", ",
         r.m_hi, "]");
  ranges_[size_t(layer)] = r;
  seen_[size_t(layer)] = true;
}

qk::QLstmCell QatLstm::cell(int64_t layer) const {
  if (!lstm_) fail("QAT LSTM: '", path_, "' was removed");
  const qk::QLstmRanges& r = ranges(layer);
  if (!seen_[size_t(layer)])
    fail("QAT LSTM: layer ", layer, " of '", path_, "' has no observed ranges yet (run a batch with observers on first)");
  const nn::RNNBase::Weights& w = lstm_->weights[size_t(layer)];
  return qk::qlstm_calibrate(w.w_ih.size(1), lstm_->hidden_size, lstm_->proj_size, values(w.w_ih), values(w.w_hh),
                             values(w.b_ih), values(w.b_hh), values(w.w_hr), r);
}

RnnLayerOutput QatLstm::run(int64_t layer, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& lengths,
                            bool reverse) {
  const nn::RNNBase::Weights& w = lstm_->weights[size_t(layer)];
  if (h0.defined() || c0.defined())
    fail("QAT LSTM: the int8 program starts every sequence from zero states; found an initial ",
         h0.defined() ? "h" : "c");
  if (x.dtype() != DType::f32) fail("QAT LSTM: expected an f32 input, found ", dtype_name(x.dtype()));
  if (!fake_quant_) {  // float layer; observers (when on) calibrate from the float values
    RnnLayerOutput r = lstm_layer(x, h0, c0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, w.w_hr, lengths, reverse);
    if (observe_) observe(layer, x, lengths, reverse);
    return r;
  }
  qk::QLstmRanges& rg = ranges_[size_t(layer)];
  const bool first = !seen_[size_t(layer)];
  if (first && !observe_)
    fail("QAT LSTM: layer ", layer, " of '", path_, "' has no ranges and its observers are off");
  if (observe_) observe_x(rg.x_lo, rg.x_hi, x, first, opt_.averaging);
  // The float cell on the deployed grid: x and the weights fake-quantized as the integer cell
  // quantizes them (its biases are int32 at the accumulator's scale: float here).
  const QParams xq = range_params(rg.x_lo, rg.x_hi);
  const int64_t H = lstm_->hidden_size, P = lstm_->proj_size, HO = P > 0 ? P : H, IN = x.size(2), T = x.size(0),
                B = x.size(1);
  const qk::QMatrix wih = qk::quantize_matrix("QAT LSTM", "weight_ih", values(w.w_ih), 4 * H, IN);
  const qk::QMatrix whh = qk::quantize_matrix("QAT LSTM", "weight_hh", values(w.w_hh), 4 * H, HO);
  const Tensor x_fq = fake_quant(x, xq), w_ih_fq = fake_quant(w.w_ih, row_params(wih)),
               w_hh_fq = fake_quant(w.w_hh, row_params(whh));
  // A projection's W_hr per row as the cell quantizes it (qlstm_calibrate's proj matrix).
  const Tensor w_hr_fq =
      P > 0 ? fake_quant(w.w_hr, row_params(qk::quantize_matrix("QAT LSTM", "weight_hr", values(w.w_hr), P, H)))
            : Tensor();
  const bool rec = autograd::should_record({x_fq, w_ih_fq, w_hh_fq, w.b_ih, w.b_hh, w_hr_fq});
  NoGradGuard ng;
  const ops::RnnWeights fw{det(w_ih_fq), det(w_hh_fq), det(w.b_ih), det(w.b_hh), det(w_hr_fq)};
  ops::RnnSeqOutput f;
  if (rec || observe_) f = ops::lstm_seq(det(x_fq).contiguous(), Tensor(), Tensor(), fw, lengths, reverse);
  if (observe_) {
    MinMax h, c, m;
    h.add(f.y), h.add(f.h_n), c.add(f.saved.c_prev), c.add(f.c_n), m.add(f.saved.h_raw);
    average_lo(rg.h_lo, h.lo, first, opt_.averaging), average_hi(rg.h_hi, h.hi, first, opt_.averaging);
    average_hi(rg.c_absmax, c.absmax, first, opt_.averaging);
    average_lo(rg.m_lo, m.lo, first, opt_.averaging), average_hi(rg.m_hi, m.hi, first, opt_.averaging);
    seen_[size_t(layer)] = true;
  }

  // The deployed cell: the program's quantize node, kernels::QLstm from zero states (as the
  // qlstm op runs it), the program's dequantize nodes.
  const qk::QLstmCell cell = this->cell(layer);
  const qk::QLstm op(cell);
  const QParams hq = act_params(cell.h);
  std::vector<int16_t> c(size_t(B * H), 0);
  const auto [yc, hc] = integer_sequence("QAT LSTM", cell, x, lengths, reverse, T, B, HO,
                                         [&](const int8_t* xs, const int64_t* lp, int8_t* h, int8_t* y) {
                                           op.run(T, B, xs, lp, h, c.data(), y);
                                         });
  ++integer_calls_;
  RnnLayerOutput out{dequantize(yc, hq), dequantize(hc, hq), empty({B, H})};
  float* pc = out.c_n.data<float>();
  for (size_t i = 0; i < c.size(); ++i) pc[i] = float(std::ldexp(double(c[i]), -cell.k_cell));
  if (rec) {
    // Straight through: the float cell's gradient, stopped where h's quantizer clamped.
    f.saved.x = f.saved.x.detach();
    const Tensor my = fake_quantize_mask(f.y, hq), mh = fake_quantize_mask(f.h_n, hq);
    autograd::record("qat_lstm_sequence", {x_fq, w_ih_fq, w_hh_fq, w.b_ih, w.b_hh, w_hr_fq}, {out.y, out.h_n, out.c_n},
                     [fw, saved = std::move(f.saved), my, mh, reverse](const autograd::Grads& g,
                                                                       const autograd::Needs& n) {
                       ops::RnnSeqNeeds need{n[0], false, false, n[1], n[2], n[3], n[4], n[5]};
                       ops::RnnSeqGrads d =
                           ops::lstm_seq_backward(masked(g[0], my), masked(g[1], mh), g[2], fw, saved, reverse, need);
                       return autograd::Grads{d.dx, d.dw_ih, d.dw_hh, d.db_ih, d.db_hh, d.dw_hr};
                     });
  }
  return out;
}

void QatLstm::observe(int64_t layer, const Tensor& x, const Tensor& lengths, bool reverse) {
  NoGradGuard ng;
  const nn::RNNBase::Weights& w = lstm_->weights[size_t(layer)];
  const ops::RnnWeights fw{det(w.w_ih), det(w.w_hh), det(w.b_ih), det(w.b_hh), det(w.w_hr)};
  const ops::RnnSeqOutput f = ops::lstm_seq(x.detach().contiguous(), Tensor(), Tensor(), fw, lengths, reverse);
  MinMax xm, h, c, m;
  xm.add(x.detach()), h.add(f.y), h.add(f.h_n), c.add(f.saved.c_prev), c.add(f.c_n), m.add(f.saved.h_raw);
  qk::QLstmRanges& rg = ranges_[size_t(layer)];
  const bool first = !seen_[size_t(layer)];
  const double a = opt_.averaging;
  average_lo(rg.x_lo, xm.lo, first, a), average_hi(rg.x_hi, xm.hi, first, a), average_lo(rg.h_lo, h.lo, first, a);
  average_hi(rg.h_hi, h.hi, first, a), average_hi(rg.c_absmax, c.absmax, first, a);
  average_lo(rg.m_lo, m.lo, first, a), average_hi(rg.m_hi, m.hi, first, a);
  seen_[size_t(layer)] = true;
  if (opt_.rounding_steps > 0 && lstm_->proj_size == 0) keep_steps(layer, f.saved);
}

std::vector<std::unique_ptr<QatLstm>> prepare_qat_lstm(nn::Module& model, QatLstmOptions o) {
  std::vector<std::unique_ptr<QatLstm>> out;
  for (auto& [path, m] : model.named_modules()) {
    if (auto* lstm = dynamic_cast<nn::LSTM*>(m)) out.push_back(std::make_unique<QatLstm>(*lstm, path, o));
  }
  return out;
}

namespace {

class EmbeddingFakeQuant final : public nn::ForwardInterceptor {
 public:
  Tensor run(nn::Module& m, const Tensor& x, int64_t) override {
    if (autograd::capturing()) return m.forward_impl(x);  // the program's float node, lowered later
    auto& e = static_cast<nn::Embedding&>(m);
    const qk::QMatrix q = qk::quantize_matrix("QAT embedding", "weight", values(e.weight), e.weight.size(0),
                                              e.weight.size(1));
    return embedding(x, fake_quant(e.weight, row_params(q)), e.padding_idx.value_or(-1));
  }
};

}  // namespace

QatEmbeddings::QatEmbeddings(nn::Module& model) {
  auto fq = std::make_shared<EmbeddingFakeQuant>();
  for (auto& [path, m] : model.named_modules())
    if (dynamic_cast<nn::Embedding*>(m)) {
      if (m->interceptor()) fail("QAT embedding: the embedding at '", path, "' is already intercepted (prepared twice?)");
      m->set_interceptor(fq);
      modules_.push_back(m);
    }
}

QatEmbeddings::~QatEmbeddings() {
  for (nn::Module* m : modules_) m->set_interceptor(nullptr);
}

namespace {

// lower_qat_lstm/gru: `quantize_static` (compile::quantize_static_lstm/gru) turns each `op` node
// into its int8 op with the ranges of the QAT layer whose weights it stores (direction d's at input
// 2 + stride·d); a node of a QAT layer left float is an error, since the program would then not be
// what QAT simulated. `fn`, `kind` and `becomes` word the sentences.
template <class Q, class QuantizeStatic>
int lower_qat(runtime::Graph& g, const std::vector<std::unique_ptr<Q>>& q, const QuantizeStatic& quantize_static,
              const char* fn, const char* op, const char* kind, size_t stride, const char* becomes) {
  auto layer_of = [&](const runtime::Graph& gr, const runtime::Node& n, int64_t d) {
    return qat_layer_of(q, gr, n, d, stride);
  };
  const int n = quantize_static(g, [&](const runtime::Graph& gr, const runtime::Node& node, int64_t d) {
    const auto [l, k] = layer_of(gr, node, d);
    if (!l) fail(fn, ": the ", op, " node '", node.name, "' stores weights of no QAT ", kind, " layer");
    if (!l->ready()) fail(fn, ": '", l->path(), "' has not observed any data, so it has no ranges");
    return std::optional(l->ranges(k));
  });
  for (const runtime::Node& node : g.nodes)
    if (node.op == op && layer_of(g, node, 0).first)
      fail(fn, ": the ", op, " node '", node.name, "' could not become ", becomes,
           ", so the program would not be what QAT simulated");
  return n;
}

}  // namespace

int lower_qat_lstm(runtime::Graph& g, const std::vector<std::unique_ptr<QatLstm>>& q) {
  auto quantize = [](runtime::Graph& gr, const compile::LstmRangesOf& r) { return compile::quantize_static_lstm(gr, r); };
  return lower_qat(g, q, quantize, "lower_qat_lstm", "lstm", "LSTM", 5, "qlstm (its c_n is read)");
}

// ---------------------------------------------------------------- GRU

QatGru::QatGru(nn::GRU& gru, std::string path, QatLstmOptions o) : gru_(&gru), path_(std::move(path)), opt_(o) {
  if (!(o.averaging >= 0 && o.averaging <= 1))
    fail("QAT GRU: expected an observer averaging constant in [0, 1] (0: min/max), got ", o.averaging);
  const int64_t D = gru.bidirectional ? 2 : 1;
  ranges_.resize(size_t(gru.num_layers * D));
  seen_.assign(size_t(gru.num_layers * D), false);
  gru.layer_override = [this](int64_t idx, const Tensor& x, const Tensor& h0, const Tensor&, const Tensor& len,
                              bool reverse) { return run(idx, x, h0, len, reverse); };
}

QatGru::~QatGru() { remove(); }

void QatGru::remove() {
  if (gru_) gru_->layer_override = nullptr;
  gru_ = nullptr;
}

bool QatGru::ready() const { return std::all_of(seen_.begin(), seen_.end(), [](bool s) { return s; }); }

const qk::QGruRanges& QatGru::ranges(int64_t layer) const {
  if (layer < 0 || layer >= num_layers()) fail("QAT GRU: layer ", layer, " is out of range (", num_layers(), " layers)");
  return ranges_[size_t(layer)];
}

void QatGru::set_ranges(int64_t layer, const qk::QGruRanges& r) {
  ranges(layer);
  for (float v : {r.x_lo, r.x_hi, r.h_lo, r.h_hi})
    if (!std::isfinite(v)) fail("QAT GRU: expected finite ranges for layer ", layer, ", got ", v);
  if (r.x_lo > r.x_hi || r.h_lo > r.h_hi)
    fail("QAT GRU: expected lo <= hi for layer ", layer, ", got x [", r.x_lo, ", ", r.x_hi, "], h [", r.h_lo, ", ",
         r.h_hi, "]");
  ranges_[size_t(layer)] = r;
  seen_[size_t(layer)] = true;
}

qk::QGruCell QatGru::cell(int64_t layer) const {
  if (!gru_) fail("QAT GRU: '", path_, "' was removed");
  const qk::QGruRanges& r = ranges(layer);
  if (!seen_[size_t(layer)])
    fail("QAT GRU: layer ", layer, " of '", path_, "' has no observed ranges yet (run a batch with observers on first)");
  const nn::RNNBase::Weights& w = gru_->weights[size_t(layer)];
  return qk::qgru_calibrate(w.w_ih.size(1), gru_->hidden_size, values(w.w_ih), values(w.w_hh), values(w.b_ih),
                            values(w.b_hh), r);
}

RnnLayerOutput QatGru::run(int64_t layer, const Tensor& x, const Tensor& h0, const Tensor& lengths, bool reverse) {
  const nn::RNNBase::Weights& w = gru_->weights[size_t(layer)];
  if (h0.defined()) fail("QAT GRU: the int8 program starts every sequence from a zero state; found an initial h");
  if (x.dtype() != DType::f32) fail("QAT GRU: expected an f32 input, found ", dtype_name(x.dtype()));
  qk::QGruRanges& rg = ranges_[size_t(layer)];
  const bool first = !seen_[size_t(layer)];
  const double a = opt_.averaging;
  if (!fake_quant_) {
    RnnLayerOutput r = gru_layer(x, h0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, lengths, reverse);
    if (observe_) {
      NoGradGuard ng;
      MinMax xm, h;
      xm.add(x.detach()), h.add(r.y.detach()), h.add(r.h_n.detach());
      average_lo(rg.x_lo, xm.lo, first, a), average_hi(rg.x_hi, xm.hi, first, a);
      average_lo(rg.h_lo, h.lo, first, a), average_hi(rg.h_hi, h.hi, first, a);
      seen_[size_t(layer)] = true;
    }
    return r;
  }
  if (first && !observe_) fail("QAT GRU: layer ", layer, " of '", path_, "' has no ranges and its observers are off");
  if (observe_) observe_x(rg.x_lo, rg.x_hi, x, first, a);
  const QParams xq = range_params(rg.x_lo, rg.x_hi);
  const int64_t H = gru_->hidden_size, IN = x.size(2), T = x.size(0), B = x.size(1);
  const qk::QMatrix wih = qk::quantize_matrix("QAT GRU", "weight_ih", values(w.w_ih), 3 * H, IN);
  const qk::QMatrix whh = qk::quantize_matrix("QAT GRU", "weight_hh", values(w.w_hh), 3 * H, H);
  const Tensor x_fq = fake_quant(x, xq), w_ih_fq = fake_quant(w.w_ih, row_params(wih)),
               w_hh_fq = fake_quant(w.w_hh, row_params(whh));
  const bool rec = autograd::should_record({x_fq, w_ih_fq, w_hh_fq, w.b_ih, w.b_hh});
  NoGradGuard ng;
  const ops::RnnWeights fw{det(w_ih_fq), det(w_hh_fq), det(w.b_ih), det(w.b_hh), Tensor()};
  ops::RnnSeqOutput f;
  if (rec || observe_) f = ops::gru_seq(det(x_fq).contiguous(), Tensor(), fw, lengths, reverse);
  if (observe_) {
    MinMax h;
    h.add(f.y), h.add(f.h_n);
    average_lo(rg.h_lo, h.lo, first, a), average_hi(rg.h_hi, h.hi, first, a);
    seen_[size_t(layer)] = true;
  }
  // The deployed cell: quantize, kernels::QGru from a zero state, dequantize.
  const qk::QGruCell cell = this->cell(layer);
  const qk::QGru op(cell);
  const QParams hq = act_params(cell.h);
  const auto [yc, hc] = integer_sequence("QAT GRU", cell, x, lengths, reverse, T, B, H,
                                         [&](const int8_t* xs, const int64_t* lp, int8_t* h, int8_t* y) {
                                           op.run(T, B, xs, lp, h, y);
                                         });
  ++integer_calls_;
  RnnLayerOutput out{dequantize(yc, hq), dequantize(hc, hq), Tensor()};
  if (rec) {
    f.saved.x = f.saved.x.detach();
    const Tensor my = fake_quantize_mask(f.y, hq), mh = fake_quantize_mask(f.h_n, hq);
    autograd::record("qat_gru_sequence", {x_fq, w_ih_fq, w_hh_fq, w.b_ih, w.b_hh}, {out.y, out.h_n},
                     [fw, saved = std::move(f.saved), my, mh, reverse](const autograd::Grads& g,
                                                                       const autograd::Needs& n) {
                       ops::RnnSeqNeeds need{n[0], false, false, n[1], n[2], n[3], n[4], false};
                       ops::RnnSeqGrads d =
                           ops::gru_seq_backward(masked(g[0], my), masked(g[1], mh), fw, saved, reverse, need);
                       return autograd::Grads{d.dx, d.dw_ih, d.dw_hh, d.db_ih, d.db_hh};
                     });
  }
  return out;
}

std::vector<std::unique_ptr<QatGru>> prepare_qat_gru(nn::Module& model, QatLstmOptions o) {
  std::vector<std::unique_ptr<QatGru>> out;
  for (auto& [path, m] : model.named_modules())
    if (auto* gru = dynamic_cast<nn::GRU*>(m)) out.push_back(std::make_unique<QatGru>(*gru, path, o));
  return out;
}

int lower_qat_gru(runtime::Graph& g, const std::vector<std::unique_ptr<QatGru>>& q) {
  auto quantize = [](runtime::Graph& gr, const compile::GruRangesOf& r) { return compile::quantize_static_gru(gr, r); };
  return lower_qat(g, q, quantize, "lower_qat_gru", "gru", "GRU", 4, "qgru");
}

}  // namespace finch::quant
