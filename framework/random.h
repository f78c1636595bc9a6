// Seeded random numbers: one Generator type (xoshiro256**) whose whole state is four words, so
// checkpoints can save and restore it exactly and `--resume` continues the same stream.
#pragma once

#include <array>
#include <cstdint>

#include "framework/tensor.h"

namespace finch {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0x5eed) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1) with 24 random bits (exactly representable floats).
  float uniform();
  double uniform_double();  // 53 random bits
  float normal();           // standard normal (Box-Muller; the spare value is cached)
  // Uniform integer in [0, n) without modulo bias (Lemire's method).
  uint64_t below(uint64_t n);

  using State = std::array<uint64_t, 5>;  // 4 words of xoshiro + the cached normal's bits
  State state() const;
  void set_state(const State& s);

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  float spare_ = 0;
};

// The process-wide generator used when a caller passes none (like torch's default generator).
Generator& default_generator();
void manual_seed(uint64_t seed);

// Factories that draw from a generator (f32/f64 for the floats, any integer dtype for randint).
Tensor rand(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32);
Tensor randn(const Shape& shape, Generator& gen = default_generator(), DType dtype = DType::f32);
// Integers in [low, high).
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen = default_generator(),
               DType dtype = DType::i64);
// A random permutation of 0..n-1 (Fisher-Yates), as i64.
Tensor randperm(int64_t n, Generator& gen = default_generator());

}  // namespace finch
