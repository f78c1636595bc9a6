// The pieces shared by the static int8 LSTM and GRU cells (qs8_lstm.h, qs8_gru.h): int8
// activations, a requantized int8 weight matrix, and the per-element integer steps, each one
// rounding by the rule of docs/quantization.md §5 ("Integer LSTM and GRU" there specifies them).
//
// Public on purpose: the QAT simulation reproduces the deployed cell by calling these.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernels/q16_act.h"
#include "kernels/requant.h"

namespace finch::quant::kernels {

// An int8 affine activation: real = (q − z) · s, q in [-128, 127].
struct QAct {
  float s = 1.0f;
  int32_t z = 0;
};

// One int8 GEMM of a cell, [rows, cols], and how its int32 sums are requantized:
//   acc[r] = wrap32(Σ_k (x[k] − z_x) · w[r, k] + bias[r])
//   out[r] = clamp(rounding_shift(int64(acc[r]) · m[r].multiplier, m[r].total_shift()) + z_out, lo, hi)
// Gate matrices produce Q3.12 int16 (z_out 0, [-32768, 32767], m[r] = s_x · s_w[r] · 2^12);
// the projection produces int8 (m[r] = s_in · s_w[r] / s_out).
struct QMatrix {
  int64_t rows = 0, cols = 0;
  std::vector<int8_t> w;                // [rows, cols], symmetric narrow codes (-127..127)
  std::vector<float> s_w;               // [rows] weight scales (z = 0)
  std::vector<int32_t> bias;            // [rows], scale s_x · s_w[r]; empty = no bias
  std::vector<FixedPointMultiplier> m;  // [rows]
};

// Checks a matrix against its expected shape: finch::Error sentences naming `what`.
void check_qmatrix(const char* op, const char* what, const QMatrix& q, int64_t rows, int64_t cols);
void check_qact(const char* op, const char* what, const QAct& a);

// acc[r] of the matrix for one input row x [cols] (int64 sum, reduced modulo 2^32).
int32_t qmatrix_acc_reference(const QMatrix& q, int64_t r, const int8_t* x, int32_t z_x);

// The Q3.12 gate pre-activation of an accumulator: requantize to [-32768, 32767], z = 0.
inline int16_t q16_gate(int32_t acc, const FixedPointMultiplier& m) {
  return int16_t(requantize(acc, m, 0, -32768, 32767));
}
// Saturating int16 sum (the two GEMMs' contributions to one gate).
inline int16_t q16_add_sat(int16_t a, int16_t b) { return int16_t(std::clamp(int32_t(a) + b, -32768, 32767)); }

// Float w [rows, cols] -> int8 symmetric narrow codes and scales per row (qparams §2, quantize §3:
// f32 division, round half to even); bias and m left empty. Non-finite values: a finch::Error.
QMatrix quantize_matrix(const char* op, const char* what, const std::vector<float>& w, int64_t rows, int64_t cols);

// Multipliers of a gate matrix: s_x · s_w[r] · 2^12, in double from the f32 scales.
std::vector<FixedPointMultiplier> gate_multipliers(float s_x, const std::vector<float>& s_w);
// The multiplier of a Q0.30 product (two Q0.15 factors) into int8 codes of scale s_out: 2^-30 / s_out.
FixedPointMultiplier q30_out_multiplier(float s_out);

// T >= 0, B >= 1 and lengths (null, or B values) in [0, T]: a finch::Error sentence otherwise.
void check_rnn_lengths(const char* op, int64_t T, int64_t B, const int64_t* lengths);

// The reverse direction of a bidirectional layer runs the forward cell on each sample's valid
// steps reversed: out[t, b] = in[len_b − 1 − t, b] for t < len_b, padded steps copied as they are
// (len_b = T without lengths). Its own inverse. in/out [T, B, F], not overlapping.
void reverse_steps(int64_t T, int64_t B, int64_t F, const int8_t* in, const int64_t* lengths, int8_t* out);

// ---- for the fast operators (qs8_lstm.cc, qs8_gru.cc) ----
// A matrix's rows zero padded to Kp (a multiple of qs8::kDotAlign) for qs8::qu8s8_dot_rows, and
// per row the int32 offset bias − (z_x + 128)·Σw (wrapping): the kernel multiplies u8 codes
// x ^ 0x80 = x + 128, so acc = raw + offset is the reference's accumulator modulo 2^32.
// mult/shift: each row's multiplier (sign-extended) and total shift, a shift >= 64 normalized to
// multiplier 0, shift 1 (both give 0).
// wu/offset_s8: the same rows for gemm_s8u8 (u8 w + 128, [ceil(rows/128)][K4][8][16][4], K4 =
// ceil(cols/4); offset_s8 = bias − z_x·Σw, the kernel having taken 128·Σx itself).
struct PackedRows {
  int64_t rows = 0, Kp = 0, K4 = 0;
  std::vector<int8_t> w;
  std::vector<int32_t> offset;
  std::vector<int64_t> mult, shift, half;  // half = 2^(shift − 1)
  // The same per row for the vector pass: mult32 as int32; shift/half per 16-row chunk with the
  // even rows first, then the odd ones (chunk c, row 16c + j at 16c + j/2 or 16c + 8 + j/2).
  std::vector<int32_t> mult32;
  std::vector<int64_t> shift_eo, half_eo;
  std::vector<uint8_t> wu;
  std::vector<int32_t> offset_s8;
};
PackedRows pack_rows(const QMatrix& q, int32_t z_x);
// x i8 [n] -> u8 [Kp] (x ^ 0x80, zero padded).
void to_u8_padded(const int8_t* x, int64_t n, int64_t Kp, uint8_t* dst);
// acc[i][r] = Σ_k x[i][k]·w[16·b0 + r][k] (wrapping) for i < rows, r < M, from wu (above) and
// x i8 [rows][ldx] zero padded past the K columns up to 4·K4; each acc row (stride ldacc) holds
// ceil(M/16)·16 values. False where the target has no such kernel (AVX-512 VNNI only).
bool gemm_s8u8(const int8_t* x, int64_t ldx, int64_t rows, const uint8_t* wu, int64_t b0, int64_t M, int64_t K4,
               int32_t* acc, int64_t ldacc);
// The input GEMM of a sequence: out[i][r] = q16_gate of row i of x (u8 xu / i8 xs, both [n][Kp])
// for all n rows and G = pk.rows gate rows, in parallel.
void gate_gemm(const PackedRows& pk, const uint8_t* xu, const int8_t* xs, int64_t n, int16_t* out);
// Rows r0 .. r1−1 of the packed matrix against one u8 row: out[r − r0] = the Q3.12 gate
// (q16_gate) of each accumulator, plus add[r − r0] (saturating) when add is not null.
// The vector core of gate_rows (qs8_rnn_hwy.cc): out[i] = q16_gate(raw[i] + offset[i]) (+ add[i],
// saturating, when add is not null) for rows r0 + i of pk (its multipliers), i < n.
struct PackedRows;
void q12_rows(const int32_t* raw, const int32_t* offset, const PackedRows& pk, int64_t r0, const int16_t* add,
              int64_t n, int16_t* out);
// The vector passes of the operators' gate steps (qs8_rnn_hwy.cc), over H elements, bit for bit
// the element functions of qs8_lstm.h / qs8_gru.h:
//   lstm_cell_pass: c[j] = qlstm_cell_update(f, c, i, g, k), tin[j] = qlstm_cell_to_q12(c[j], k)
//   lstm_out_pass:  out[j] = requantize(o[j]·t[j], m, z, -128, 127)   (m total shift in [1, 62])
//   gru_n_pass:     out[j] = qgru_n_preact(gx_n, r, gh_n)
//   gru_h_pass:     h[j] = qgru_h_update(z, n, h, z_h, m)              (m total shift in [15, 54])
void lstm_cell_pass(int64_t H, const int16_t* i, const int16_t* f, const int16_t* g, int k, int16_t* c, int16_t* tin);
void lstm_out_pass(int64_t H, const int16_t* o, const int16_t* t, const FixedPointMultiplier& m, int32_t z,
                   int8_t* out);
void gru_n_pass(int64_t H, const int16_t* gx_n, const int16_t* r, const int16_t* gh_n, int16_t* out);
void gru_h_pass(int64_t H, const int16_t* z, const int16_t* n, int8_t* h, int32_t z_h, const FixedPointMultiplier& m);
// xs: the same row as i8 codes, zero padded to Kp, for gemm_s8u8 (r0 a multiple of 16 and at
// most kGateRowsMax rows take it; any range works).
inline constexpr int64_t kGateRowsMax = 128;
void gate_rows(const PackedRows& pk, const uint8_t* x, const int8_t* xs, int64_t r0, int64_t r1, const int16_t* add,
               int16_t* out);
// The recurrent GEMM of one step for the na samples idx[0..na): sample b = idx[i] reads its u8
// row at xu + b·Kp (the dot-rows path) and its i8 row at xs + i·Kp (the VNNI path, up to four
// samples per weight load), and writes out + b·G (G = pk.rows) = q16_gate of each row, plus
// add + b·G with saturation when add is not null. In parallel over samples × row blocks.
void gate_gemm_step(const PackedRows& pk, const uint8_t* xu, const int8_t* xs, const int64_t* idx, int64_t na,
                    const int16_t* add, int16_t* out);
// x i8 [n] -> [Kp] zero padded.
void pad_i8(const int8_t* x, int64_t n, int64_t Kp, int8_t* dst);

}  // namespace finch::quant::kernels
