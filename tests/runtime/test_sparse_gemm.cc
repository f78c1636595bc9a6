// The sparse kernels (kernels/sparse_gemm.h, sparse_conv.h) on every Highway target: the four
// micro-kernels against their scalar references (random rows of nonzeros at sparsities 0–100 %,
// column ranges around the vector and block edges, sub-ranges of rows, every fused activation,
// multipliers with every kind of shift), and the operators against the dense ones — int8 bit for
// bit reference::qconv2d / qlinear, fp32 within float rounding of ops::conv2d / ops::linear —
// over strides, padding, dilation, 1×1 in-place planes, few- and many-row Linear inputs, 1 and 2
// threads.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <sstream>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/reference.h"
#include "kernels/sparse_conv.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "ops/matmul.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qk = quant::kernels;
namespace qr = quant::reference;

int64_t pick(std::mt19937& rng, std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); }
double pick_sparsity(std::mt19937& rng) {
  const double s[] = {0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 1.0};
  return s[rng() % 7];
}

// Zeroes each element of the contiguous t with probability s (in place).
template <class T>
void sparsify(Tensor& t, double s, std::mt19937& rng) {
  std::bernoulli_distribution zero(s);
  T* p = t.data<T>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (zero(rng)) p[i] = T(0);
}

// Where each of K activation rows of length >= N starts in a [K][ld] buffer: in order, or permuted
// (a conv's tap offsets need not increase with k).
std::vector<int64_t> offsets(std::mt19937& rng, int64_t K, int64_t ld) {
  std::vector<int64_t> o(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) o[size_t(k)] = k * ld;
  if (rng() % 2) std::shuffle(o.begin(), o.end(), rng);
  return o;
}

Tensor random_f32(std::mt19937& rng, const Shape& s) {
  std::uniform_real_distribution<float> u(-2, 2);
  std::vector<float> v(size_t(shape_numel(s)));
  for (float& f : v) f = u(rng);
  return from_vector(v, s);
}

quant::kernels::FusedAct pick_act(std::mt19937& rng) {
  return std::array<qk::FusedAct, 3>{qk::FusedAct::none, qk::FusedAct::relu, qk::FusedAct::relu6}[rng() % 3];
}

Tensor activated(const Tensor& y, qk::FusedAct act) {
  if (act == qk::FusedAct::relu) return ops::relu(y);
  if (act == qk::FusedAct::relu6) return ops::relu6(y);
  return y;
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const auto g = got.to_vector<float>(), r = want.to_vector<float>();
  for (size_t i = 0; i < r.size(); ++i)
    ASSERT_NEAR(g[i], r[i], 1e-4 + 1e-4 * std::fabs(r[i])) << what << ": element " << i;
}

TEST(SparseGemm, RowsOfNonzerosKeepEveryNonzeroInOrder) {
  const std::vector<float> w = {0, 1, 0, 2, 0, 0, 0, 0, 3, 0, 0, 4};
  const auto r = qk::sparse_rows(w.data(), 3, 4);
  EXPECT_EQ(r.ptr, (std::vector<int32_t>{0, 2, 2, 4}));
  EXPECT_EQ(r.col, (std::vector<int32_t>{1, 3, 0, 3}));
  EXPECT_EQ(r.val, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_DOUBLE_EQ(r.sparsity(), 8.0 / 12.0);
  EXPECT_DOUBLE_EQ(qk::zero_fraction(w.data(), 12), 8.0 / 12.0);
}

TEST(SparseGemm, F32MicroKernelsMatchTheReferenceOnEveryTarget) {
  std::mt19937 rng(11);
  for_each_target([&](uint32_t) {
    for (int it = 0; it < 150; ++it) {
      const int64_t M = pick(rng, {1, 2, 3, 7, 8, 9, 17}), K = pick(rng, {1, 2, 5, 16, 33, 100});
      const int64_t N = pick(rng, {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129});
      Tensor w = random_f32(rng, {M, K});
      sparsify<float>(w, pick_sparsity(rng), rng);
      const auto rows = qk::sparse_rows(w.data<float>(), M, K);
      const Tensor x = random_f32(rng, {K, N + 3}), bias = random_f32(rng, {M});
      const int64_t n0 = rng() % 3 == 0 ? int64_t(rng() % uint64_t(N)) : 0, m0 = int64_t(rng() % uint64_t(M));
      const qk::FusedAct act = pick_act(rng);
      const float* b = rng() % 4 ? bias.data<float>() : nullptr;
      const std::vector<int64_t> koff = offsets(rng, K, N + 3);
      std::vector<float> got(size_t(M * N), -7.0f), want(size_t(M * N), -7.0f);
      qk::f32_spmm(rows, b, act, x.data<float>(), koff.data(), n0, N, m0, M, got.data(), N);
      qk::sparse_ref::f32_spmm(rows, b, act, x.data<float>(), koff.data(), n0, N, m0, M, want.data(), N);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-5 + 1e-5 * std::fabs(want[i])) << "spmm M" << M << " K" << K << " N" << N << " at " << i;
      std::vector<float> gv(size_t(M), -7.0f), wv(size_t(M), -7.0f);
      qk::f32_spmv(rows, b, act, x.data<float>(), m0, M, gv.data());
      qk::sparse_ref::f32_spmv(rows, b, act, x.data<float>(), m0, M, wv.data());
      for (size_t i = 0; i < wv.size(); ++i) ASSERT_NEAR(gv[i], wv[i], 1e-5 + 1e-5 * std::fabs(wv[i])) << "spmv";
    }
  });
}

