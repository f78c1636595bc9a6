// QDynamicLinear (qs8_dq_linear.h).
//
// Shapes: x [rows, K] (leading dims flattened), w [OC, K], y [rows, OC].
// Exactness: acc = Σ x_u8·w − zx_u8·Σw in wrapping int32 equals the reference's Σ (q − zx)·w
// modulo 2^32 for every K (the accumulator rule, docs/quantization.md §10).
#include "kernels/qs8_dq_linear.h"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qparams.h"
#include "kernels/qs8_gemm.h"
#include "kernels/quantize.h"
#include "kernels/quantize_kernels.h"
#include "kernels/reference.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

using namespace reference::detail;

namespace {

// The reference's activation after the fma: std::max/min keep its NaN and −0 behaviour.
void activate(int act_kind, float* y, int64_t n) {
  if (act_kind == 0) return;
  for (int64_t i = 0; i < n; ++i) {
    float v = std::max(y[i], 0.0f);
    if (act_kind == 2) v = std::min(v, 6.0f);
    y[i] = v;
  }
}

[[noreturn]] void fail_not_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) fail("dq_linear: expected finite input values, got ", x[i], " at flat index ", i);
  fail("dq_linear: expected finite input values");  // not reached: the caller saw one
}

// Output channels per work item: a batch of one still uses every thread.
constexpr int64_t kBlock = 64;

// Each row's parameters: int8 affine full range from the row's min/max, as the reference's
// qparams() gives them (qparams_one is its loop body), without qparams()'s vectors: a
// recurrent layer asks for two or three per step.
constexpr QSpec kRowSpec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
constexpr QRange kRowRange{-128, 127};
ScaleZero row_qparams(float lo, float hi) { return qparams_one(kRowSpec, kRowRange, lo, hi); }

}  // namespace

QDynamicLinear::QDynamicLinear(const Tensor& w, std::vector<float> s_w, const Tensor& bias, std::string act)
    : s_w_(std::move(s_w)), act_(std::move(act)), w_raw_(w), bias_raw_(bias) {
  constexpr const char* op = "dq_linear";
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 2 || w.size(0) < 1)
    fail(op, ": expected the weight as I8 [OC, K] (OC >= 1), got ", describe(w));
  OC_ = w.size(0), K_ = w.size(1);
  if (int64_t(s_w_.size()) != OC_)
    fail(op, ": expected one weight scale per output channel (", OC_, "), got ", s_w_.size());
  for (float s : s_w_) check_scale(op, "weight scale", s);
  if (bias.defined() && (bias.dtype() != DType::f32 || bias.dim() != 1 || bias.size(0) != OC_))
    fail(op, ": expected the bias as F32 [", OC_, "] or absent, got ", describe(bias));
  if (act_ != "none" && act_ != "relu" && act_ != "relu6")
    fail(op, ": expected activation none, relu or relu6, got '", act_, "'");
  act_kind_ = act_ == "relu" ? 1 : act_ == "relu6" ? 2 : 0;
  bias_ = bias.defined() ? bias.contiguous().to_vector<float>() : std::vector<float>(size_t(OC_), 0.0f);
  Kp_ = std::max<int64_t>(1, (K_ + qs8::kDotAlign - 1) / qs8::kDotAlign) * qs8::kDotAlign;
  const Tensor wc = w.contiguous();
  const int8_t* wp = wc.data<int8_t>();
  // The row kernel's [OC][Kp] layout is the weight itself when K is a multiple of the row
  // alignment (every BERT Linear): no copy, so a program holds its int8 weights once plus the
  // packed form, not three times.
  w_raw_ = wc;
  if (Kp_ != K_) {
    rows_.assign(size_t(OC_ * Kp_), 0);
    for (int64_t oc = 0; oc < OC_; ++oc) std::copy(wp + oc * K_, wp + (oc + 1) * K_, rows_.begin() + oc * Kp_);
  }
  K4_ = (K_ + 3) / 4, OCp_ = (OC_ + kBlock - 1) / kBlock * kBlock;
  packed_.assign(size_t(K4_ * OCp_ * 4), 0);
  for (int64_t oc = 0; oc < OC_; ++oc)
    for (int64_t k = 0; k < K_; ++k) packed_[size_t(((k / 4) * OCp_ + oc) * 4 + k % 4)] = wp[oc * K_ + k];
  const std::vector<int64_t> wsum = qs8::weight_sums(wp, OC_, K_);
  wsum32_.resize(wsum.size());
  for (size_t i = 0; i < wsum.size(); ++i) wsum32_[i] = int32_t(uint32_t(uint64_t(wsum[i])));
}

