// The GRU gate passes (ops/gru.h): the Highway kernels against the scalar reference on every
// compiled target, over sizes around the vector width, saturated gates, and aliasing dh.
#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <cmath>
#include <string>
#include <vector>

#include "framework/random.h"
#include "ops/gru.h"
#include "tests/hwy_targets.h"

namespace finch {
namespace {

std::vector<float> random_vec(size_t n, Generator& g, float scale) {
  std::vector<float> v(n);
  for (float& x : v) x = g.normal() * scale;
  return v;
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want,
                     const std::string& tag) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << tag << " element " << i;
    ASSERT_NEAR(got[i], want[i], 2e-6 + 2e-5 * std::fabs(want[i])) << tag << " element " << i;
  }
}

void compare(int64_t B, int64_t H, float scale, uint64_t seed, const std::string& tag) {
  Generator g(seed);
  const size_t n3 = size_t(B * 3 * H), n1 = size_t(B * H);
  const std::vector<float> gi0 = random_vec(n3, g, scale), gh = random_vec(n3, g, scale);
  const std::vector<float> h = random_vec(n1, g, 1.0f), dhn = random_vec(n1, g, 1.0f);
  std::vector<float> gi_f = gi0, gi_r = gi0, hn_f(n1), hn_r(n1);
  ops::gru_gates_forward_f32(B, H, gi_f.data(), gh.data(), h.data(), hn_f.data());
  ops::gru_gates_forward_reference(B, H, gi_r.data(), gh.data(), h.data(), hn_r.data());
  expect_near_all(gi_f, gi_r, tag + " gates");
  expect_near_all(hn_f, hn_r, tag + " h'");
  std::vector<float> dgi_f(n3), dgh_f(n3), dh_f(n1), dgi_r(n3), dgh_r(n3), dh_r(n1);
  ops::gru_gates_backward_f32(B, H, dhn.data(), gi_r.data(), gh.data(), h.data(), dgi_f.data(),
                              dgh_f.data(), dh_f.data());
  ops::gru_gates_backward_reference(B, H, dhn.data(), gi_r.data(), gh.data(), h.data(),
                                    dgi_r.data(), dgh_r.data(), dh_r.data());
  expect_near_all(dgi_f, dgi_r, tag + " dgi");
  expect_near_all(dgh_f, dgh_r, tag + " dgh");
  expect_near_all(dh_f, dh_r, tag + " dh");
  // dh may alias dh_new (the sequence kernel's in-place update).
  std::vector<float> alias = dhn;
  ops::gru_gates_backward_f32(B, H, alias.data(), gi_r.data(), gh.data(), h.data(), dgi_f.data(),
                              dgh_f.data(), alias.data());
  expect_near_all(alias, dh_r, tag + " dh aliased");
}

TEST(GruGates, MatchesReferenceOnEveryTarget) {
  for (int64_t target : test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    for (int64_t B : {1, 2, 3, 5})
      for (int64_t H : {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64})
        compare(B, H, 1.5f, uint64_t(B * 100 + H),
                std::string(hwy::TargetName(target)) + " B=" + std::to_string(B) +
                    " H=" + std::to_string(H));
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(GruGates, SaturatedGatesStayFinite) {
  // Pre-activations of ±hundreds push σ/tanh to 0/1 where a naive e^-x overflows.
  compare(3, 20, 200.0f, 7, "saturated");
}

TEST(GruGates, F64ReferenceMatchesEquations) {
  // One unit by hand: r = σ(0.3), z = σ(-0.2), n = tanh(0.5 + r·0.4), h' = (1 − z)n + z·0.7.
  double gi[3] = {0.1, -0.5, 0.5}, gh[3] = {0.2, 0.3, 0.4}, h = 0.7, hn = 0;
  ops::gru_gates_forward_reference(1, 1, gi, gh, &h, &hn);
  const double r = 1 / (1 + std::exp(-0.3)), z = 1 / (1 + std::exp(0.2));
  const double n = std::tanh(0.5 + r * 0.4);
  EXPECT_NEAR(gi[0], r, 1e-15);
  EXPECT_NEAR(gi[1], z, 1e-15);
  EXPECT_NEAR(gi[2], n, 1e-15);
  EXPECT_NEAR(hn, (1 - z) * n + z * 0.7, 1e-15);
}

}  // namespace
}  // namespace finch
