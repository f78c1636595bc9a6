// QGru (qs8_gru.h): the static int8 GRU on the packed int8 dot kernels, bit for bit the reference
// qgru_sequence_reference. The input GEMM of all T·B rows runs first (gx [T·B, 3H] int16); per
// step the recurrent GEMM of the active samples (gate_gemm_step) gives gh [3H] for each, kept
// apart from gx because the candidate gate scales W_hn h + b_hn by r before adding W_in x + b_in.
#include "kernels/qs8_gru.h"

#include "framework/parallel.h"

namespace finch::quant::kernels {
namespace {

// qgru_gates_reference on the vector passes. scratch: 4H int16.
void gates_fast(int64_t H, const int16_t* gx, const int16_t* gh, const FixedPointMultiplier& m_out, int32_t z_h,
                int8_t* h, int16_t* scratch) {
  const int16_t* sig = q16_sigmoid_table();
  const int16_t* th = q16_tanh_table();
  int16_t *r = scratch, *z = r + H, *npre = z + H, *n = npre + H;
  for (int64_t j = 0; j < H; ++j) {
    r[j] = sig[uint16_t(q16_add_sat(gx[j], gh[j]))];
    z[j] = sig[uint16_t(q16_add_sat(gx[H + j], gh[H + j]))];
  }
  gru_n_pass(H, gx + 2 * H, r, gh + 2 * H, npre);
  for (int64_t j = 0; j < H; ++j) n[j] = th[uint16_t(npre[j])];
  gru_h_pass(H, z, n, h, z_h, m_out);
}

}  // namespace

QGru::QGru(QGruCell cell) : p_(std::move(cell)) {
  check_qgru_cell(p_);
  q16_sigmoid_table(), q16_tanh_table();  // built here (a few ms, once), not inside the first run
  ih_ = pack_rows(p_.ih, p_.x.z);
  hh_ = pack_rows(p_.hh, p_.h.z);
}

void QGru::run(int64_t T, int64_t B, const int8_t* x, const int64_t* lengths, int8_t* h, int8_t* y) const {
  check_rnn_lengths("qgru", T, B, lengths);
  if (T == 0) return;
  const int64_t IN = p_.IN, H = p_.H, G = 3 * H;

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
  std::vector<int16_t> scratch(static_cast<size_t>(B * 4 * H));
  std::vector<int16_t> gh(static_cast<size_t>(B * G));
  std::vector<int64_t> active;
  active.reserve(size_t(B));
  for (int64_t t = 0; t < T; ++t) {
    active.clear();
    for (int64_t b = 0; b < B; ++b) {
      if (lengths && t >= lengths[b]) {
        std::fill(y + (t * B + b) * H, y + (t * B + b + 1) * H, int8_t(p_.h.z));
        continue;
      }
      to_u8_padded(h + b * H, H, hh_.Kp, hu.data() + b * hh_.Kp);
      pad_i8(h + b * H, H, hh_.Kp, hs.data() + int64_t(active.size()) * hh_.Kp);  // active samples packed
      active.push_back(b);
    }
    const auto na = int64_t(active.size());
    if (na == 0) continue;
    gate_gemm_step(hh_, hu.data(), hs.data(), active.data(), na, nullptr, gh.data());
    parallel_for(0, na, Work::bytes(double(G * 12)), [&](int64_t a, int64_t e) {
      for (int64_t i = a; i < e; ++i) {
        const int64_t b = active[size_t(i)];
        gates_fast(H, gx.data() + (t * B + b) * G, gh.data() + b * G, p_.m_out, p_.h.z, h + b * H,
                   scratch.data() + b * 4 * H);
        std::copy(h + b * H, h + (b + 1) * H, y + (t * B + b) * H);
      }
    });
  }
}

}  // namespace finch::quant::kernels
