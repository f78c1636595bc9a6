// The 3×3 stride-2 depthwise walk of kernels/f32_dwconv_hwy.cc for dilation 1 (MobileNet's
// strided layers): included by it inside its per-target namespace, after the helpers it uses
// (Taps, finish). No validation here; F32DwconvPlanes picks it.
//
// It keeps each output's sum in the order of the generic walk (bias, then the taps by fma in
// (kh, kw) order, a padded tap adding w·0), so it gives its results bit for bit.
//
// Tried for stride 1 and dropped (docs/fp32-kernels.md): blocks of 4 output rows over the
// scratch, each scratch vector loaded once for the rows that read it (faster in
// bench_f32_dwconv at first, but 0.79–0.86× inside the MobileNet v1 program at 112², 1.02× at
// 56², against the plain row walk in the same build); and reading the input rows in place like
// stride 2 below (1.15–1.2× slower: unaligned rows and masked edges).

// acc + the taps kh·3 .. kh·3 + 2 (weights w0..w2) of the column vectors x0..x2, kw in order.
template <class V>
HWY_INLINE V taps3(V acc, V w0, V w1, V w2, V x0, V x1, V x2) {
  return hn::MulAdd(w2, x2, hn::MulAdd(w1, x1, hn::MulAdd(w0, x0, acc)));
}

// ---- stride 2, read in place ----
//
// A 3×3 stride-2 plane straight from the input rows, without the phase-split scratch: output
// columns ow .. ow + L − 1 read input columns c + 2j + kw, c = 2·ow − pw, which two
// de-interleaving loads give (LoadInterleaved2 at c: kw = 0 and 1; at c + 2: kw = 2). Why: the
// packing wrote and the taps read back a copy of the whole input (1.6 MB at MobileNet v1's
// 32-channel 112² layer), and at that size the copy cost more than the arithmetic (perf: 57 %
// of the layer packing, 37 % in the taps). Blocks of R output rows read each of their 2R + 1
// input rows once: even rows serve kh = 2 of one output row and kh = 0 of the next.

// Lane j of the three vectors of input row `row` (null: a padding row) = columns c + 2j,
// c + 2j + 1, c + 2j + 2, zero outside [0, W). `past` says whether reading up to 2L + 2 floats
// past c is allowed beyond the row (the lanes that read past the row belong to outputs past OW,
// and the memory is inside the input tensor); otherwise the row's edge goes through a zeroed copy.
template <class D, class V = hn::Vec<D>>
HWY_INLINE void s2_row(D d, const float* HWY_RESTRICT row, int64_t W, int64_t c, bool past, V& k0, V& k1, V& k2) {
  const int64_t L = int64_t(hn::Lanes(d));
  if (!row) {
    k0 = k1 = k2 = hn::Zero(d);
    return;
  }
  V unused;
  if (c >= 0 && (c + 2 * L + 2 <= W || past)) {
    hn::LoadInterleaved2(d, row + c, k0, k1);
    hn::LoadInterleaved2(d, row + c + 2, k2, unused);
    return;
  }
  if (c == -1 && (2 * L <= W || past)) {  // padding 1 on the left: k0 is k2 one lane later
    hn::LoadInterleaved2(d, row, k1, k2);
    HWY_ALIGN int32_t idx[HWY_MAX_BYTES / sizeof(float)];
    for (int64_t j = 0; j < L; ++j) idx[j] = int32_t(j == 0 ? 0 : j - 1);
    k0 = hn::IfThenZeroElse(hn::FirstN(d, 1), hn::TableLookupLanes(k2, hn::SetTableIndices(d, idx)));
    return;
  }
  HWY_ALIGN float buf[2 * HWY_MAX_BYTES / sizeof(float) + 4] = {};
  for (int64_t i = std::max<int64_t>(0, -c); i < 2 * L + 2 && c + i < W; ++i) buf[i] = row[c + i];
  hn::LoadInterleaved2(d, buf, k0, k1);
  hn::LoadInterleaved2(d, buf + 2, k2, unused);
}

