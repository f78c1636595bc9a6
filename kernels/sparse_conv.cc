// The sparse conv2d / linear operators of kernels/sparse_conv.h: validation, the rows of
// nonzeros built once, and the drivers (im2col or in-place planes, transposed Linear inputs).
#include "kernels/sparse_conv.h"

#include <algorithm>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

using namespace ::finch::quant::reference::detail;

namespace {

constexpr int64_t kCols = 64;  // activation columns per thread block (4 AVX-512 vectors)

// The im2col rows [C·KH·KW][OH·OW] of one image x [C][H][W], `pad` outside the plane.
template <class T>
void im2col(const T* x, int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, const ops::Conv2dParams& p,
            int64_t OH, int64_t OW, T pad, T* dst) {
  const int64_t P = OH * OW;
  parallel_for(0, C * KH * KW, Work::bytes_stream(double(2 * P * sizeof(T))), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t c = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
      T* d = dst + k * P;
      for (int64_t oh = 0; oh < OH; ++oh) {
        const int64_t ih = oh * p.sh - p.ph + kh * p.dh;
        if (ih < 0 || ih >= H) {
          std::fill(d + oh * OW, d + (oh + 1) * OW, pad);
          continue;
        }
        const T* row = x + (c * H + ih) * W;
        for (int64_t ow = 0; ow < OW; ++ow) {
          const int64_t iw = ow * p.sw - p.pw + kw * p.dw;
          d[oh * OW + ow] = iw >= 0 && iw < W ? row[iw] : pad;
        }
      }
    }
  });
}

// dst [cols][rows] = src [rows][cols] transposed.
template <class S, class D>
void transpose(const S* src, int64_t rows, int64_t cols, D* dst) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) dst[c * rows + r] = D(src[r * cols + c]);
}

// Runs f(n0, n1, m0, m1) over blocks of kCols columns × ranges of output channels, in parallel.
template <class T, class F>
void split(const SparseRows<T>& w, int64_t P, F f) {
  const int64_t blocks = (P + kCols - 1) / kCols;
  // A sparse multiply-add loads its activation vector: about twice a packed GEMM's.
  const double macs = double(w.nnz()) / double(std::max<int64_t>(1, w.M)) * double(kCols);
  parallel_for_2d(blocks, w.M, Work::macs_f32(macs) * 2.0, [&](int64_t b0, int64_t b1, int64_t m0, int64_t m1) {
    f(b0 * kCols, std::min(b1 * kCols, P), m0, m1);
  });
}
template <class T, class F>
void split_rows(const SparseRows<T>& w, F f) {
  const double per_row = double(w.nnz()) / double(std::max<int64_t>(1, w.M));
  parallel_for(0, w.M, Work::macs_f32(per_row) * 4.0, [&](int64_t m0, int64_t m1) { f(m0, m1); });
}

std::vector<float> f32_bias(const char* op, const Tensor& bias, int64_t OC) {
  if (!bias.defined()) return std::vector<float>(size_t(OC), 0.0f);
  if (bias.dtype() != DType::f32 || bias.dim() != 1 || bias.size(0) != OC)
    fail(op, ": expected the bias as F32 [", OC, "] or absent, got ", describe(bias));
  return bias.to_vector<float>();
}

void check_conv_params(const char* op, const ops::Conv2dParams& p) {
  if (p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0 || p.dh < 1 || p.dw < 1 || p.groups != 1)
    fail(op, ": expected stride >= 1, padding >= 0, dilation >= 1 and groups 1");
}

bool in_place(int64_t KH, int64_t KW, const ops::Conv2dParams& p) {
  return KH == 1 && KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
}

// The RowQuants of the dense int8 kernels (qs8_pack.cc): the same offsets, so the same sums.
std::vector<qs8::RowQuant> int8_rows(const char* op, const int8_t* w, int64_t OC, int64_t K, const Tensor& bias,
                                     const std::vector<FixedPointMultiplier>& m, int32_t zx_u8) {
  if (int64_t(m.size()) != OC) fail(op, ": expected ", OC, " requantization multipliers, got ", m.size());
  for (const auto& v : m)
    if (v.multiplier < 0) fail(op, ": expected multipliers >= 0, got ", v.multiplier);
  std::vector<int32_t> b;
  if (bias.defined()) {
    if (bias.dtype() != DType::i32 || bias.dim() != 1 || bias.size(0) != OC)
      fail(op, ": expected the bias as I32 [", OC, "] or absent, got ", describe(bias));
    b = bias.to_vector<int32_t>();
  }
  return qs8::row_quants(qs8::weight_sums(w, OC, K), b, m, zx_u8);
}

}  // namespace

// ---- fp32 ----

