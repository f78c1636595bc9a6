// The packing and GEMV helpers the int8 LSTM and GRU operators share (qs8_rnn.h).
#include "kernels/qs8_rnn.h"

#include "kernels/qs8_gemm.h"

namespace finch::quant::kernels {

PackedRows pack_rows(const QMatrix& q, int32_t z_x) {
  PackedRows pk;
  pk.rows = q.rows;
  pk.Kp = std::max<int64_t>(1, (q.cols + qs8::kDotAlign - 1) / qs8::kDotAlign) * qs8::kDotAlign;
  pk.w.assign(size_t(q.rows * pk.Kp), 0);
  for (int64_t r = 0; r < q.rows; ++r)
    std::copy(q.w.begin() + r * q.cols, q.w.begin() + (r + 1) * q.cols, pk.w.begin() + r * pk.Kp);
  const std::vector<int64_t> sums = qs8::weight_sums(q.w.data(), q.rows, q.cols);
  pk.offset.resize(size_t(q.rows));
  for (int64_t r = 0; r < q.rows; ++r) {
    const int64_t b = q.bias.empty() ? 0 : q.bias[size_t(r)];
    pk.offset[size_t(r)] = int32_t(uint32_t(uint64_t(b - (int64_t(z_x) + 128) * sums[size_t(r)])));
  }
  return pk;
}

void to_u8_padded(const int8_t* x, int64_t n, int64_t Kp, uint8_t* dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = uint8_t(x[k]) ^ 0x80;
  std::fill(dst + n, dst + Kp, uint8_t(0));
}

void gate_rows(const PackedRows& pk, const QMatrix& q, const uint8_t* x, int64_t r0, int64_t r1, const int16_t* add,
               int16_t* out) {
  int32_t acc[64];
  for (int64_t a = r0; a < r1; a += 64) {
    const int64_t n = std::min<int64_t>(64, r1 - a);
    qs8::qu8s8_dot_rows(x, pk.w.data() + a * pk.Kp, n, pk.Kp, acc);
    for (int64_t i = 0; i < n; ++i) {
      const auto v = int32_t(uint32_t(acc[i]) + uint32_t(pk.offset[size_t(a + i)]));
      const int16_t g = q16_gate(v, q.m[size_t(a + i)]);
      out[a - r0 + i] = add ? q16_add_sat(g, add[a - r0 + i]) : g;
    }
  }
}

}  // namespace finch::quant::kernels
