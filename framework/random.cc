// xoshiro256** (Blackman & Vigna 2018) seeded through splitmix64, and the random factories.
#include "framework/random.h"

#include <cmath>
#include <cstring>

namespace finch {

namespace {
uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

void Generator::manual_seed(uint64_t seed) {
  uint64_t x = seed;
  for (auto& w : s_) w = splitmix64(x);
  has_spare_ = false;
}

uint64_t Generator::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Generator::uniform() { return float(next_u64() >> 40) * (1.0f / 16777216.0f); }
double Generator::uniform_double() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

float Generator::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  // 1 - u keeps the log argument in (0, 1].
  const double u1 = 1.0 - uniform_double(), u2 = uniform_double();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_ = float(r * std::sin(2.0 * M_PI * u2));
  has_spare_ = true;
  return float(r * std::cos(2.0 * M_PI * u2));
}

uint64_t Generator::below(uint64_t n) {
  FINCH_CHECK(n > 0, "Generator::below(0)");
  __uint128_t m = __uint128_t(next_u64()) * n;
  uint64_t lo = uint64_t(m);
  if (lo < n) {
    const uint64_t threshold = (0 - n) % n;
    while (lo < threshold) {
      m = __uint128_t(next_u64()) * n;
      lo = uint64_t(m);
    }
  }
  return uint64_t(m >> 64);
}

Generator::State Generator::state() const {
  uint32_t spare_bits;
  std::memcpy(&spare_bits, &spare_, 4);
  return {s_[0], s_[1], s_[2], s_[3], (uint64_t(has_spare_) << 32) | spare_bits};
}

void Generator::set_state(const State& s) {
  for (int i = 0; i < 4; ++i) s_[i] = s[size_t(i)];
  has_spare_ = (s[4] >> 32) != 0;
  const uint32_t spare_bits = uint32_t(s[4]);
  std::memcpy(&spare_, &spare_bits, 4);
}

Generator& default_generator() {
  static Generator g(0x5eed);
  return g;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

Tensor rand(const Shape& shape, Generator& gen, DType dtype) {
  if (!is_floating(dtype)) fail("rand: expected a floating dtype, got ", dtype_name(dtype));
  Tensor t = empty(shape, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.uniform();
  return t.to(dtype);
}

Tensor randn(const Shape& shape, Generator& gen, DType dtype) {
  if (!is_floating(dtype)) fail("randn: expected a floating dtype, got ", dtype_name(dtype));
  Tensor t = empty(shape, DType::f32);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = gen.normal();
  return t.to(dtype);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, DType dtype) {
  if (high <= low) fail("randint: empty range [", low, ", ", high, ")");
  Tensor t = empty(shape, DType::i64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = low + int64_t(gen.below(uint64_t(high - low)));
  return t.to(dtype);
}

Tensor randperm(int64_t n, Generator& gen) {
  Tensor t = arange(double(n), DType::i64);
  int64_t* p = t.data<int64_t>();
  for (int64_t i = n - 1; i > 0; --i) std::swap(p[i], p[gen.below(uint64_t(i + 1))]);
  return t;
}

}  // namespace finch
