// Element types of a Tensor, their sizes and names, and the f16/bf16 <-> f32 conversions.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace finch {

enum class DType : uint8_t { f32, f64, f16, bf16, i8, u8, i16, i32, i64, b8 };

// IEEE binary16 and bfloat16 stored as raw bits; arithmetic happens in f32.
struct f16 {
  uint16_t bits = 0;
};
struct bf16 {
  uint16_t bits = 0;
};

size_t dtype_size(DType t);
// Names as safetensors writes them: F32, F64, F16, BF16, I8, U8, I16, I32, I64, BOOL.
const char* dtype_name(DType t);
// Inverse of dtype_name; throws finch::Error naming the unknown string.
DType dtype_from_name(const std::string& name);
bool is_floating(DType t);

// Round-to-nearest-even conversions (what F16C's vcvtps2ph with imm 0 and torch do).
float f16_to_f32(f16 h);
f16 f32_to_f16(float f);
inline float bf16_to_f32(bf16 h) {
  uint32_t u = uint32_t(h.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bf16 f32_to_bf16(float f);

// Maps a C++ type to its DType (used by Tensor::data<T>() to check the caller's type).
template <typename T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<f16> { static constexpr DType value = DType::f16; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<int16_t> { static constexpr DType value = DType::i16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::b8; };
template <typename T>
inline constexpr DType dtype_v = dtype_of<T>::value;

// Calls fn with a value of the C++ type that matches t: visit_dtype(t, [&](auto tag) {
// using T = decltype(tag); ... }). One hop of dispatch for code that is generic over dtypes.
template <typename F>
decltype(auto) visit_dtype(DType t, F&& fn) {
  switch (t) {
    case DType::f32: return fn(float{});
    case DType::f64: return fn(double{});
    case DType::f16: return fn(f16{});
    case DType::bf16: return fn(bf16{});
    case DType::i8: return fn(int8_t{});
    case DType::u8: return fn(uint8_t{});
    case DType::i16: return fn(int16_t{});
    case DType::i32: return fn(int32_t{});
    case DType::i64: return fn(int64_t{});
    case DType::b8: return fn(bool{});
  }
  return fn(float{});
}

// Converts any element type to double and back (used by element access and dtype casts).
template <typename T>
inline double to_double(T v) {
  if constexpr (std::is_same_v<T, f16>) return f16_to_f32(v);
  else if constexpr (std::is_same_v<T, bf16>) return bf16_to_f32(v);
  else return static_cast<double>(v);
}
template <typename T>
inline T from_double(double v) {
  if constexpr (std::is_same_v<T, f16>) return f32_to_f16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bf16>) return f32_to_bf16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, bool>) return v != 0.0;
  else if constexpr (std::is_integral_v<T>) {
    // A double outside T's range cast straight to T is undefined behaviour (UBSan caught
    // Tensor::to(u8) of a negative i8 code). Defined here as an integer conversion: through
    // int64 (saturating there, NaN → 0), then modulo 2^bits as C++20 converts integers, which
    // is what x86 gave for in-range values before (i8 −1 → u8 255).
    if (v != v) return T(0);
    const int64_t i = v <= -9223372036854775808.0  ? std::numeric_limits<int64_t>::min()
                      : v >= 9223372036854775807.0 ? std::numeric_limits<int64_t>::max()
                                                   : static_cast<int64_t>(v);
    return static_cast<T>(i);
  } else return static_cast<T>(v);
}

}  // namespace finch
