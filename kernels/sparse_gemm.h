// Sparse weights × dense activations (SpMM) for pruned Linear and conv layers: the weight's zeros
// dropped at load into rows of nonzeros by output channel (CSR), fp32 and exact int8 micro-kernels
// (Highway, sparse_gemm_hwy.cc) beside their scalar references. No vector types here.
//
// Shapes: M output channels (weight rows), K reduction length (C·KH·KW, or a Linear's inputs),
// N columns of the activation side (pixels of one image in CHW layout, or rows of a Linear input).
// Layouts: row k of the activations starts at x + koff[k] (column n at x[koff[k] + n]): k·ldx for
// a plain [K][ldx] matrix, or tap offsets into padded input planes, where a stride-1 conv reads
// its taps in place (no im2col copy; sparse_conv.cc); y [M][ldy].
//
// Why this layout (XNNPACK's "fast sparse convnets", Elsen et al. 2019): with the pixels of a CHW
// plane along the vector lanes, one nonzero weight is one broadcast and one FMA over a vector of
// pixels read contiguously, and the zeros cost nothing. The dense kernels it competes with are
// packed GEMMs with register tiles; the sparse one loads an activation vector per weight, so it
// only wins when most weights are zero (bench/bench_sparse.cc measures where).
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/fused_act.h"
#include "kernels/qs8_gemm.h"  // RowQuant, OutQuant

namespace finch::quant::kernels {

// A weight matrix W [M][K] by output row, zeros dropped: row m's nonzeros are val[ptr[m] ..
// ptr[m+1]), in increasing column order, at columns col[..]. Built once when a program loads.
template <class T>
struct SparseRows {
  int64_t M = 0, K = 0;
  std::vector<int32_t> ptr;  // [M + 1]
  std::vector<int32_t> col;  // [nnz]
  std::vector<T> val;        // [nnz]
  int64_t nnz() const { return int64_t(val.size()); }
  // The fraction of W's entries that are zero (0 for an empty matrix).
  double sparsity() const { return M * K > 0 ? 1.0 - double(nnz()) / double(M * K) : 0.0; }
};
// W [M][K] row-major -> its rows of nonzeros. Fails (one sentence) when K does not fit int32.
SparseRows<float> sparse_rows(const float* w, int64_t M, int64_t K);
SparseRows<int8_t> sparse_rows(const int8_t* w, int64_t M, int64_t K);
// The fraction of zeros among n values (a layer's measured sparsity, before any packing).
double zero_fraction(const float* w, int64_t n);
double zero_fraction(const int8_t* w, int64_t n);

// ---- fp32 ----
// y[m·ldy + n] = act(bias[m] + Σ_j val[j]·x[koff[col[j]] + n]) for m in [m0, m1), n in [n0, n1);
// bias may be null (0). Sums in the order of the row's nonzeros.
void f32_spmm(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, const int64_t* koff,
              int64_t n0, int64_t n1, int64_t m0, int64_t m1, float* y, int64_t ldy);
// One Linear row: y[m] = act(bias[m] + Σ_j val[j]·x[col[j]]) for m in [m0, m1) (a gathered dot,
// for the few-row case where the columns cannot fill a vector).
void f32_spmv(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, int64_t m0, int64_t m1,
              float* y);

// ---- int8 ----
// The int8 rule of the dense kernels (qs8_gemm.h): activations as u8 codes, per row
//   acc = q[m].offset + Σ_j val[j]·x[koff[col[j]] + n]  (int32, wrapping; offset = bias − zx_u8·Σw)
//   out = clamp(z_out + rounding_shift(int64(acc)·multiplier, 31 + shift), qmin, qmax)
// so the codes are the dense kernels' bit for bit: zeros add nothing to the exact sum, and Σw over
// the nonzeros is Σw. Codes are stored as bytes at out + m·ldy + n.
void qs8_spmm(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
              const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy);
// One Linear row of u8 codes, widened to int32 (xi [K]) so that it can be gathered:
// out[m] for m in [m0, m1), as qs8_spmm with N = 1.
void qs8_spmv(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const int32_t* xi,
              int64_t m0, int64_t m1, uint8_t* out);

// Channel quads (AVX-512 VNNI): the weight of a conv by quads of 4 consecutive input channels at
// one tap, a quad kept when any of its 4 weights is nonzero; val packs the 4 i8 weights (byte j =
// channel 4·cq + j, channels past C are 0), col = cq·taps + tap. The activations are interleaved
// the same way: quad q of pixel n is the 4 bytes at x + koff[q] + 4·n. One vpdpbusd then
// multiplies a quad of weights with 16 pixels × 4 channels, the dense kernel's arithmetic density
// on the kept quads (the one-weight kernel above has 1/16 of it). The sums are those of qs8_spmm.
SparseRows<int32_t> sparse_quads(const int8_t* w, int64_t M, int64_t C, int64_t taps);
// True where the current target has the quad kernel (AVX3_DL); elsewhere qs8_spmm_quad is the
// scalar reference and callers use qs8_spmm.
bool qs8_quad_kernel();
void qs8_spmm_quad(const SparseRows<int32_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
                   const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy);

// The scalar references of the micro-kernels (plain loops, same arguments); the Highway
// ones are checked against them on every compiled target (tests/runtime/test_sparse_gemm.cc).
namespace sparse_ref {
void f32_spmm(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, const int64_t* koff,
              int64_t n0, int64_t n1, int64_t m0, int64_t m1, float* y, int64_t ldy);
void f32_spmv(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, int64_t m0, int64_t m1,
              float* y);
void qs8_spmm(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
              const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy);
void qs8_spmv(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const int32_t* xi,
              int64_t m0, int64_t m1, uint8_t* out);
void qs8_spmm_quad(const SparseRows<int32_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
                   const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy);
}  // namespace sparse_ref

}  // namespace finch::quant::kernels
