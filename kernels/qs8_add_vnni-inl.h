// The residual add of reference::qadd (docs/quantization.md §7) in registers, for the AVX-512
// VNNI conv epilogues (qs8_gemm_vnni-inl.h, qs8_igemm_hwy.cc): int32 conv codes and residual
// codes of 16 lanes in, the add's int32 codes out. Included inside a per-target namespace, for
// the AVX3_DL target only (no include guard: once per target, as qs8_gemm_vnni-inl.h).
//
// Exact against the reference because every f32 step is the same single IEEE operation in the
// same order, written with the embedded-rounding intrinsics ({rn-sae}: round to nearest even, as
// the default MXCSR): GCC turns plain _mm512_mul_ps / _mm512_add_ps into generic vector code and
// may contract a multiply and a following add into one FMA (one rounding instead of two); the
// *_round_ forms are builtins it never contracts. The reference's
//   clamp(rne(v / s_out) + z_out, qmin, qmax)
// is computed as rne(clamp(v / s_out, qmin − z_out, qmax − z_out)) + z_out: the bounds are
// integers, rne is monotone and fixes integers, so both give the same code (and a value far
// outside the range, where the reference's + z_out may round, clamps to the same end). NaN
// cannot reach here (finite codes and scales), and vmaxps would return the bound for it, as fmax.
#if HWY_TARGET == HWY_AVX3_DL

struct AddConsts16 {
  __m512i zr, zo, flip;
  __m512 sc, sr, so, lo, hi;
  AddConsts16() = default;
  explicit AddConsts16(const TileAdd& a) {
    // u8 residual codes are XORed with 0x80 to i8 (code − 128): one sign extension for both
    // types, the zero point moved with them.
    zr = _mm512_set1_epi32(a.r_u8 ? a.z_r - 128 : a.z_r);
    flip = _mm512_set1_epi8(a.r_u8 ? char(0x80) : 0);
    zo = _mm512_set1_epi32(a.z_out);
    sc = _mm512_set1_ps(a.s_conv), sr = _mm512_set1_ps(a.s_r), so = _mm512_set1_ps(a.s_out);
    lo = _mm512_set1_ps(float(a.qmin - a.z_out)), hi = _mm512_set1_ps(float(a.qmax - a.z_out));
  }
};

// conv: the conv's clamped int32 codes minus z_conv (the epilogues requantize with z_out = 0 and
// the clamp moved by −z_conv: the same integers, one subtraction fewer); r: the residual's codes
// as i8 sign-extended (after the flip). Returns the add's int32 codes inside [qmin, qmax].
HWY_INLINE __m512i AddCodes16(const AddConsts16& k, __m512i conv, __m512i r) {
  constexpr int kRn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512 va = _mm512_mul_round_ps(_mm512_cvtepi32_ps(conv), k.sc, kRn);
  const __m512 vb = _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(r, k.zr)), k.sr, kRn);
  const __m512 q = _mm512_div_round_ps(_mm512_add_round_ps(va, vb, kRn), k.so, kRn);
  const __m512 c = _mm512_min_ps(_mm512_max_ps(q, k.lo), k.hi);
  return _mm512_add_epi32(_mm512_cvt_roundps_epi32(c, kRn), k.zo);
}

// The residual's bytes at rp as sign-extendable i8 (flipped from u8 where they are u8).
HWY_INLINE __m128i AddLoad16(const AddConsts16& k, const uint8_t* rp, __mmask16 keep) {
  const __m128i v = keep == __mmask16(0xFFFF) ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(rp))
                                              : _mm_maskz_loadu_epi8(keep, rp);
  return _mm_xor_si128(v, _mm512_castsi512_si128(k.flip));
}

#endif  // HWY_TARGET == HWY_AVX3_DL