Tensor QDynamicLinear::run(const Tensor& x) const {
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1 || x.size(-1) != K_ || x.numel() == 0)
    return reference::dq_linear(x, w_raw_, s_w_, bias_raw_, act_);  // its checks and sentences
  const Tensor xc = x.contiguous();
  const float* xp = xc.data<float>();
  const int64_t n = xc.numel(), rows = n / K_;
  float lo, hi;
  if (!dq_detail::min_max_finite(xp, n, &lo, &hi)) fail_not_finite(xp, n);
  const QSpec spec{.bits = 8, .is_signed = true, .symmetric = false, .narrow = false, .axis = -1};
  const QParams qp = qparams(spec, {lo}, {hi});
  const float s_x = qp.scale[0];
  const int32_t zx_u8 = qp.zero_point[0] + 128;
  const Tensor q = quantize(xc, qp);  // i8 codes, bit-identical to the reference's quantize
  std::vector<uint8_t> xu(size_t(rows * Kp_), 0);
  for (int64_t r = 0; r < rows; ++r) qs8::to_u8(q.data<int8_t>() + r * K_, true, K_, xu.data() + r * Kp_);

  Shape out_shape = x.shape();
  out_shape.back() = OC_;
  Tensor y = empty(out_shape, DType::f32);
  float* yp = y.data<float>();
  // Work items are (row, block of output channels): a batch of one still uses every thread.
  const int64_t blk = kBlock, nblk = (OC_ + blk - 1) / blk;
  parallel_for(0, rows * nblk, Work::macs_i8(2.0 * double(blk * Kp_)), [&](int64_t b0, int64_t b1) {
    std::vector<int32_t> acc(static_cast<size_t>(blk));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r = b / nblk, oc0 = (b % nblk) * blk, m = std::min(blk, OC_ - oc0);
      dq_detail::dot_block(xu.data() + r * Kp_, row_data(), Kp_, packed_.data(), K4_, OCp_, oc0, m, acc.data());
      float* yr = yp + r * OC_ + oc0;
      dq_detail::epilogue(acc.data(), wsum32_.data() + oc0, zx_u8, s_x, s_w_.data() + oc0, bias_.data() + oc0, m, yr);
      activate(act_kind_, yr, m);
    }
  });
  return y;
}

Tensor QDynamicLinear::run_rows(const Tensor& x) const {
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1 || x.size(-1) != K_ || x.numel() == 0)
    return reference::dq_linear_rows(x, w_raw_, s_w_, bias_raw_, act_);  // its checks and sentences
  const Tensor xc = x.contiguous();
  Shape out_shape = x.shape();
  out_shape.back() = OC_;
  Tensor y = empty(out_shape, DType::f32);
  run_rows(xc.data<float>(), xc.numel() / K_, K_, y.data<float>());
  return y;
}

