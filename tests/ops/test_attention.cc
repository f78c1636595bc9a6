// Tests for scaled dot-product attention: fast path vs the plain-loop reference (every compiled
// Highway target) across shapes and masks, strided head views, fully masked rows, variable
// length batches through a key padding mask, errors, and PyTorch 1.13 goldens.
#include <gtest/gtest.h>

#include <cmath>
#include <hwy/targets.h>
#include <limits>

#include "tests/hwy_targets.h"
#include "framework/random.h"
#include "ops/attention.h"
#include "tests/golden/golden.h"

namespace finch {
namespace {

using test::expect_close;

enum class MaskKind { none, boolean, additive, causal, bool_causal, key_padding, additive_causal, strided_additive };

Shape with(Shape b, std::initializer_list<int64_t> tail) {
  b.insert(b.end(), tail);
  return b;
}

Tensor make_mask(MaskKind kind, const Shape& batch, int64_t Lq, int64_t Lk, DType dt, Generator& g) {
  switch (kind) {
    case MaskKind::boolean: {
      // Broadcast over the leading batch dim, ~30% masked (fully masked rows appear at Lk = 1).
      Shape s = batch;
      if (!s.empty()) s[0] = 1;
      Tensor u = rand(with(s, {Lq, Lk}), g, DType::f32), m = empty(u.shape(), DType::b8);
      const float* pu = u.data<float>();
      bool* pm = m.data<bool>();
      for (int64_t i = 0; i < u.numel(); ++i) pm[i] = pu[i] > 0.3f;
      return m;
    }
    case MaskKind::additive:
    case MaskKind::additive_causal:
      return randn({Lq, Lk}, g, dt);  // broadcast over every batch dim
    case MaskKind::strided_additive:  // a transposed view: column stride != 1, per-batch rows
      return randn(with(batch, {Lk, Lq}), g, dt).transpose(-2, -1);
    case MaskKind::key_padding: {
      Shape s(batch.size(), 1);
      if (!s.empty()) s[0] = batch[0];
      Tensor m = empty(with(s, {1, Lk}), DType::b8);
      bool* pm = m.data<bool>();
      const int64_t nb = s.empty() ? 1 : s[0];
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t j = 0; j < Lk; ++j) pm[b * Lk + j] = j < std::max<int64_t>(1, Lk - b);
      return m;
    }
    default:
      return Tensor();
  }
}

bool causal(MaskKind k) {
  return k == MaskKind::causal || k == MaskKind::bool_causal || k == MaskKind::additive_causal;
}

void check_case(const Shape& batch, int64_t Lq, int64_t Lk, int64_t D, int64_t Dv, MaskKind kind,
                DType dt, uint64_t seed, const std::string& tag) {
  Generator g(seed);
  const Tensor q = randn(with(batch, {Lq, D}), g, dt), k = randn(with(batch, {Lk, D}), g, dt);
  const Tensor v = randn(with(batch, {Lk, Dv}), g, dt), dout = randn(with(batch, {Lq, Dv}), g, dt);
  const Tensor mask = make_mask(kind == MaskKind::bool_causal ? MaskKind::boolean : kind, batch,
                                Lq, Lk, dt, g);
  const double atol = dt == DType::f32 ? 2e-5 : 1e-12, rtol = dt == DType::f32 ? 2e-4 : 1e-10;
  const auto f = ops::scaled_dot_product_attention(q, k, v, mask, causal(kind));
  const auto r = ops::scaled_dot_product_attention_reference(q, k, v, mask, causal(kind));
  expect_close(f.out, r.out, atol, rtol, tag + " out");
  expect_close(f.probs, r.probs, atol, rtol, tag + " probs");
  ops::AttentionNeeds n;
  n.mask = kind == MaskKind::additive || kind == MaskKind::additive_causal ||
           kind == MaskKind::strided_additive;
  const auto gf = ops::scaled_dot_product_attention_backward(dout, q, k, v, f.probs, mask, std::nullopt, n);
  const auto gr = ops::scaled_dot_product_attention_backward_reference(dout, q, k, v, r.probs, mask, std::nullopt, n);
  expect_close(gf.dq, gr.dq, atol, rtol, tag + " dq");
  expect_close(gf.dk, gr.dk, atol, rtol, tag + " dk");
  expect_close(gf.dv, gr.dv, atol, rtol, tag + " dv");
  if (n.mask) expect_close(gf.dmask, gr.dmask, atol, rtol, tag + " dmask");
}

TEST(Attention, MatchesReferenceOnEveryTarget) {
  const std::vector<MaskKind> kinds = {MaskKind::none, MaskKind::boolean, MaskKind::additive,
                                       MaskKind::causal, MaskKind::bool_causal, MaskKind::key_padding,
                                       MaskKind::additive_causal, MaskKind::strided_additive};
  for (int64_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    uint64_t seed = 1;
    size_t ki = 0;
    for (const Shape& batch : {Shape{1}, Shape{2, 3}})
      for (int64_t Lq : {1, 3, 7})
        for (int64_t Lk : {1, 5, 9, 17})
          for (int64_t D : {1, 2, 3, 4, 5, 6, 7, 8, 9, 64}) {
            const MaskKind kind = kinds[ki++ % kinds.size()];
            const int64_t Dv = (D % 3) + 1 + (D == 64 ? 63 : 0);
            const std::string tag = std::string(hwy::TargetName(target)) + " batch=" +
                                    shape_str(batch) + " Lq=" + std::to_string(Lq) + " Lk=" +
                                    std::to_string(Lk) + " D=" + std::to_string(D) +
                                    " mask=" + std::to_string(int(kind));
            check_case(batch, Lq, Lk, D, Dv, kind, DType::f32, seed++, tag);
          }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Attention, F64MatchesReference) {
  int s = 100;
  for (MaskKind kind : {MaskKind::none, MaskKind::boolean, MaskKind::additive, MaskKind::bool_causal})
    check_case({2, 2}, 4, 6, 5, 3, kind, DType::f64, uint64_t(s++), "f64");
}

TEST(Attention, TransposedHeadViewsAreReadInPlace) {
  // [B, L, heads, D] activations viewed as [B, heads, L, D], as multi-head attention does.
  Generator g(3);
  const int64_t B = 2, heads = 3, L = 5, D = 4;
  const Tensor qb = randn({B, L, heads, D}, g), kb = randn({B, L + 2, heads, D}, g);
  const Tensor vb = randn({B, L + 2, heads, D + 1}, g);
  const Tensor q = qb.transpose(1, 2), k = kb.transpose(1, 2), v = vb.transpose(1, 2);
  ASSERT_FALSE(q.is_contiguous());
  // And a k whose last dim is strided (a transpose of a [.., D, Lk] tensor): must be copied.
  const Tensor kt = randn({B, heads, D, L + 2}, g).transpose(2, 3);
  const Tensor mask = make_mask(MaskKind::key_padding, {B, heads}, L, L + 2, DType::f32, g);
  const Tensor dout = randn({B, heads, L, D + 1}, g);
  for (const Tensor& kk : {k, kt}) {
    const auto f = ops::scaled_dot_product_attention(q, kk, v, mask);
    const auto r = ops::scaled_dot_product_attention_reference(q.contiguous(), kk.contiguous(),
                                                               v.contiguous(), mask);
    expect_close(f.out, r.out, 1e-5, 1e-4, "strided out");
    const auto gf = ops::scaled_dot_product_attention_backward(dout, q, kk, v, f.probs, mask, std::nullopt);
    const auto gr = ops::scaled_dot_product_attention_backward_reference(
        dout, q.contiguous(), kk.contiguous(), v.contiguous(), r.probs, mask, std::nullopt);
    expect_close(gf.dq, gr.dq, 1e-5, 1e-4, "strided dq");
    expect_close(gf.dk, gr.dk, 1e-5, 1e-4, "strided dk");
    expect_close(gf.dv, gr.dv, 1e-5, 1e-4, "strided dv");
  }
}

TEST(Attention, FullyMaskedRowsGiveZerosNotNaN) {
  Generator g(5);
  const Tensor q = randn({2, 4, 3}, g), k = randn({2, 5, 3}, g), v = randn({2, 5, 2}, g);
  Tensor mask = ones({4, 5}, DType::b8);
  for (int64_t j = 0; j < 5; ++j) mask.set({2, j}, 0.0);  // query 2 sees no key
  Tensor fmask = zeros({4, 5});
  for (int64_t j = 0; j < 5; ++j) fmask.set({1, j}, -std::numeric_limits<double>::infinity());
  for (const Tensor& m : {mask, fmask}) {
    const auto f = ops::scaled_dot_product_attention(q, k, v, m);
    const int64_t dead = m.dtype() == DType::b8 ? 2 : 1;
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t e = 0; e < 2; ++e) EXPECT_EQ(f.out.get({b, dead, e}), 0.0);
    for (double x : f.out.to_vector<double>()) EXPECT_TRUE(std::isfinite(x));
    const auto gr = ops::scaled_dot_product_attention_backward(ones({2, 4, 2}), q, k, v, f.probs, m, std::nullopt);
    for (const Tensor& t : {gr.dq, gr.dk, gr.dv})
      for (double x : t.to_vector<double>()) EXPECT_TRUE(std::isfinite(x));
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t d = 0; d < 3; ++d) EXPECT_EQ(gr.dq.get({b, dead, d}), 0.0);
  }
}