TEST(SparseGemm, Int8MicroKernelsMatchTheReferenceBitForBitOnEveryTarget) {
  std::mt19937 rng(12);
  for_each_target([&](uint32_t) {
    for (int it = 0; it < 150; ++it) {
      const int64_t M = pick(rng, {1, 2, 3, 7, 8, 9, 17}), K = pick(rng, {1, 2, 5, 16, 33, 100, 300});
      const int64_t N = pick(rng, {1, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 129});
      const int mode = int(rng() % 5);  // 1, 2: extreme codes (the largest products)
      Tensor w = random_code_tensor(rng, {M, K}, DType::i8, mode == 1 ? 2 : 0);
      sparsify<int8_t>(w, pick_sparsity(rng), rng);
      const auto rows = qk::sparse_rows(w.data<int8_t>(), M, K);
      const Tensor x = random_code_tensor(rng, {K, N + 3}, DType::u8, mode == 1 ? 1 : mode == 2 ? 2 : 0);
      const QOut o = random_qout(rng, M);
      std::vector<quant::kernels::qs8::RowQuant> q(static_cast<size_t>(M));
      for (int64_t m = 0; m < M; ++m) q[size_t(m)].offset = int32_t(rng()), q[size_t(m)].m = o.m[size_t(m)];
      const quant::kernels::qs8::OutQuant oq{o.z, o.qmin, o.qmax, o.dtype == DType::u8};
      const int64_t n0 = rng() % 3 == 0 ? int64_t(rng() % uint64_t(N)) : 0, m0 = int64_t(rng() % uint64_t(M));
      const auto* xp = static_cast<const uint8_t*>(x.raw_data());
      const std::vector<int64_t> koff = offsets(rng, K, N + 3);
      std::vector<uint8_t> got(size_t(M * N), 7), want(size_t(M * N), 7);
      qk::qs8_spmm(rows, q.data(), oq, xp, koff.data(), n0, N, m0, M, got.data(), N);
      qk::sparse_ref::qs8_spmm(rows, q.data(), oq, xp, koff.data(), n0, N, m0, M, want.data(), N);
      ASSERT_EQ(got, want) << "spmm M" << M << " K" << K << " N" << N << " mode " << mode;
      std::vector<int32_t> xi(static_cast<size_t>(K));
      for (int64_t k = 0; k < K; ++k) xi[size_t(k)] = xp[k * (N + 3)];
      std::vector<uint8_t> gv(size_t(M), 7), wv(size_t(M), 7);
      qk::qs8_spmv(rows, q.data(), oq, xi.data(), m0, M, gv.data());
      qk::sparse_ref::qs8_spmv(rows, q.data(), oq, xi.data(), m0, M, wv.data());
      ASSERT_EQ(gv, wv) << "spmv M" << M << " K" << K;
    }
  });
}

