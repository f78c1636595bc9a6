// QatLstm's output-error rounding (qat_rnn.h: round_weights; the algorithm is quant/rnn_rounding.h):
// the calibration steps a float pass keeps, and the rounded weights written back into the module.
#include <cmath>
#include <cstdint>
#include <random>

#include "framework/error.h"
#include "framework/grad_mode.h"
#include "quant/qat_rnn.h"
#include "quant/rnn_rounding.h"

namespace finch::quant {

// A reservoir sample (Vitter's algorithm R, seeded: the same calibration batches keep the same
// steps) of a layer-direction's steps: z = (x_t, h_{t-1}) and the per-row weights a.
struct QatLstm::Kept {
  RnnRoundingSteps steps;
  int64_t offered = 0;
  std::mt19937_64 rng{0x5eed};
};

namespace {

std::vector<float> floats(const Tensor& t) { return t.defined() ? t.detach().contiguous().to_vector<float>() : std::vector<float>(); }

}  // namespace

void QatLstm::keep_steps(int64_t layer, const ops::RnnSaved& s) {
  if (kept_.size() != ranges_.size()) kept_.resize(ranges_.size());
  auto& k = kept_[size_t(layer)];
  if (!k) k = std::make_shared<Kept>();
  const int64_t T = s.x.size(0), B = s.x.size(1), IN = s.x.size(2), HO = s.h_prev.size(2), H = s.c_prev.size(2),
                G = 4 * H, D = IN + HO, cap = opt_.rounding_steps;
  RnnRoundingSteps& st = k->steps;
  if (st.d == 0) st.d = D, st.rows = G;
  if (st.d != D || st.rows != G)
    fail("QAT LSTM: layer ", layer, " of '", path_, "' was calibrated with ", st.d, " inputs, now ", D);
  const std::vector<float> x = floats(s.x), hp = floats(s.h_prev), gates = floats(s.gates), cp = floats(s.c_prev),
                           tc = floats(s.tanh_c);
  std::vector<float> z(static_cast<size_t>(D)), a(static_cast<size_t>(G));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t active = s.order.active.empty() ? B : s.order.active[size_t(t)];
    for (int64_t b = 0; b < active; ++b) {
      const size_t row = size_t(t * B + b);
      std::copy(x.begin() + ptrdiff_t(row * size_t(IN)), x.begin() + ptrdiff_t((row + 1) * size_t(IN)), z.begin());
      std::copy(hp.begin() + ptrdiff_t(row * size_t(HO)), hp.begin() + ptrdiff_t((row + 1) * size_t(HO)),
                z.begin() + IN);
      const float* g = &gates[row * size_t(G)];
      for (int64_t j = 0; j < H; ++j) {
        const double i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
        const double c = cp[row * size_t(H) + size_t(j)], th = tc[row * size_t(H) + size_t(j)];
        // What each gate row drives, per unit of its pre-activation: the cell state for i, f, g
        // (an error there stays in c), h for o.
        const double si = gg * i * (1 - i), sf = c * f * (1 - f), sg = i * (1 - gg * gg), so = th * o * (1 - o);
        a[size_t(j)] = float(si * si), a[size_t(H + j)] = float(sf * sf), a[size_t(2 * H + j)] = float(sg * sg),
                  a[size_t(3 * H + j)] = float(so * so);
      }
      int64_t slot = st.n;
      if (st.n >= cap) {
        slot = int64_t(k->rng() % uint64_t(k->offered + 1));
        if (slot >= cap) slot = -1;
      } else {
        ++st.n;
        st.z.resize(size_t(st.n * D)), st.a.resize(size_t(st.n * G));
      }
      ++k->offered;
      if (slot < 0) continue;
      std::copy(z.begin(), z.end(), st.z.begin() + slot * D);
      std::copy(a.begin(), a.end(), st.a.begin() + slot * G);
    }
  }
}

int64_t QatLstm::rounding_steps_kept(int64_t layer) const {
  ranges(layer);
  return size_t(layer) < kept_.size() && kept_[size_t(layer)] ? kept_[size_t(layer)]->steps.n : 0;
}

int64_t QatLstm::round_weights() {
  if (!lstm_) fail("QAT LSTM: '", path_, "' was removed");
  int64_t done = 0;
  NoGradGuard ng;
  for (size_t l = 0; l < kept_.size(); ++l) {
    if (!kept_[l] || kept_[l]->steps.n == 0) continue;
    nn::RNNBase::Weights& w = lstm_->weights[l];
    const int64_t H = lstm_->hidden_size, IN = w.w_ih.size(1), HO = w.w_hh.size(1);
    const RoundedLstmWeights r =
        lstm_output_error_rounding(IN, H, HO, floats(w.w_ih), floats(w.w_hh), floats(w.b_ih), kept_[l]->steps);
    w.w_ih.copy_(from_vector(r.w_ih, w.w_ih.shape()));
    w.w_hh.copy_(from_vector(r.w_hh, w.w_hh.shape()));
    if (w.b_ih.defined()) w.b_ih.copy_(from_vector(r.b_ih, w.b_ih.shape()));
    kept_[l].reset();
    ++done;
  }
  return done;
}

}  // namespace finch::quant