TEST(Attention, KeyPaddingMaskEqualsTruncatedKeys) {
  // A variable-length batch: item b has len[b] valid keys. With a [B, 1, 1, Lk] key padding
  // mask, each item must equal attention over its own truncated keys/values.
  Generator g(8);
  const int64_t B = 3, heads = 2, Lq = 4, Lk = 7, D = 5;
  const int64_t len[B] = {7, 4, 1};
  const Tensor q = randn({B, heads, Lq, D}, g), k = randn({B, heads, Lk, D}, g);
  const Tensor v = randn({B, heads, Lk, D}, g);
  Tensor mask = empty({B, 1, 1, Lk}, DType::b8);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < Lk; ++j) mask.set({b, 0, 0, j}, j < len[b] ? 1.0 : 0.0);
  const auto full = ops::scaled_dot_product_attention(q, k, v, mask);
  for (int64_t b = 0; b < B; ++b) {
    const auto one = ops::scaled_dot_product_attention(q.select(0, b), k.select(0, b).narrow(1, 0, len[b]),
                                                       v.select(0, b).narrow(1, 0, len[b]));
    expect_close(full.out.select(0, b), one.out, 1e-6, 1e-5, "padded item " + std::to_string(b));
  }
}

TEST(Attention, SoftmaxRowKernelEdgeCases) {
  for (int64_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    const float inf = std::numeric_limits<float>::infinity();
    for (int64_t n : {1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33}) {
      std::vector<float> s(size_t(3 * n));
      for (int64_t j = 0; j < n; ++j) {
        s[size_t(j)] = 100.0f * float(j % 5) - 150.0f;  // large spread: stability
        s[size_t(n + j)] = -inf;                         // fully masked
        s[size_t(2 * n + j)] = j % 2 ? -inf : float(j);  // partly masked
      }
      ops::softmax_rows_f32(3, n, n, s.data());
      double sum0 = 0, sum2 = 0;
      for (int64_t j = 0; j < n; ++j) {
        sum0 += s[size_t(j)];
        EXPECT_EQ(s[size_t(n + j)], 0.0f);
        if (j % 2) {
          EXPECT_EQ(s[size_t(2 * n + j)], 0.0f);
        }
        sum2 += s[size_t(2 * n + j)];
      }
      EXPECT_NEAR(sum0, 1.0, 1e-5) << hwy::TargetName(target) << " n=" << n;
      EXPECT_NEAR(sum2, 1.0, 1e-5) << hwy::TargetName(target) << " n=" << n;
    }
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Attention, ScaleArgumentAndErrors) {
  Generator g(4);
  const Tensor q = randn({2, 3, 4}, g), k = randn({2, 5, 4}, g), v = randn({2, 5, 6}, g);
  const auto a = ops::scaled_dot_product_attention(q, k, v, Tensor(), false, 0.25);
  const auto r = ops::scaled_dot_product_attention_reference(q, k, v, Tensor(), false, 0.25);
  expect_close(a.out, r.out, 1e-6, 1e-5, "scale 0.25");
  const auto d = ops::scaled_dot_product_attention(q, k, v, Tensor(), false, 0.5);  // = 1/sqrt(4)
  const auto dd = ops::scaled_dot_product_attention(q, k, v);
  expect_close(d.out, dd.out, 0, 0, "default scale");
  EXPECT_THROW(ops::scaled_dot_product_attention(q, k.narrow(2, 0, 3), v), Error);  // D differs
  EXPECT_THROW(ops::scaled_dot_product_attention(q, k, v.narrow(1, 0, 4)), Error);  // Lk differs
  EXPECT_THROW(ops::scaled_dot_product_attention(q, k, v, zeros({3, 4})), Error);   // mask shape
  EXPECT_THROW(ops::scaled_dot_product_attention(q, k, v, zeros({3, 5}, DType::f64)), Error);
  EXPECT_THROW(ops::scaled_dot_product_attention(q, k.to(DType::f64), v), Error);
  try {
    ops::scaled_dot_product_attention(q, randn({3, 5, 4}, g), randn({3, 5, 6}, g));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("share their batch dims"), std::string::npos) << e.what();
  }
}

