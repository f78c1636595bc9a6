// kernels::qs8_attention (qs8_transformer.h): the int8 attention operator. Both matmuls run on
// the int8 GEMV rows kernel (qs8::qu8s8_dot_rows: VNNI on AVX-512, sdot on ARM, Highway widening
// dots elsewhere) over one (b, head)'s K_h and V_hᵀ packed once into zero-padded rows; the
// integer softmax between them is the reference's own function, so every code equals
// reference::qs8_attention's.
//
// Shape vocabulary: B batch, S sequence, H hidden, NH heads, HD = H / NH, Kp / Sp = HD / S
// rounded up to qs8::kDotAlign.
#include <cmath>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_gemm.h"
#include "kernels/qs8_transformer.h"

namespace finch::quant::kernels {

namespace {

int64_t round_up(int64_t v, int64_t a) { return (v + a - 1) / a * a; }

}  // namespace

void qs8_attention(const int8_t* q, const int8_t* k, const int8_t* v, const uint8_t* mask, const QAttentionShape& sh,
                   const QAttentionQuant& qu, int8_t* out) {
  if (sh.B < 1 || sh.S < 1 || sh.NH < 1 || sh.H % sh.NH != 0)
    fail("qs8_attention: expected B, S >= 1 and heads dividing H, found B ", sh.B, ", S ", sh.S, ", H ", sh.H,
         ", heads ", sh.NH);
  const int64_t S = sh.S, H = sh.H, NH = sh.NH, HD = H / NH;
  const int64_t Kp = round_up(HD, qs8::kDotAlign), Sp = round_up(S, qs8::kDotAlign);
  const ISoftmaxParams sp = isoftmax_params(float(double(qu.s_q) * double(qu.s_k) / std::sqrt(double(HD))));
  const FixedPointMultiplier m = quantize_multiplier(double(qu.s_v) / 255.0 / double(qu.s_out));
  // One task per (b, head): 2·S²·HD multiply-adds.
  parallel_for(0, sh.B * NH, Work::macs_i8(2.0 * double(S) * double(S) * double(HD)), [&](int64_t t0, int64_t t1) {
    std::vector<int8_t> kh(size_t(S * Kp)), vt(size_t(HD * Sp));
    std::vector<int32_t> ksum(static_cast<size_t>(S)), scores(static_cast<size_t>(S)), acc(static_cast<size_t>(HD));
    std::vector<uint8_t> qrow(size_t(Kp), 0), prow(size_t(Sp), 0);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / NH, h = t % NH;
      const int8_t* qb = q + b * S * H + h * HD;
      const int8_t* kb = k + b * S * H + h * HD;
      const int8_t* vb = v + b * S * H + h * HD;
      // K_h rows padded with zeros, and their sums: the u8 query row is q + 128, so
      // Σ (q + 128)·k = score + 128·Σk.
      for (int64_t j = 0; j < S; ++j) {
        int32_t s = 0;
        for (int64_t d = 0; d < HD; ++d) s += kh[size_t(j * Kp + d)] = kb[j * H + d];
        ksum[size_t(j)] = 128 * s;
      }
      for (int64_t j = 0; j < S; ++j)
        for (int64_t d = 0; d < HD; ++d) vt[size_t(d * Sp + j)] = vb[j * H + d];
      const uint8_t* valid = mask ? mask + b * S : nullptr;
      for (int64_t i = 0; i < S; ++i) {
        for (int64_t d = 0; d < HD; ++d) qrow[size_t(d)] = uint8_t(qb[i * H + d] ^ 0x80);
        qs8::qu8s8_dot_rows(qrow.data(), kh.data(), S, Kp, scores.data());
        for (int64_t j = 0; j < S; ++j) scores[size_t(j)] -= ksum[size_t(j)];
        isoftmax_row(scores.data(), valid, S, sp, prow.data());  // prow[S..Sp) stays 0
        qs8::qu8s8_dot_rows(prow.data(), vt.data(), HD, Sp, acc.data());
        int8_t* o = out + (b * S + i) * H + h * HD;
        requantize(acc.data(), HD, m, qu.z_out, qu.qmin, qu.qmax, o);
      }
    }
  });
}

}  // namespace finch::quant::kernels