F32SparseConv2d::F32SparseConv2d(const Tensor& w, const Tensor& bias, const ops::Conv2dParams& p, FusedAct act)
    : p_(p), act_(act) {
  constexpr const char* op = "F32SparseConv2d";
  check_conv_params(op, p);
  if (!w.defined() || w.dtype() != DType::f32 || w.dim() != 4 || w.size(0) < 1 || w.size(1) < 1 || w.size(2) < 1 ||
      w.size(3) < 1)
    fail(op, ": expected the weight as F32 [OC, C, KH, KW], got ", describe(w));
  C_ = w.size(1), KH_ = w.size(2), KW_ = w.size(3);
  const Tensor wc = w.contiguous();
  w_ = sparse_rows(wc.data<float>(), w.size(0), C_ * KH_ * KW_);
  bias_ = f32_bias(op, bias, w.size(0));
}

Tensor F32SparseConv2d::run(const Tensor& x) const {
  constexpr const char* op = "F32SparseConv2d";
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() != 4 || x.size(1) != C_)
    fail(op, ": expected input x as F32 [N, ", C_, ", H, W], got ", describe(x));
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1) fail(op, ": the input ", describe(x), " is smaller than the dilated kernel");
  const int64_t P = OH * OW, K = w_.K, M = w_.M;
  Tensor y = empty({N, M, OH, OW}, DType::f32);
  const Tensor xc = x.contiguous();
  const bool direct = in_place(KH_, KW_, p_);
  std::vector<float> cols(direct ? 0 : size_t(K * P));
  for (int64_t i = 0; i < N; ++i) {
    const float* xi = xc.data<float>() + i * C_ * H * W;
    if (!direct) im2col(xi, C_, H, W, KH_, KW_, p_, OH, OW, 0.0f, cols.data());
    const float* src = direct ? xi : cols.data();
    float* yi = y.data<float>() + i * M * P;
    split(w_, P, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
      f32_spmm(w_, bias_.data(), act_, src, P, n0, n1, m0, m1, yi, P);
    });
  }
  return y;
}

F32SparseLinear::F32SparseLinear(const Tensor& w, const Tensor& bias, FusedAct act) : act_(act) {
  constexpr const char* op = "F32SparseLinear";
  if (!w.defined() || w.dtype() != DType::f32 || w.dim() != 2 || w.size(0) < 1)
    fail(op, ": expected the weight as F32 [OC, K] (OC >= 1), got ", describe(w));
  const Tensor wc = w.contiguous();
  w_ = sparse_rows(wc.data<float>(), w.size(0), w.size(1));
  bias_ = f32_bias(op, bias, w.size(0));
}

Tensor F32SparseLinear::run(const Tensor& x) const {
  constexpr const char* op = "F32SparseLinear";
  if (!x.defined() || x.dtype() != DType::f32 || x.dim() < 1 || x.size(-1) != w_.K)
    fail(op, ": expected input x as F32 [.., ", w_.K, "], got ", describe(x));
  Shape shape = x.shape();
  shape.back() = w_.M;
  Tensor y = empty(shape, DType::f32);
  const int64_t R = y.numel() / w_.M, K = w_.K, M = w_.M;
  if (R == 0) return y;
  const Tensor xc = x.contiguous();
  const float* xp = xc.data<float>();
  float* yp = y.data<float>();
  if (R < kSpmmRows) {
    for (int64_t r = 0; r < R; ++r)
      split_rows(w_, [&](int64_t m0, int64_t m1) { f32_spmv(w_, bias_.data(), act_, xp + r * K, m0, m1, yp + r * M); });
    return y;
  }
  std::vector<float> xt(size_t(K * R)), yt(size_t(M * R));
  transpose(xp, R, K, xt.data());
  split(w_, R, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
    f32_spmm(w_, bias_.data(), act_, xt.data(), R, n0, n1, m0, m1, yt.data(), R);
  });
  transpose(yt.data(), M, R, yp);
  return y;
}

// ---- int8 ----

QSparseConv2d::QSparseConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m,
                             const ops::Conv2dParams& p, DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin,
                             int32_t qmax, DType out_dtype)
    : p_(p), x_dtype_(x_dtype), out_dtype_(out_dtype) {
  constexpr const char* op = "QSparseConv2d";
  check_conv_params(op, p);
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 4 || w.size(0) < 1 || w.size(1) < 1 || w.size(2) < 1 ||
      w.size(3) < 1)
    fail(op, ": expected the weight as I8 [OC, C, KH, KW], got ", describe(w));
  if (x_dtype != DType::i8 && x_dtype != DType::u8) fail(op, ": expected an I8 or U8 input type");
  check_zero_point(op, "input zero point", zx, x_dtype);
  check_output(op, z_out, qmin, qmax, out_dtype);
  C_ = w.size(1), KH_ = w.size(2), KW_ = w.size(3);
  zx_u8_ = x_dtype == DType::i8 ? zx + 128 : zx;
  oq_ = {z_out, qmin, qmax, out_dtype == DType::u8};
  const Tensor wc = w.contiguous();
  const int64_t K = C_ * KH_ * KW_;
  w_ = sparse_rows(wc.data<int8_t>(), w.size(0), K);
  rq_ = int8_rows(op, wc.data<int8_t>(), w.size(0), K, bias, m, zx_u8_);
}