TEST(AttentionGolden, KeyPaddingMaskMatchesTorch) {
  auto t = test::load_golden("sequence_attention_padding.safetensors");
  const auto f = ops::scaled_dot_product_attention(t.at("q"), t.at("k"), t.at("v"), t.at("mask"));
  expect_close(f.out, t.at("out"), 1e-5, 1e-4, "out");
  const auto g = ops::scaled_dot_product_attention_backward(
      t.at("dout"), t.at("q"), t.at("k"), t.at("v"), f.probs, t.at("mask"), std::nullopt);
  expect_close(g.dq, t.at("dq"), 1e-5, 1e-4, "dq");
  expect_close(g.dk, t.at("dk"), 1e-5, 1e-4, "dk");
  expect_close(g.dv, t.at("dv"), 1e-5, 1e-4, "dv");
}

TEST(AttentionGolden, FloatMaskAndCausalMatchTorch) {
  auto t = test::load_golden("sequence_attention_float_causal.safetensors");
  const auto f =
      ops::scaled_dot_product_attention(t.at("q"), t.at("k"), t.at("v"), t.at("mask"), true);
  expect_close(f.out, t.at("out"), 1e-5, 1e-4, "out");
  ops::AttentionNeeds n;
  n.mask = true;
  const auto g = ops::scaled_dot_product_attention_backward(
      t.at("dout"), t.at("q"), t.at("k"), t.at("v"), f.probs, t.at("mask"), std::nullopt, n);
  expect_close(g.dq, t.at("dq"), 1e-5, 1e-4, "dq");
  expect_close(g.dk, t.at("dk"), 1e-5, 1e-4, "dk");
  expect_close(g.dv, t.at("dv"), 1e-5, 1e-4, "dv");
  expect_close(g.dmask, t.at("dmask"), 1e-5, 1e-4, "dmask");
}

}  // namespace
}  // namespace finch
