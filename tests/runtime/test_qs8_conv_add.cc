// The residual add fused into the int8 conv (kernels::QConv2d::run_add, and the load-time fusion
// of runtime::Program that uses it) against the unfused pair, bit for bit: random convs around
// the tile edges (whole tiles, tails, narrow tiles, the segmented and the compacted virtual
// grids), either operand order, i8/u8 everywhere, ReLU ranges, strided residuals, every Highway
// target, 1 and 2 threads; then whole programs: run() (fused) equals run_all() (every node as
// stored) and the reference kernels.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>

#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/safetensors.h"
#include "kernels/qs8_conv.h"
#include "kernels/reference.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

namespace qr = quant::reference;
using quant::kernels::QAddEpilogue;
using quant::kernels::QConv2d;

int64_t pick(std::mt19937& rng, std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); }

struct Case {
  int64_t N, C, OC, H, W, K;
  ops::Conv2dParams p;
};

std::string str(const Case& c) {
  return "N" + std::to_string(c.N) + " C" + std::to_string(c.C) + " OC" + std::to_string(c.OC) + " " +
         std::to_string(c.H) + "x" + std::to_string(c.W) + " k" + std::to_string(c.K) + " s" + std::to_string(c.p.sh) +
         " p" + std::to_string(c.p.ph) + " g" + std::to_string(c.p.groups);
}

std::vector<float> floats(const Tensor& t) { return t.to(DType::f32).contiguous().to_vector<float>(); }

float random_scale(std::mt19937& rng) { return std::exp2(std::uniform_real_distribution<float>(-9, 1)(rng)); }

// One case: the fused result against qadd(qconv2d(x), r) of the references; false on a mismatch.
bool check(const Case& c, std::mt19937& rng) {
  const DType xt = rng() % 2 ? DType::u8 : DType::i8;
  const Tensor x = random_code_tensor(rng, {c.N, c.C, c.H, c.W}, xt, 0);
  const Tensor w = random_code_tensor(rng, {c.OC, c.C / c.p.groups, c.K, c.K}, DType::i8, 0);
  const int32_t zx = std::uniform_int_distribution<int32_t>(code_lo(xt), code_hi(xt))(rng);
  Tensor bias;
  if (rng() % 3 != 0) bias = from_vector(random_codes(rng, c.OC, -(1 << 16), 1 << 16), {c.OC});
  const QOut o = random_qout(rng, c.OC);
  const QConv2d conv(w, bias, o.m, c.p, xt, zx, o.z, o.qmin, o.qmax, o.dtype);
  const Tensor codes = qr::qconv2d(x, zx, w, bias, qr::rq_tensor(o.m), c.p, o.z, o.qmin, o.qmax, o.dtype);

  QAddEpilogue e;
  e.s_conv = random_scale(rng), e.z_conv = o.z;
  e.r_dtype = rng() % 2 ? DType::u8 : DType::i8;
  e.s_r = random_scale(rng), e.z_r = std::uniform_int_distribution<int32_t>(code_lo(e.r_dtype), code_hi(e.r_dtype))(rng);
  e.out_dtype = rng() % 2 ? DType::u8 : DType::i8;
  e.s_out = random_scale(rng);
  e.z_out = std::uniform_int_distribution<int32_t>(code_lo(e.out_dtype), code_hi(e.out_dtype))(rng);
  e.qmin = rng() % 2 ? e.z_out : code_lo(e.out_dtype), e.qmax = code_hi(e.out_dtype);  // a fused ReLU or none
  e.conv_first = rng() % 2 == 0;
  Tensor r = random_code_tensor(rng, codes.shape(), e.r_dtype, 0);
  if (rng() % 5 == 0) r = strided_copy(r);
  const Tensor want = e.conv_first
                          ? qr::qadd(codes, e.s_conv, e.z_conv, r, e.s_r, e.z_r, e.s_out, e.z_out, e.qmin, e.qmax, e.out_dtype)
                          : qr::qadd(r, e.s_r, e.z_r, codes, e.s_conv, e.z_conv, e.s_out, e.z_out, e.qmin, e.qmax, e.out_dtype);
  const Tensor got = conv.run_add(x, r, e);
  EXPECT_EQ(got.dtype(), want.dtype()) << str(c);
  EXPECT_EQ(got.shape(), want.shape()) << str(c);
  const auto g = values(got), ref = values(want);
  for (size_t i = 0; i < ref.size(); ++i)
    if (g[i] != ref[i]) {
      ADD_FAILURE() << str(c) << (e.conv_first ? " conv first" : " residual first") << ": element " << i << " got "
                    << g[i] << ", reference " << ref[i];
      return false;
    }
  return true;
}

