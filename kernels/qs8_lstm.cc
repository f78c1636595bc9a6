// QLstm (qs8_lstm.h): the static int8 LSTM on the packed int8 dot kernels, bit for bit the
// reference qlstm_sequence_reference.
//
// Shapes as qs8_lstm.h. Work per call: the input GEMM for all T·B rows at once (gx [T·B, 4H]
// int16, parallel over groups of rows × blocks of 64 gate rows), then per step the recurrent
// GEMM of the active samples (gate_gemm_step: up to four samples per weight load) straight into
// the gate pre-activations (gx added with saturation, the reference's q16_add_sat order), the
// gate pass, and the projection.
#include "kernels/qs8_lstm.h"

#include "framework/parallel.h"
#include "kernels/qs8_gemm.h"

namespace finch::quant::kernels {
namespace {

// qlstm_gates_reference on the vector passes: the four σ/tanh lookups, the cell pass, the tanh
// lookups of the new cell, the output pass. scratch: 5H int16.
void gates_fast(int64_t H, const int16_t* pre, int k, const FixedPointMultiplier& m_out, int32_t z, int16_t* c,
                int8_t* out, int16_t* scratch) {
  const int16_t* sig = q16_sigmoid_table();
  const int16_t* th = q16_tanh_table();
  int16_t *i = scratch, *f = i + H, *g = f + H, *o = g + H, *t = o + H;
  for (int64_t j = 0; j < H; ++j) {
    i[j] = sig[uint16_t(pre[j])];
    f[j] = sig[uint16_t(pre[H + j])];
    g[j] = th[uint16_t(pre[2 * H + j])];
    o[j] = sig[uint16_t(pre[3 * H + j])];
  }
  lstm_cell_pass(H, i, f, g, k, c, t);
  for (int64_t j = 0; j < H; ++j) t[j] = th[uint16_t(t[j])];
  lstm_out_pass(H, o, t, m_out, z, out);
}

}  // namespace

QLstm::QLstm(QLstmCell cell) : p_(std::move(cell)) {
  check_qlstm_cell(p_);
  q16_sigmoid_table(), q16_tanh_table();  // built here (a few ms, once), not inside the first run
  ih_ = pack_rows(p_.ih, p_.x.z);
  hh_ = pack_rows(p_.hh, p_.h.z);
  if (p_.P > 0) proj_ = pack_rows(p_.proj, p_.m.z);
}

void QLstm::run(int64_t T, int64_t B, const int8_t* x, const int64_t* lengths, int8_t* h, int16_t* c,
                int8_t* y) const {
  check_rnn_lengths("qlstm", T, B, lengths);
  if (T == 0) return;
  const int64_t IN = p_.IN, H = p_.H, HO = p_.hidden_out(), G = 4 * H;

  // Input projection of every step: one pass over T·B rows.
  std::vector<uint8_t> xu(static_cast<size_t>(T * B * ih_.Kp));
  std::vector<int8_t> xs(xu.size());
  for (int64_t i = 0; i < T * B; ++i) {
    to_u8_padded(x + i * IN, IN, ih_.Kp, xu.data() + i * ih_.Kp);
    pad_i8(x + i * IN, IN, ih_.Kp, xs.data() + i * ih_.Kp);
  }
  std::vector<int16_t> gx(static_cast<size_t>(T * B * G));
  gate_gemm(ih_, xu.data(), xs.data(), T * B, gx.data());

  std::vector<uint8_t> hu(static_cast<size_t>(B * hh_.Kp));
  std::vector<int8_t> hs(hu.size());
  std::vector<int16_t> pre(static_cast<size_t>(B * G));
  std::vector<int64_t> active;
  active.reserve(size_t(B));
  const int64_t kp_m = p_.P > 0 ? proj_.Kp : 0;
  std::vector<int8_t> m(static_cast<size_t>(B * H));
  std::vector<int16_t> scratch(static_cast<size_t>(B * 5 * H));
  std::vector<uint8_t> mu(static_cast<size_t>(B * kp_m));
  for (int64_t t = 0; t < T; ++t) {
    active.clear();
    for (int64_t b = 0; b < B; ++b) {
      if (lengths && t >= lengths[b]) {
        std::fill(y + (t * B + b) * HO, y + (t * B + b + 1) * HO, int8_t(p_.h.z));
        continue;
      }
      to_u8_padded(h + b * HO, HO, hh_.Kp, hu.data() + b * hh_.Kp);
      pad_i8(h + b * HO, HO, hh_.Kp, hs.data() + int64_t(active.size()) * hh_.Kp);  // active samples packed
      active.push_back(b);
    }
    const auto na = int64_t(active.size());
    if (na == 0) continue;
    gate_gemm_step(hh_, hu.data(), hs.data(), active.data(), na, gx.data() + t * B * G, pre.data());
    parallel_for(0, na, Work::bytes(double(G * 16)), [&](int64_t a, int64_t e) {
      for (int64_t i = a; i < e; ++i) {
        const int64_t b = active[size_t(i)];
        int8_t* out = p_.P > 0 ? m.data() + b * H : h + b * HO;
        gates_fast(H, pre.data() + b * G, p_.k_cell, p_.m_out, p_.P > 0 ? p_.m.z : p_.h.z, c + b * H, out,
                   scratch.data() + b * 5 * H);
        if (p_.P > 0) {
          uint8_t* mub = mu.data() + b * kp_m;
          to_u8_padded(out, H, kp_m, mub);
          int32_t acc[64];
          for (int64_t q0 = 0; q0 < p_.P; q0 += 64) {
            const int64_t n = std::min<int64_t>(64, p_.P - q0);
            qs8::qu8s8_dot_rows(mub, proj_.w.data() + q0 * kp_m, n, kp_m, acc);
            for (int64_t j = 0; j < n; ++j) {
              const auto v = int32_t(uint32_t(acc[j]) + uint32_t(proj_.offset[size_t(q0 + j)]));
              h[b * HO + q0 + j] = int8_t(requantize(v, p_.proj.m[size_t(q0 + j)], p_.h.z, -128, 127));
            }
          }
        }
        std::copy(h + b * HO, h + (b + 1) * HO, y + (t * B + b) * HO);
      }
    });
  }
}

}  // namespace finch::quant::kernels
