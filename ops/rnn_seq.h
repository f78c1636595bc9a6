// Whole-sequence LSTM and GRU layers (one layer, one direction) with their BPTT backward, as
// cuDNN and PyTorch's CPU kernels split them: one GEMM projects the input of every step, each
// step then does only h·W_hhᵀ and a fused gate pass, and backward accumulates dW_ih, dW_hh with
// one GEMM over all steps instead of T small ones.
//
// Shape vocabulary: T steps, B batch, IN input features, H hidden size, P = proj_size (LSTM with
// a projection; P = H otherwise), G = 4H (LSTM gates i, f, g, o) or 3H (GRU gates r, z, n).
//   x [T, B, IN] (time-major), h0 [B, P], c0 [B, H], y [T, B, P], h_n [B, P], c_n [B, H]
//   w_ih [G, IN], w_hh [G, P], b_ih/b_hh [G] (either may be undefined), w_hr [P, H] (LSTM only).
//
// Variable lengths (lengths[b] in 1..T, or none = all T) mean exactly what PyTorch's
// pack_padded_sequence(enforce_sorted=False) gives: sample b runs steps 0..len_b-1 (the reverse
// direction runs len_b-1 down to 0, starting there from h0), y is 0 at its padded steps and
// h_n/c_n are its state at its last valid step. Internally the batch is sorted longest first
// (stable), so the samples still running at step t are a prefix of B_t rows: every per-step GEMM
// and gate pass works on that prefix and padded steps cost nothing — PyTorch's packed layout.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "framework/tensor.h"