TEST(QConv2dAdd, MatchesConvThenAddEveryTarget) {
  int checked = 0;
  for_each_target([&](uint32_t target) {
    std::printf("QConv2d::run_add on Highway target %s\n", hwy::TargetName(target));
    std::mt19937 rng(77);
    // ResNet-20's layers at 28×28 (segmented grids, Wq >= 8; a 7×9 grid, compacted), the strided
    // and 1×1 downsampling convs, a plain 1×1 (the direct path), groups, and narrow tiles.
    for (const Case& c : {Case{1, 16, 16, 28, 28, 3, {1, 1, 1, 1, 1, 1, 1}}, Case{1, 64, 64, 7, 7, 3, {1, 1, 1, 1, 1, 1, 1}},
                          Case{2, 16, 32, 28, 28, 1, {2, 2, 0, 0, 1, 1, 1}}, Case{1, 32, 32, 14, 14, 3, {1, 1, 1, 1, 1, 1, 1}},
                          Case{2, 24, 40, 9, 11, 1, {1, 1, 0, 0, 1, 1, 1}}, Case{1, 12, 18, 10, 10, 3, {1, 1, 1, 1, 1, 1, 3}},
                          Case{3, 8, 9, 4, 4, 3, {1, 1, 1, 1, 1, 1, 1}}, Case{1, 3, 17, 5, 6, 3, {2, 2, 1, 1, 1, 1, 1}}}) {
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        if (!check(c, rng)) break;
        ++checked;
      }
    }
    for (int i = 0; i < 60; ++i) {
      set_num_threads(i % 2 + 1);
      Case c{};
      c.p.groups = pick(rng, {1, 1, 1, 2});
      c.C = pick(rng, {1, 3, 4, 5, 8, 16}) * c.p.groups, c.OC = pick(rng, {1, 7, 8, 9, 16, 17, 24}) * c.p.groups;
      c.N = pick(rng, {1, 1, 2}), c.K = pick(rng, {1, 3}), c.p.sh = c.p.sw = pick(rng, {1, 1, 2});
      c.p.ph = c.p.pw = c.K == 3 ? pick(rng, {0, 1}) : 0;
      c.H = pick(rng, {3, 4, 5, 7, 8, 9, 14, 17}), c.W = pick(rng, {3, 4, 5, 7, 8, 9, 14, 17, 33});
      if (!check(c, rng)) break;
      ++checked;
    }
  });
  set_num_threads(1);
  std::printf("%d cases checked\n", checked);
  EXPECT_GT(checked, 0);
}

TEST(QConv2dAdd, RejectsAMismatchedResidual) {
  std::mt19937 rng(3);
  const Tensor x = random_code_tensor(rng, {1, 4, 5, 5}, DType::i8, 0);
  const Tensor w = random_code_tensor(rng, {8, 4, 3, 3}, DType::i8, 0);
  const QOut o = random_qout(rng, 8);
  const QConv2d conv(w, Tensor(), o.m, {1, 1, 1, 1, 1, 1, 1}, DType::i8, 0, o.z, o.qmin, o.qmax, o.dtype);
  QAddEpilogue e;
  e.z_conv = o.z;
  EXPECT_THROW(conv.run_add(x, random_code_tensor(rng, {1, 8, 5, 4}, DType::i8, 0), e), Error);  // shape
  EXPECT_THROW(conv.run_add(x, random_code_tensor(rng, {1, 8, 5, 5}, DType::u8, 0), e), Error);  // dtype
  e.z_conv = o.z == 0 ? 1 : 0;  // not the conv's own zero point
  EXPECT_THROW(conv.run_add(x, random_code_tensor(rng, {1, 8, 5, 5}, DType::i8, 0), e), Error);
  e.z_conv = o.z, e.s_out = 0;
  EXPECT_THROW(conv.run_add(x, random_code_tensor(rng, {1, 8, 5, 5}, DType::i8, 0), e), Error);
}

// The checked-in int8 programs: every qadd of ResNet-20 fuses into a conv, and run() gives the
// bits of run_all() (nothing fused) and of the reference kernels, at batch 1 and 8, 1 and 2 threads.
TEST(QConv2dAdd, ProgramsFusedEqualUnfused) {
  const std::string dir = std::string(FINCH_TEST_DATA_DIR) + "/golden/data/programs_028b406/";
  const Tensor images = load_safetensors(dir + "expected.safetensors").at("input");
  for (const auto& [name, adds] : {std::pair<std::string, int64_t>{"resnet20-int8", 9}, {"mobilenetv2-w025-int8-u8io", -1}}) {
    SCOPED_TRACE(name);
    runtime::Program fused(runtime::read_program(dir + name + ".finch"), name);
    runtime::ProgramOptions ref_opts;
    ref_opts.reference_kernels = true;
    runtime::Program reference(runtime::read_program(dir + name + ".finch"), name, ref_opts);
    int64_t qadds = 0;
    for (const auto& n : fused.graph().nodes) qadds += n.op == "qadd";
    std::printf("%s: %lld of %lld qadd nodes fused\n", name.c_str(), static_cast<long long>(fused.fused_nodes()),
                static_cast<long long>(qadds));
    if (adds >= 0) {
      EXPECT_EQ(fused.fused_nodes(), adds);
    }
    EXPECT_GT(fused.fused_nodes(), 0);
    EXPECT_EQ(reference.fused_nodes(), 0);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const Tensor& x : {images, images.narrow(0, 3, 1).contiguous()}) {
        const Tensor got = fused.run(x);
        const auto all = fused.run_all({x});
        const Tensor unfused = all[size_t(fused.graph().outputs[0])];
        EXPECT_EQ(floats(got), floats(unfused)) << threads << " threads";
        EXPECT_EQ(floats(got), floats(reference.run(x))) << threads << " threads";
      }
    }
    set_num_threads(1);
  }
}

}  // namespace
}  // namespace finch::test
