// Programs written by an older finch still load and give the same bits: four .finch files made
// by the tree at 028b406 (before the compiler and runtime left quant/) with their outputs on eight
// Fashion-MNIST test images, run at batch 1 and batch 8 (tests/golden/make_program_regression.cc
// made them; tests/golden/data/programs_028b406/README.md says how).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "framework/cpu_features.h"
#include "framework/safetensors.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch {
namespace {

std::string dir() { return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/programs_028b406/"; }

// Bit-exact equality of two f32 tensors, naming the first differing element.
::testing::AssertionResult same_bits(const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(got.shape()) << " vs " << shape_str(want.shape());
  const Tensor g = got.to(DType::f32).contiguous(), w = want.to(DType::f32).contiguous();
  const float* a = g.data<float>();
  const float* b = w.data<float>();
  for (int64_t i = 0; i < g.numel(); ++i)
    if (std::memcmp(a + i, b + i, sizeof(float)) != 0)
      return ::testing::AssertionFailure() << "element " << i << ": " << a[i] << " vs " << b[i];
  return ::testing::AssertionSuccess();
}

// Float programs are bit-exact on the kind of CPU that wrote the files (x86-64) when they run as
// the writer ran them (ops/ through OpenBLAS): with the reference kernels. On the optimized
// kernels an fp32 or fp16 program's conv2d/linear run on the packed fp32 kernels
// (kernels/f32_conv.h; an fp16 program's weights widened at load), which sum in another order, as
// do float programs on other CPUs (NEON GEMM tiles, OpenBLAS's ARM kernels): those agree to
// rounding. Integer programs are exact everywhere (docs/quantization.md).
bool exact(const std::string& name, bool reference) {
#if defined(__x86_64__)
  return reference || (name.find("fp32") == std::string::npos && name.find("fp16") == std::string::npos);
#else
  (void)reference;
  return name.find("int8") != std::string::npos;
#endif
}

::testing::AssertionResult matches(const std::string& name, const Tensor& got, const Tensor& want, bool reference) {
  if (exact(name, reference)) return same_bits(got, want);
  const Tensor g = got.to(DType::f32).contiguous(), w = want.to(DType::f32).contiguous();
  if (g.shape() != w.shape()) return ::testing::AssertionFailure() << "shape differs";
  for (int64_t i = 0; i < g.numel(); ++i) {
    const float a = g.data<float>()[i], b = w.data<float>()[i];
    if (!(std::fabs(a - b) <= 1e-4f + 1e-4f * std::fabs(b)))
      return ::testing::AssertionFailure() << "element " << i << ": " << a << " vs " << b;
  }
  return ::testing::AssertionSuccess();
}

class ProgramRegression : public ::testing::TestWithParam<const char*> {};

TEST_P(ProgramRegression, SameBitsAsTheTreeThatWroteIt) {
  const std::string name = GetParam();
  // An fp16 program's conv/linear compute natively in fp16 on ARMv8.2 FP16 CPUs (a documented
  // difference of fp16 rounding); the file was made on x86, where they compute in fp32.
  if (name.find("fp16") != std::string::npos && cpu_has_arm_fp16())
    GTEST_SKIP() << "native fp16 compute differs from the x86 outputs by fp16 rounding";
  const SafetensorsFile expected = load_safetensors(dir() + "expected.safetensors");
  const Tensor x = expected.at("input");
  for (const bool reference : {false, true}) {
    SCOPED_TRACE(reference ? "reference kernels" : "optimized kernels");
    runtime::ProgramOptions options;
    options.reference_kernels = reference;
    runtime::Program p(runtime::read_program(dir() + name + ".finch"), name, options);
    EXPECT_TRUE(matches(name, p.run(x), expected.at(name + ".batch8"), reference));
    const Tensor want1 = expected.at(name + ".batch1");
    for (int64_t i = 0; i < x.size(0); ++i) {
      const Tensor y = p.run(x.narrow(0, i, 1).contiguous());
      EXPECT_TRUE(matches(name, y.reshape({want1.size(1)}), want1.narrow(0, i, 1).reshape({want1.size(1)}), reference))
          << "image " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Files, ProgramRegression,
                         ::testing::Values("lenet5-fp32", "lenet5-fp16", "mobilenetv2-w025-int8-u8io",
                                           "resnet20-int8"));

}  // namespace
}  // namespace finch