TEST(SparseGemm, Int8ChannelQuadKernelMatchesTheReferenceBitForBitOnEveryTarget) {
  std::mt19937 rng(15);
  int quad_targets = 0;
  for_each_target([&](uint32_t) {
    quad_targets += qk::qs8_quad_kernel();
    for (int it = 0; it < 100; ++it) {
      const int64_t M = pick(rng, {1, 3, 8, 17}), C = pick(rng, {1, 3, 4, 5, 8, 33}), taps = pick(rng, {1, 9});
      const int64_t N = pick(rng, {1, 15, 16, 17, 63, 64, 65, 130}), Q = (C + 3) / 4 * taps;
      Tensor w = random_code_tensor(rng, {M, C, taps}, DType::i8, it % 7 == 0 ? 2 : 0);
      sparsify<int8_t>(w, pick_sparsity(rng), rng);
      const auto quads = qk::sparse_quads(w.data<int8_t>(), M, C, taps);
      for (int64_t j = 0; j < quads.nnz(); ++j) ASSERT_NE(quads.val[size_t(j)], 0);
      const Tensor x = random_code_tensor(rng, {Q, 4 * (N + 5)}, DType::u8, it % 7 == 1 ? 1 : 0);
      std::vector<int64_t> koff = offsets(rng, Q, N + 5);
      for (int64_t& o : koff) o *= 4;
      const QOut o = random_qout(rng, M);
      std::vector<quant::kernels::qs8::RowQuant> q(static_cast<size_t>(M));
      for (int64_t m = 0; m < M; ++m) q[size_t(m)].offset = int32_t(rng()), q[size_t(m)].m = o.m[size_t(m)];
      const quant::kernels::qs8::OutQuant oq{o.z, o.qmin, o.qmax, o.dtype == DType::u8};
      const int64_t n0 = rng() % 3 == 0 ? int64_t(rng() % uint64_t(N)) : 0;
      const auto* xp = static_cast<const uint8_t*>(x.raw_data());
      std::vector<uint8_t> got(size_t(M * N), 7), want(size_t(M * N), 7);
      qk::qs8_spmm_quad(quads, q.data(), oq, xp, koff.data(), n0, N, 0, M, got.data(), N);
      qk::sparse_ref::qs8_spmm_quad(quads, q.data(), oq, xp, koff.data(), n0, N, 0, M, want.data(), N);
      ASSERT_EQ(got, want) << "M" << M << " C" << C << " taps " << taps << " N" << N;
    }
  });
  // Where the CPU has AVX-512 VNNI the quad kernel itself must have been checked, not only the reference.
  if (hwy::SupportedTargets() & HWY_AVX3_DL) {
    EXPECT_GT(quad_targets, 0);
  }
}

struct ConvCase {
  int64_t N, C, OC, H, W, KH, KW;
  ops::Conv2dParams p;
  std::string str() const {
    std::ostringstream s;
    s << "N" << N << " C" << C << " OC" << OC << " " << H << "x" << W << " k" << KH << "x" << KW << " s" << p.sh
      << " p" << p.ph << "," << p.pw << " d" << p.dh;
    return s.str();
  }
};

ConvCase random_case(std::mt19937& rng) {
  for (;;) {
    ConvCase c{};
    c.N = pick(rng, {1, 1, 2});
    c.C = pick(rng, {1, 2, 3, 4, 8, 16, 17}), c.OC = pick(rng, {1, 3, 8, 9, 16, 24});
    c.KH = pick(rng, {1, 1, 3, 5}), c.KW = rng() % 4 ? c.KH : pick(rng, {1, 3});
    c.p.sh = pick(rng, {1, 1, 2}), c.p.sw = rng() % 4 ? c.p.sh : 1;
    c.p.ph = pick(rng, {0, 0, 1, 2}), c.p.pw = rng() % 4 ? c.p.ph : 0;
    c.p.dh = pick(rng, {1, 1, 1, 2}), c.p.dw = c.p.dh;
    c.H = pick(rng, {1, 2, 5, 8, 9, 16, 17}), c.W = pick(rng, {1, 3, 8, 9, 16, 17});
    if (ops::conv_out_size(c.H, c.KH, c.p.sh, c.p.ph, c.p.dh) >= 1 &&
        ops::conv_out_size(c.W, c.KW, c.p.sw, c.p.pw, c.p.dw) >= 1)
      return c;
  }
}

