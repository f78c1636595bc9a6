// The packing and GEMV helpers the int8 LSTM and GRU operators share (qs8_rnn.h).
#include "kernels/qs8_rnn.h"

#include "framework/parallel.h"
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
  pk.K4 = (q.cols + 3) / 4;
  const int64_t K4 = pk.K4, ngroups = (q.rows + 127) / 128;
  pk.wu.assign(size_t(ngroups * K4 * 512), uint8_t(128));  // 128 = weight 0: padding rows and k
  for (int64_t r = 0; r < q.rows; ++r)
    for (int64_t k = 0; k < q.cols; ++k)
      pk.wu[size_t(((r / 128 * K4 + k / 4) * 8 + (r % 128) / 16) * 64 + (r % 16) * 4 + k % 4)] =
          uint8_t(int32_t(q.w[size_t(r * q.cols + k)]) + 128);
  pk.offset_s8.resize(size_t(q.rows));
  for (int64_t r = 0; r < q.rows; ++r) {
    const int64_t b = q.bias.empty() ? 0 : q.bias[size_t(r)];
    pk.offset_s8[size_t(r)] = int32_t(uint32_t(uint64_t(b - int64_t(z_x) * sums[size_t(r)])));
  }
  pk.mult.resize(size_t(q.rows));
  pk.shift.resize(size_t(q.rows));
  for (int64_t r = 0; r < q.rows; ++r) {
    const FixedPointMultiplier& m = q.m[size_t(r)];
    const bool zero = m.multiplier == 0 || m.total_shift() >= 64;
    pk.mult[size_t(r)] = zero ? 0 : m.multiplier;
    pk.shift[size_t(r)] = zero ? 1 : m.total_shift();
    pk.half.push_back(int64_t(1) << (pk.shift[size_t(r)] - 1));
  }
  const int64_t chunks = (q.rows + 15) / 16;
  pk.mult32.assign(size_t(chunks * 16), 0);
  pk.shift_eo.assign(size_t(chunks * 16), 1);
  pk.half_eo.assign(size_t(chunks * 16), 1);
  for (int64_t r = 0; r < q.rows; ++r) {
    const int64_t j = r % 16, at = (r / 16) * 16 + (j % 2 ? 8 : 0) + j / 2;
    pk.mult32[size_t(r)] = int32_t(pk.mult[size_t(r)]);
    pk.shift_eo[size_t(at)] = pk.shift[size_t(r)];
    pk.half_eo[size_t(at)] = pk.half[size_t(r)];
  }
  return pk;
}

void to_u8_padded(const int8_t* x, int64_t n, int64_t Kp, uint8_t* dst) {
  for (int64_t k = 0; k < n; ++k) dst[k] = uint8_t(x[k]) ^ 0x80;
  std::fill(dst + n, dst + Kp, uint8_t(0));
}

void pad_i8(const int8_t* x, int64_t n, int64_t Kp, int8_t* dst) {
  std::copy(x, x + n, dst);
  std::fill(dst + n, dst + Kp, int8_t(0));
}

void gate_rows(const PackedRows& pk, const uint8_t* x, const int8_t* xs, int64_t r0, int64_t r1, const int16_t* add,
               int16_t* out) {
  int32_t acc[kGateRowsMax];
  if (r0 % 16 == 0 && r1 - r0 <= kGateRowsMax &&
      gemm_s8u8(xs, pk.Kp, 1, pk.wu.data(), r0 / 16, r1 - r0, pk.K4, acc, kGateRowsMax))
    return q12_rows(acc, pk.offset_s8.data() + r0, pk, r0, add, r1 - r0, out);
  for (int64_t a = r0; a < r1; a += 64) {
    const int64_t n = std::min<int64_t>(64, r1 - a);
    qs8::qu8s8_dot_rows(x, pk.w.data() + a * pk.Kp, n, pk.Kp, acc);
    q12_rows(acc, pk.offset.data() + a, pk, a, add ? add + (a - r0) : nullptr, n, out + (a - r0));
  }
}

void gate_gemm(const PackedRows& pk, const uint8_t* xu, const int8_t* xs, int64_t n, int16_t* out) {
  const int64_t G = pk.rows, nblk = (G + 63) / 64;
  constexpr int64_t kRows = 4;  // rows of x per work item: each weight vector is loaded once for them
  const int64_t ngrp = (n + kRows - 1) / kRows;
  parallel_for(0, ngrp * nblk, Work::macs_i8(double(kRows * 64 * pk.Kp)), [&](int64_t a, int64_t e) {
    int32_t acc[kRows * 64];
    for (int64_t w = a; w < e; ++w) {
      const int64_t i0 = (w / nblk) * kRows, rows = std::min(kRows, n - i0);
      const int64_t r0 = (w % nblk) * 64, r1 = std::min(G, r0 + 64);
      if (gemm_s8u8(xs + i0 * pk.Kp, pk.Kp, rows, pk.wu.data(), r0 / 16, r1 - r0, pk.K4, acc, 64)) {
        for (int64_t i = 0; i < rows; ++i)
          q12_rows(acc + i * 64, pk.offset_s8.data() + r0, pk, r0, nullptr, r1 - r0, out + (i0 + i) * G + r0);
      } else {
        for (int64_t i = 0; i < rows; ++i)
          gate_rows(pk, xu + (i0 + i) * pk.Kp, xs + (i0 + i) * pk.Kp, r0, r1, nullptr, out + (i0 + i) * G + r0);
      }
    }
  });
}

void gate_gemm_step(const PackedRows& pk, const uint8_t* xu, const int8_t* xs, const int64_t* idx, int64_t na,
                    const int16_t* add, int16_t* out) {
  const int64_t G = pk.rows, nblk = (G + kGateRowsMax - 1) / kGateRowsMax;
  constexpr int64_t kRows = 4;
  const int64_t ngrp = (na + kRows - 1) / kRows;
  parallel_for(0, ngrp * nblk, Work::macs_i8(double(kRows * kGateRowsMax * pk.Kp)), [&](int64_t a, int64_t e) {
    int32_t acc[kRows * kGateRowsMax];
    for (int64_t w = a; w < e; ++w) {
      const int64_t i0 = (w / nblk) * kRows, rows = std::min(kRows, na - i0);
      const int64_t r0 = (w % nblk) * kGateRowsMax, r1 = std::min(G, r0 + kGateRowsMax);
      const bool vnni =
          gemm_s8u8(xs + i0 * pk.Kp, pk.Kp, rows, pk.wu.data(), r0 / 16, r1 - r0, pk.K4, acc, kGateRowsMax);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t b = idx[i0 + i];
        const int16_t* ad = add ? add + b * G + r0 : nullptr;
        if (vnni)
          q12_rows(acc + i * kGateRowsMax, pk.offset_s8.data() + r0, pk, r0, ad, r1 - r0, out + b * G + r0);
        else
          gate_rows(pk, xu + b * pk.Kp, xs + (i0 + i) * pk.Kp, r0, r1, ad, out + b * G + r0);
      }
    }
  });
}

}  // namespace finch::quant::kernels