// Output rows [oh, oh + R) of one plane: xp the plane's input rows (W apart, rows outside
// [0, a.H) padding, a.ph of them above), y / res its output rows, yroom as in the row walks.
template <int R, class D>
HWY_INLINE void dw3x3s2_block(D d, const F32DwArgs& a, const float* HWY_RESTRICT xp, const Taps<9>& tp, float bias,
                              float* y, const float* res, int64_t yroom, bool past_ok, int64_t oh) {
  using V = hn::Vec<D>;
  const int64_t L = int64_t(hn::Lanes(d)), OW = a.OW, W = a.W;
  const F32Act act = a.act;
  const V w0 = hn::Set(d, tp.w[0]), w1 = hn::Set(d, tp.w[1]), w2 = hn::Set(d, tp.w[2]);
  const V w3 = hn::Set(d, tp.w[3]), w4 = hn::Set(d, tp.w[4]), w5 = hn::Set(d, tp.w[5]);
  const V w6 = hn::Set(d, tp.w[6]), w7 = hn::Set(d, tp.w[7]), w8 = hn::Set(d, tp.w[8]);
  const V vb = hn::Set(d, bias);
  const float* rows[2 * R + 1];
  for (int i = 0; i < 2 * R + 1; ++i) {
    const int64_t ih = 2 * oh - a.ph + i;
    rows[i] = ih >= 0 && ih < a.H ? xp + ih * W : nullptr;
  }
  // Column vectors from the last, as in dw3x3_block (a partial vector's overrun is stored over).
  for (int64_t ow = (OW - 1) / L * L; ow >= 0; ow -= L) {
    const int64_t c = 2 * ow - a.pw;
    V acc[R];
#if HWY_COMPILER_GCC_ACTUAL
#pragma GCC unroll 8
#endif
    for (int r = 0; r < R; ++r) acc[r] = vb;
#if HWY_COMPILER_GCC_ACTUAL
#pragma GCC unroll 16
#endif
    for (int i = 0; i < 2 * R + 1; ++i) {
      V k0, k1, k2;
      const float* row = rows[i];
      s2_row(d, row, W, c, past_ok && row && row + c + 2 * L + 2 <= a.x_end, k0, k1, k2);
      if (i % 2 == 0) {
        if (i / 2 >= 1) acc[i / 2 - 1] = taps3(acc[i / 2 - 1], w6, w7, w8, k0, k1, k2);
        if (i / 2 < R) acc[i / 2] = taps3(acc[i / 2], w0, w1, w2, k0, k1, k2);
      } else {
        acc[i / 2] = taps3(acc[i / 2], w3, w4, w5, k0, k1, k2);
      }
    }
    const int64_t valid = std::min(L, OW - ow);
#if HWY_COMPILER_GCC_ACTUAL
#pragma GCC unroll 8
#endif
    for (int r = 0; r < R; ++r) {
      const int64_t yo = (oh + r) * OW + ow;
      finish(d, acc[r], y + yo, res ? res + yo : nullptr, valid, yo + L <= yroom, act);
    }
  }
}

// One plane (channel multiplier handled by the caller): blocks of 4 output rows, then 1–3.
template <class D>
void f32_dwconv3x3s2_direct(D d, const F32DwArgs& a, const float* xp, const Taps<9>& tp, float bias, float* y,
                            const float* res, int64_t yroom) {
  constexpr int R = 4;
  // Valid outputs never read past column W − 1 (2·(OW − 1) − pw + 2 < W): then the lanes that
  // read past a row are outputs past OW, dropped, and the row's last vectors need no copy.
  const bool past_ok = 2 * a.OW - a.pw <= a.W - 1;
  int64_t oh = 0;
  for (; oh + R <= a.OH; oh += R) dw3x3s2_block<R>(d, a, xp, tp, bias, y, res, yroom, past_ok, oh);
  switch (a.OH - oh) {
    case 3: dw3x3s2_block<3>(d, a, xp, tp, bias, y, res, yroom, past_ok, oh); break;
    case 2: dw3x3s2_block<2>(d, a, xp, tp, bias, y, res, yroom, past_ok, oh); break;
    case 1: dw3x3s2_block<1>(d, a, xp, tp, bias, y, res, yroom, past_ok, oh); break;
    default: break;
  }
}