TEST(SparseConv, Int8ConvAndLinearEqualTheDenseReferenceBitForBit) {
  std::mt19937 rng(13);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for_each_target([&](uint32_t) {
      for (int it = 0; it < 40; ++it) {
        const ConvCase c = random_case(rng);
        const DType xt = rng() % 2 ? DType::u8 : DType::i8;
        Tensor x = random_code_tensor(rng, {c.N, c.C, c.H, c.W}, xt, 0);
        Tensor w = random_code_tensor(rng, {c.OC, c.C, c.KH, c.KW}, DType::i8, 0);
        sparsify<int8_t>(w, pick_sparsity(rng), rng);
        const int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
        Tensor bias;
        if (rng() % 4 != 0) bias = from_vector(random_codes(rng, c.OC, -(1 << 20), 1 << 20), {c.OC});
        const QOut o = random_qout(rng, c.OC);
        if (rng() % 3 == 0 && c.W > 1) x = strided_copy(x);
        const Tensor want = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(o.m), c.p, o.z, o.qmin, o.qmax, o.dtype);
        const qk::QSparseConv2d conv(w, bias, o.m, c.p, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
        ASSERT_EQ(values(conv.run(x)), values(want)) << c.str() << " threads " << threads;
      }
      for (int it = 0; it < 40; ++it) {
        const int64_t R = pick(rng, {1, 2, 7, 8, 9, 33}), K = pick(rng, {1, 5, 64, 100}), OC = pick(rng, {1, 3, 10, 17});
        const DType xt = rng() % 2 ? DType::u8 : DType::i8;
        const Tensor x = random_code_tensor(rng, {R, K}, xt, int(rng() % 3));
        Tensor w = random_code_tensor(rng, {OC, K}, DType::i8, 0);
        sparsify<int8_t>(w, pick_sparsity(rng), rng);
        const int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
        const Tensor bias = from_vector(random_codes(rng, OC, -(1 << 20), 1 << 20), {OC});
        const QOut o = random_qout(rng, OC);
        const Tensor want = qr::qlinear(x, zx, w, bias, qr::rq_tensor(o.m), o.z, o.qmin, o.qmax, o.dtype);
        const qk::QSparseLinear lin(w, bias, o.m, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
        ASSERT_EQ(values(lin.run(x)), values(want)) << "R" << R << " K" << K << " OC" << OC;
      }
    });
  }
  set_num_threads(1);
}

TEST(SparseConv, F32ConvAndLinearMatchTheDenseOpsWithinRounding) {
  std::mt19937 rng(14);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for_each_target([&](uint32_t) {
      for (int it = 0; it < 40; ++it) {
        const ConvCase c = random_case(rng);
        Tensor x = random_f32(rng, {c.N, c.C, c.H, c.W});
        Tensor w = random_f32(rng, {c.OC, c.C, c.KH, c.KW});
        sparsify<float>(w, pick_sparsity(rng), rng);
        const Tensor bias = rng() % 4 ? random_f32(rng, {c.OC}) : Tensor();
        const qk::FusedAct act = pick_act(rng);
        if (rng() % 3 == 0 && c.W > 1) x = strided_copy(x);
        const qk::F32SparseConv2d conv(w, bias, c.p, act);
        expect_close(conv.run(x), activated(ops::conv2d(x, w, bias, c.p), act), c.str());
      }
      for (int it = 0; it < 40; ++it) {
        const int64_t R = pick(rng, {1, 2, 7, 8, 9, 33}), K = pick(rng, {1, 5, 64, 100}), OC = pick(rng, {1, 3, 10, 17});
        const Tensor x = random_f32(rng, {R, K});
        Tensor w = random_f32(rng, {OC, K});
        sparsify<float>(w, pick_sparsity(rng), rng);
        const Tensor bias = random_f32(rng, {OC});
        const qk::FusedAct act = pick_act(rng);
        const qk::F32SparseLinear lin(w, bias, act);
        expect_close(lin.run(x), activated(ops::linear(x, w, bias), act), "linear R" + std::to_string(R));
      }
    });
  }
  set_num_threads(1);
}

TEST(SparseConv, RefusesWhatItCannotRunWithASentence) {
  const Tensor w = zeros({4, 2, 3, 3}, DType::f32);
  ops::Conv2dParams p;
  p.groups = 2;
  EXPECT_THROW(qk::F32SparseConv2d(zeros({4, 1, 3, 3}, DType::f32), Tensor(), p, qk::FusedAct::none), Error);
  const qk::F32SparseConv2d conv(w, Tensor(), ops::Conv2dParams{}, qk::FusedAct::none);
  EXPECT_THROW(conv.run(zeros({1, 3, 8, 8}, DType::f32)), Error);  // 3 channels, not 2
  EXPECT_THROW(conv.run(zeros({1, 2, 2, 2}, DType::f32)), Error);  // smaller than the kernel
  EXPECT_THROW(qk::F32SparseLinear(zeros({4, 3}, DType::f32), zeros({5}, DType::f32), qk::FusedAct::none), Error);
  EXPECT_THROW(qk::QSparseLinear(zeros({4, 3}, DType::i8), Tensor(), {}, DType::i8, 0, 0, -128, 127, DType::i8), Error);
}

}  // namespace
}  // namespace finch::test
