// kernels::QLinear against reference::qlinear, bit for bit, on every Highway target: both drivers
// (few rows: dot products along K; many rows: the tiled GEMM with a transposed store), K around
// 4, the tile and the 64-byte GEMV padding, OC around MR = 8, rows around the tile width,
// batched shapes, strided inputs, i8/u8 in and out, extreme codes and zero points, clamp limits,
// multipliers with every kind of shift, with and without bias, 1 and 2 threads.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_conv.h"
#include "kernels/reference.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::kernels::QLinear;

int64_t pick(std::mt19937& rng, std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); }

bool check(const Shape& xs, int64_t OC, std::mt19937& rng, bool strided) {
  const int64_t K = xs.back();
  const DType xt = rng() % 2 ? DType::u8 : DType::i8;
  const int mode = int(rng() % 6);  // 1, 2: extreme codes
  Tensor x = random_code_tensor(rng, xs, xt, mode < 3 ? mode : 0);
  const Tensor w = random_code_tensor(rng, {OC, K}, DType::i8, mode < 3 ? 3 - mode : 0);
  int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
  if (rng() % 3 == 0) zx = rng() % 2 ? code_lo(xt) : code_hi(xt);
  Tensor bias;
  if (rng() % 4 != 0) bias = from_vector(random_codes(rng, OC, -(1 << 20), 1 << 20), {OC});
  const QOut o = random_qout(rng, OC);
  if (strided) x = strided_copy(x);
  const Tensor want = qr::qlinear(x, zx, w, bias, qr::rq_tensor(o.m), o.z, o.qmin, o.qmax, o.dtype);
  const QLinear lin(w, bias, o.m, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
  const Tensor got = lin.run(x);
  EXPECT_EQ(got.shape(), want.shape());
  EXPECT_EQ(got.dtype(), want.dtype());
  const auto g = values(got), r = values(want);
  for (size_t i = 0; i < r.size(); ++i)
    if (g[i] != r[i]) {
      ADD_FAILURE() << "x [" << xs.front() << ".., " << K << "] OC " << OC << " zx " << zx << " z_out " << o.z << " ["
                    << o.qmin << ", " << o.qmax << "] mode " << mode << ": element " << i << " got " << g[i]
                    << ", reference " << r[i];
      return false;
    }
  return true;
}

TEST(QLinear, MatchesReferenceEveryTarget) {
  int checked = 0;
  for_each_target([&](uint32_t target) {
    std::printf("QLinear on Highway target %s\n", hwy::TargetName(target));
    std::mt19937 rng(99);
    for (int i = 0; i < 200; ++i) {
      set_num_threads(i % 2 + 1);
      const int64_t rows = pick(rng, {1, 1, 2, 3, 4, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100});
      const int64_t K = pick(rng, {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 300});
      const int64_t OC = pick(rng, {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 33, 40});
      Shape xs = {rows, K};
      if (rows % 2 == 0 && rng() % 3 == 0) xs = {2, rows / 2, K};  // batched [B, T, K]
      if (rows == 1 && rng() % 3 == 0) xs = {K};                    // a single vector
      if (!check(xs, OC, rng, i % 7 == 0 && K > 1)) break;
      ++checked;
    }
    set_num_threads(1);
    // BERT-like shapes: one token and a sequence through a 768 -> 64 projection (GEMV and GEMM).
    for (int64_t rows : {1, 128})
      if (check({rows, 768}, 64, rng, false)) ++checked;
  });
  set_num_threads(1);
  std::printf("%d cases checked\n", checked);
  EXPECT_GT(checked, 0);
}

TEST(QLinear, RejectsBadArguments) {
  const Tensor w = zeros({4, 10}, DType::i8);
  const std::vector<quant::FixedPointMultiplier> m(4, quant::quantize_multiplier(0.01));
  EXPECT_THROW(QLinear(w, Tensor(), m, DType::u8, -1, 0, -128, 127, DType::i8), Error);  // zx outside u8
  EXPECT_THROW(QLinear(w, Tensor(), m, DType::u8, 0, 0, 10, 5, DType::i8), Error);       // qmin > qmax
  EXPECT_THROW(QLinear(zeros({4, 10}, DType::u8), Tensor(), m, DType::u8, 0, 0, -128, 127, DType::i8), Error);
  const QLinear lin(w, Tensor(), m, DType::u8, 0, 0, -128, 127, DType::i8);
  EXPECT_THROW(lin.run(zeros({2, 9}, DType::u8)), Error);   // wrong K
  EXPECT_THROW(lin.run(zeros({2, 10}, DType::i8)), Error);  // wrong input type
}

}  // namespace
}  // namespace finch::test