Tensor QSparseConv2d::run(const Tensor& x) const {
  constexpr const char* op = "QSparseConv2d";
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() != 4 || x.size(1) != C_)
    fail(op, ": expected input x as ", x_dtype_ == DType::i8 ? "I8" : "U8", " [N, ", C_, ", H, W], got ", describe(x));
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t OH = ops::conv_out_size(H, KH_, p_.sh, p_.ph, p_.dh), OW = ops::conv_out_size(W, KW_, p_.sw, p_.pw, p_.dw);
  if (OH < 1 || OW < 1) fail(op, ": the input ", describe(x), " is smaller than the dilated kernel");
  const int64_t P = OH * OW, K = w_.K, M = w_.M, plane = C_ * H * W;
  Tensor y = empty({N, M, OH, OW}, out_dtype_);
  const Tensor xc = x.contiguous();
  const bool direct = in_place(KH_, KW_, p_), flip = x_dtype_ == DType::i8;
  std::vector<uint8_t> xu(direct && !flip ? 0 : size_t(plane)), cols(direct ? 0 : size_t(K * P));
  for (int64_t i = 0; i < N; ++i) {
    const uint8_t* xi = static_cast<const uint8_t*>(xc.raw_data()) + i * plane;
    if (flip) qs8::to_u8(xi, true, plane, xu.data()), xi = xu.data();  // i8 code c -> c + 128
    if (!direct) im2col(xi, C_, H, W, KH_, KW_, p_, OH, OW, uint8_t(zx_u8_), cols.data());
    const uint8_t* src = direct ? xi : cols.data();
    uint8_t* yi = static_cast<uint8_t*>(y.raw_data()) + i * M * P;
    split(w_, P, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
      qs8_spmm(w_, rq_.data(), oq_, src, P, n0, n1, m0, m1, yi, P);
    });
  }
  return y;
}

QSparseLinear::QSparseLinear(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, DType x_dtype,
                             int32_t zx, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype)
    : x_dtype_(x_dtype), out_dtype_(out_dtype) {
  constexpr const char* op = "QSparseLinear";
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 2 || w.size(0) < 1)
    fail(op, ": expected the weight as I8 [OC, K] (OC >= 1), got ", describe(w));
  if (x_dtype != DType::i8 && x_dtype != DType::u8) fail(op, ": expected an I8 or U8 input type");
  check_zero_point(op, "input zero point", zx, x_dtype);
  check_output(op, z_out, qmin, qmax, out_dtype);
  zx_u8_ = x_dtype == DType::i8 ? zx + 128 : zx;
  oq_ = {z_out, qmin, qmax, out_dtype == DType::u8};
  const Tensor wc = w.contiguous();
  w_ = sparse_rows(wc.data<int8_t>(), w.size(0), w.size(1));
  rq_ = int8_rows(op, wc.data<int8_t>(), w.size(0), w.size(1), bias, m, zx_u8_);
}

Tensor QSparseLinear::run(const Tensor& x) const {
  constexpr const char* op = "QSparseLinear";
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() < 1 || x.size(-1) != w_.K)
    fail(op, ": expected input x as ", x_dtype_ == DType::i8 ? "I8" : "U8", " [.., ", w_.K, "], got ", describe(x));
  Shape shape = x.shape();
  shape.back() = w_.M;
  Tensor y = empty(shape, out_dtype_);
  const int64_t R = y.numel() / w_.M, K = w_.K, M = w_.M;
  if (R == 0) return y;
  const Tensor xc = x.contiguous();
  std::vector<uint8_t> xu(size_t(R * K));
  qs8::to_u8(xc.raw_data(), x_dtype_ == DType::i8, R * K, xu.data());
  auto* out = static_cast<uint8_t*>(y.raw_data());
  if (R < kSpmmRows) {
    std::vector<int32_t> xi(static_cast<size_t>(K));
    for (int64_t r = 0; r < R; ++r) {
      std::copy(xu.begin() + r * K, xu.begin() + (r + 1) * K, xi.begin());
      split_rows(w_, [&](int64_t m0, int64_t m1) { qs8_spmv(w_, rq_.data(), oq_, xi.data(), m0, m1, out + r * M); });
    }
    return y;
  }
  std::vector<uint8_t> xt(size_t(K * R)), yt(size_t(M * R));
  transpose(xu.data(), R, K, xt.data());
  split(w_, R, [&](int64_t n0, int64_t n1, int64_t m0, int64_t m1) {
    qs8_spmm(w_, rq_.data(), oq_, xt.data(), R, n0, n1, m0, m1, yt.data(), R);
  });
  transpose(yt.data(), M, R, out);
  return y;
}

}  // namespace finch::quant::kernels