namespace finch::ops {

// The batch order a sequence runs in.
struct SeqOrder {
  std::vector<int64_t> order;   // sorted row -> original batch index (longest first, stable)
  std::vector<int64_t> active;  // active[t]: samples whose length exceeds t (a prefix of rows)
  bool identity = true;         // order is 0..B-1 (no lengths, or already sorted)
};
// Validates `lengths` (undefined, or I64 [B] with every value in 1..T) and sorts by it. `who`
// names the caller in the one-sentence error.
SeqOrder seq_order(const char* who, const Tensor& lengths, int64_t T, int64_t B);

// The fp32 per-step recurrent product (ops/rnn_seq_hwy.cc): W_hh [G, K] packed as Wt (G rounded
// up to the vector width, zero-filled, in panels of 4 vectors of gates, each [K, width]); each
// step then does c[n, G] += a[n, K] · W_hhᵀ vectorized along G, summed k = 0..K-1 in order onto
// c with one FMA per k, so a row's bits do not depend on n. It replaces sgemm there: OpenBLAS
// repacks W_hh on every step when K < 32, which made the batch-1 LSTM at H 24 slower than at 32.
struct PackedRecurrent {
  int64_t G = 0, K = 0, Gp = 0;
  std::vector<float> wt;
};
// W_hh must be F32 [G, K].
PackedRecurrent pack_recurrent(const Tensor& w_hh);

struct RnnWeights {
  Tensor w_ih, w_hh, b_ih, b_hh;
  Tensor w_hr;  // LSTM projection [P, H], or undefined
  // F32 only, optional: w_hh already packed (a program packs its constant weights once at load);
  // else the sequence kernels pack it per call.
  std::shared_ptr<const PackedRecurrent> w_hh_packed = nullptr;
};

// What forward keeps for backward (all in sorted batch order; rows past active[t] unused).
struct RnnSaved {
  SeqOrder order;
  Tensor x;       // [T, B, IN] sorted, contiguous
  Tensor gates;   // activated gates [T, B, G]
  Tensor h_prev;  // state entering each step [T, B, P] (rows not active are 0)
  Tensor c_prev;  // LSTM: cell state entering each step [T, B, H]
  Tensor tanh_c;  // LSTM: tanh(c') [T, B, H]
  Tensor h_raw;   // LSTM with projection: o·tanh(c') before W_hr [T, B, H]
  Tensor gh;      // GRU: h·W_hhᵀ + b_hh per step [T, B, 3H] (r multiplies its n slice)
};

struct RnnSeqOutput {
  Tensor y, h_n, c_n;  // c_n undefined for GRU
  RnnSaved saved;
};

struct RnnSeqNeeds {
  bool x = true, h0 = true, c0 = true, w_ih = true, w_hh = true, b_ih = true, b_hh = true,
       w_hr = true;
};
struct RnnSeqGrads {
  Tensor dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr;
};

// LSTM layer. x, h0, c0 and the weights all F32 or all F64 (F64 runs the scalar gate pass, for
// gradcheck). h0/c0 undefined = zeros. reverse runs the sequence backwards (the _reverse half of
// a bidirectional layer).
RnnSeqOutput lstm_seq(const Tensor& x, const Tensor& h0, const Tensor& c0, const RnnWeights& w,
                      const Tensor& lengths, bool reverse);
// dy [T, B, P], dh_n [B, P], dc_n [B, H] (any may be undefined = zeros).
RnnSeqGrads lstm_seq_backward(const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n,
                              const RnnWeights& w, const RnnSaved& saved, bool reverse,
                              const RnnSeqNeeds& needs = {});

// GRU layer (gates r, z, n; n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn)) as torch.nn.GRU).
RnnSeqOutput gru_seq(const Tensor& x, const Tensor& h0, const RnnWeights& w,
                     const Tensor& lengths, bool reverse);
RnnSeqGrads gru_seq_backward(const Tensor& dy, const Tensor& dh_n, const RnnWeights& w,
                             const RnnSaved& saved, bool reverse, const RnnSeqNeeds& needs = {});

// --- helpers shared by lstm_seq.cc and gru_seq.cc ---
namespace rnn_detail {
// The recurrence is split over batch rows once per sequence (rows never interact), in chunks of
// at least this many rows, so a step needs no synchronization between threads.
constexpr int64_t kRowGrain = 8;
// True when every sample runs every step (no padding anywhere).
inline bool all_active(const SeqOrder& o) {
  for (int64_t a : o.active)
    if (a != int64_t(o.order.size())) return false;
  return true;
}
// A [T, B, ...] per-step buffer: uninitialized when every row of every step gets written, else
// zeros (the padded rows must read as 0: y is 0 there, and the weight-gradient GEMMs sum them).
inline Tensor step_buffer(const SeqOrder& o, const Shape& shape, DType dt) {
  return all_active(o) ? empty(shape, dt) : zeros(shape, dt);
}
// Rows of [r0, r1) still running at step t (a prefix of the chunk, since rows are sorted).
inline int64_t rows_active(const SeqOrder& o, int64_t t, int64_t r0, int64_t r1) {
  const int64_t a = o.active[size_t(t)];
  return a <= r0 ? 0 : (a >= r1 ? r1 - r0 : a - r0);
}
// [T, B, F] contiguous in original batch order -> sorted order (or back when `inverse`).
Tensor permute_batch(const Tensor& t, const SeqOrder& o, bool inverse);
// [B, F] rows, same.
Tensor permute_rows(const Tensor& t, const SeqOrder& o, bool inverse);
// x [T, B, IN] in sorted order, with the padded steps zeroed when there are lengths (so a NaN
// in padding cannot reach dW_ih through 0·NaN).
Tensor sorted_input(const Tensor& x, const SeqOrder& o, bool has_lengths);
// A writable contiguous [B, F] copy of t in sorted order, or zeros of `shape` when undefined.
Tensor sorted_state(const Tensor& t, const SeqOrder& o, const Shape& shape, DType dt);
// Checks the shared inputs and returns {T, B, IN}.
struct SeqDims {
  int64_t T, B, IN, H, P, G;
};
SeqDims check_seq(const char* who, const Tensor& x, const Tensor& h0, const Tensor& c0,
                  const RnnWeights& w, int64_t gates_per_h);
// [T·B, G] = x [T·B, IN] · w_ihᵀ + b_ih + b_hh (b_hh left out when `with_b_hh` is false).
Tensor input_projection(const Tensor& x_sorted, const RnnWeights& w, bool with_b_hh);
// dW_ih, dx, db_ih from the gate gradients of every step (one GEMM each).
void input_grads(const Tensor& dgates_ih, const Tensor& x_sorted, const Tensor& w_ih,
                 const RnnSeqNeeds& needs, const SeqOrder& o, RnnSeqGrads& r);
// gemm_t split over the rows of C on the pool (single-threaded BLAS in each chunk), so the
// whole layer runs on the pool's threads and never wakes OpenBLAS's own beside them.
template <typename T>
void pool_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda,
               const T* B, int64_t ldb, T beta, T* C, int64_t ldc);
// Column sums of a [R, G] matrix.
Tensor column_sums(const Tensor& m);

// c[n, G] += a[n, K] · W_hhᵀ on a packed weight (see PackedRecurrent).
void recurrent_gemm(const PackedRecurrent& p, int64_t n, const float* a, int64_t lda, float* c,
                    int64_t ldc);
// Scalar reference with the same summation order (std::fma), for the tests.
void recurrent_gemm_reference(int64_t n, int64_t G, int64_t K, const float* a, int64_t lda,
                              const float* w_hh, float* c, int64_t ldc);
}  // namespace rnn_detail

}  // namespace finch::ops
