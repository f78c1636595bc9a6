// DType sizes, names and the half-precision conversions.
#include "framework/dtype.h"

#include "framework/error.h"

namespace finch {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f64: case DType::i64: return 8;
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: case DType::i16: return 2;
    case DType::i8: case DType::u8: case DType::b8: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::i16: return "I16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::b8: return "BOOL";
  }
  return "?";
}

DType dtype_from_name(const std::string& name) {
  for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8, DType::u8,
                  DType::i16, DType::i32, DType::i64, DType::b8})
    if (name == dtype_name(t)) return t;
  fail("unknown dtype \"", name, "\": expected one of F32, F64, F16, BF16, I8, U8, I16, I32, I64, BOOL");
}

bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}

float f16_to_f32(f16 h) {
  const uint32_t sign = uint32_t(h.bits & 0x8000) << 16;
  uint32_t exp = (h.bits >> 10) & 0x1f;
  uint32_t mant = h.bits & 0x3ff;
  uint32_t u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000 | (mant << 13);  // inf / nan
  } else if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: renormalize
      int e = -1;
      do { mant <<= 1; ++e; } while ((mant & 0x400) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else {
    u = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

f16 f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7fffffff;
  if (abs >= 0x7f800000) return {uint16_t(sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0))};
  if (abs >= 0x477ff000) return {uint16_t(sign | 0x7c00)};  // rounds to >= 65520: inf
  if (abs < 0x38800000) {  // below the smallest normal half (2^-14): subnormal or zero
    // Adding 0.5 (2^-1) aligns the mantissa so the FPU's own RNE rounding does the work.
    float a;
    std::memcpy(&a, &abs, 4);
    a += 0.5f;
    uint32_t r;
    std::memcpy(&r, &a, 4);
    return {uint16_t(sign | (r - 0x3f000000))};
  }
  // Normal: rebias exponent, round mantissa to 10 bits with ties to even.
  const uint32_t odd = (abs >> 13) & 1;
  const uint32_t r = abs + 0xc8000fff + odd;  // (-112 << 23) + 0xfff + odd
  return {uint16_t(sign | (r >> 13))};
}

bf16 f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return {uint16_t((u >> 16) | 0x40)};  // quiet nan
  const uint32_t lsb = (u >> 16) & 1;
  return {uint16_t((u + 0x7fff + lsb) >> 16)};
}

}  // namespace finch