void QDynamicLinear::run_rows(const float* xp, int64_t rows, int64_t x_stride, float* yp) const {
  // Each row's codes (u8, Kp bytes) and its scale and zero point, as run_row computes them.
  std::vector<uint8_t> xu(size_t(rows * Kp_), 0);
  std::vector<float> s_x(static_cast<size_t>(rows));
  std::vector<int32_t> zx(static_cast<size_t>(rows));
  std::atomic<int64_t> bad{-1};
  parallel_for(0, rows, Work::bytes_stream(double(K_) * 8.0), [&](int64_t r0, int64_t r1) {
    std::vector<int8_t> q(static_cast<size_t>(K_));
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = xp + r * x_stride;
      float lo, hi;
      if (!dq_detail::min_max_finite(xr, K_, &lo, &hi)) {
        bad.store(r, std::memory_order_relaxed);  // reported below, outside the pool
        continue;
      }
      const ScaleZero qp = row_qparams(lo, hi);
      const float zf = float(qp.zero_point);
      s_x[size_t(r)] = qp.scale;
      zx[size_t(r)] = qp.zero_point + 128;
      quantize_f32_i8(xr, q.data(), K_, QuantArgs{&s_x[size_t(r)], &zf, false, float(kRowRange.qmin), float(kRowRange.qmax)});
      qs8::to_u8(q.data(), true, K_, xu.data() + r * Kp_);
    }
  });
  // Contiguous rows (the Tensor call) report the flat index, as before; strided ones their row's.
  if (const int64_t r = bad.load(); r >= 0) {
    if (x_stride == K_) fail_not_finite(xp, (r + 1) * K_);
    fail_not_finite(xp + r * x_stride, K_);
  }
  // Work items are (group of kRows rows, block of output channels): the group shares each
  // weight load (dot_block_rows), and a batch of one row still uses every thread.
  constexpr int64_t kRows = 16;
  const int64_t blk = kBlock, nblk = (OC_ + blk - 1) / blk, ngrp = (rows + kRows - 1) / kRows;
  parallel_for(0, ngrp * nblk, Work::macs_i8(2.0 * double(kRows * blk * Kp_)), [&](int64_t b0, int64_t b1) {
    std::vector<int32_t> acc(static_cast<size_t>(kRows * blk));
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t r0 = (b / nblk) * kRows, nr = std::min(kRows, rows - r0);
      const int64_t oc0 = (b % nblk) * blk, m = std::min(blk, OC_ - oc0);
      dq_detail::dot_block_rows(xu.data() + r0 * Kp_, Kp_, nr, row_data(), Kp_, packed_.data(), K4_, OCp_, oc0, m,
                                acc.data(), blk);
      for (int64_t r = r0; r < r0 + nr; ++r) {
        float* yr = yp + r * OC_ + oc0;
        dq_detail::epilogue(acc.data() + (r - r0) * blk, wsum32_.data() + oc0, zx[size_t(r)], s_x[size_t(r)],
                            s_w_.data() + oc0, bias_.data() + oc0, m, yr);
        activate(act_kind_, yr, m);
      }
    }
  });
}

void QDynamicLinear::run_row(const float* x, float* y, Scratch& s) const {
  float lo, hi;
  if (!dq_detail::min_max_finite(x, K_, &lo, &hi)) fail_not_finite(x, K_);
  const ScaleZero qp = row_qparams(lo, hi);
  const float s_x = qp.scale, zf = float(qp.zero_point);
  const int32_t zx_u8 = qp.zero_point + 128;
  s.q.resize(size_t(K_));
  // Bytes K..Kp of xu may hold another linear's codes: they meet the zero padding of rows_.
  s.xu.resize(size_t(Kp_));
  s.acc.resize(size_t(OC_));
  // quantize()'s per-tensor kernel on the one run (what run() calls through the Tensor API).
  quantize_f32_i8(x, s.q.data(), K_, QuantArgs{&s_x, &zf, false, float(kRowRange.qmin), float(kRowRange.qmax)});
  qs8::to_u8(s.q.data(), true, K_, s.xu.data());
  const int64_t nblk = (OC_ + kBlock - 1) / kBlock;
  parallel_for(0, nblk, Work::macs_i8(2.0 * double(kBlock * Kp_)), [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t oc0 = b * kBlock, m = std::min(kBlock, OC_ - oc0);
      int32_t* acc = s.acc.data() + oc0;
      dq_detail::dot_block(s.xu.data(), row_data(), Kp_, packed_.data(), K4_, OCp_, oc0, m, acc);
      dq_detail::epilogue(acc, wsum32_.data() + oc0, zx_u8, s_x, s_w_.data() + oc0, bias_.data() + oc0, m, y + oc0);
      activate(act_kind_, y + oc0, m);
    }
  });
}

}  // namespace finch::quant::kernels
