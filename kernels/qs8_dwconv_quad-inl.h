// The AVX-512 VNNI path of the int8 depthwise convolution: four adjacent taps of a kernel row per
// vpdpbusd. Included by qs8_dwconv_hwy.cc inside its per-target namespace, after the helpers it
// uses (ChannelRequant); compiled for the AVX3_DL target only.
//
// Why: the int16 pair path of qs8_dwconv_hwy.cc needs 6 multiply-adds per 16 outputs of a 3×3
// plus an int16 copy of the plane. Here the plane stays bytes: a 32-bit lane read at byte b of a
// padded row holds the codes of columns b .. b+3, i.e. taps kw = 0..3 of the output at column b
// (stride 1), so one vpdpbusd with the broadcast weight quad (w[kh][0..2], 0) adds a whole
// kernel row: 3 per 16 outputs. Lanes are 4 bytes apart, so one load serves every 4th output
// (stride 1: J = 4 loads at byte offsets 0..3 cover 64 consecutive outputs; stride 2: every
// 2nd output, J = 2; stride 4: J = 1). The J results are requantized and byte-interleaved back
// into output order.
//
// Exactness (as the GEMM, qs8_gemm.h): codes are taken as u8 (i8 XOR 0x80, zero point + 128),
// padding holds the u8 zero point, and Σ x_u8·w + (bias − zx_u8·Σw) is Σ (x − zx)·w + bias
// modulo 2^32; vpdpbusd never saturates and int32 addition wraps, so the sum equals the
// reference's whenever that fits int32, which the operator has proved (may_overflow_). A padded
// tap adds zx_u8·w, cancelled by the same correction; a quad's fourth weight past KW is 0.
//
// Layout: padded rows r are split by r % sh into sh blocks (row stride 2 reads every other row,
// so an output row reads one block row per kernel row), each block Rb rows at a pitch of P bytes
// (P >= W + 2·pw, a multiple of sw). Output (oh, ow) is flat output i = oh·Wo + ow, Wo = P / sw,
// and its tap (kh, kw) is the byte sw·i + toff(kh) + kw: every tap is a constant offset from the
// output, so the plane runs as one flat loop; the Wo − OW outputs past each row are computed and
// dropped as the codes are stored.
#if HWY_TARGET == HWY_AVX3_DL

// The layout of one geometry (J = 4 / sw accumulators per step, P the padded row pitch in bytes,
// Wo = P / sw the output pitch: see above).
struct QuadPlan {
  int64_t BS = 0;     // bytes per row block (with read slack)
  int64_t n_acc = 0;  // flat outputs computed: OH·Wo rounded up to the step (16·J)
  std::vector<int64_t> toff;     // per weight quad (kh, g), in DwConvArgs::quad_w's order: byte offset from byte sw·i
  std::vector<int64_t> row_dst;  // per input row: byte offset of its column 0 in Xp, or −1
  // Per step of 16·J flat outputs: which of them are real outputs (ow < OW, oh < OH), and the
  // index in y of the first one. The step's codes are compressed to those (vpcompressb) and
  // stored straight into y: no flat buffer, no row-by-row copy.
  std::vector<uint64_t> keep;
  std::vector<int64_t> dst;
  // Row stride 1: the plane's rows are written 64 scratch bytes at a time from fill_begin, chunk
  // k placing the next popcount(fill_mask[k]) input codes at its set bits (vpexpandb) and the
  // padding code everywhere else, from input code fill_src[k] on. Empty for sh > 1 (the input
  // rows of one block are not contiguous there): quad_fill goes row by row.
  int64_t fill_begin = 0;
  std::vector<uint64_t> fill_mask;
  std::vector<int64_t> fill_src;
};

inline QuadPlan quad_plan(const DwConvArgs& a) {
  QuadPlan f;
  const int64_t J = 4 / a.sw, P = (a.W + 2 * a.pw + a.sw - 1) / a.sw * a.sw, Wo = P / a.sw;
  const int64_t step = 16 * J, G = (a.KW + 3) / 4;
  f.n_acc = (a.OH * Wo + step - 1) / step * step;
  // Rows the flat run reads: output rows up to ceil(n_acc / Wo), plus the kernel's reach. The
  // last load of a step ends at most 3 bytes past sw·n_acc, the quads at 4·G past the row.
  const int64_t Rb = (f.n_acc + Wo - 1) / Wo + (a.KH - 1) * a.dh / a.sh + 1;
  f.BS = Rb * P + 4 * G + 128;
  for (int64_t kh = 0; kh < a.KH; ++kh)
    for (int64_t g = 0; g < G; ++g) f.toff.push_back((kh * a.dh % a.sh) * f.BS + (kh * a.dh / a.sh) * P + 4 * g);
  int64_t done = 0, oh = 0, ow = 0;  // of flat output i0 + k, walked without divisions
  for (int64_t i0 = 0; i0 < f.n_acc; i0 += step) {
    uint64_t m = 0;
    for (int64_t k = 0; k < step; ++k) {
      if (oh < a.OH && ow < a.OW) m |= uint64_t(1) << k;
      if (++ow == Wo) ow = 0, ++oh;
    }
    f.keep.push_back(m);
    f.dst.push_back(done);
    done += __builtin_popcountll(m);
  }
  if (a.sh == 1) {
    // Bytes [ph·P, (ph + H)·P) hold the rows: column pw + iw of each is input code iw.
    f.fill_begin = a.ph * P;
    int64_t src = 0, col = 0;  // col: of byte fill_begin + 64·k + b within its row
    for (int64_t k = 0; k * 64 < a.H * P; ++k) {
      uint64_t m = 0;
      for (int64_t b = 0; b < 64; ++b) {
        if (k * 64 + b < a.H * P && col >= a.pw && col < a.pw + a.W) m |= uint64_t(1) << b;
        if (++col == P) col = 0;
      }
      f.fill_mask.push_back(m);
      f.fill_src.push_back(src);
      src += __builtin_popcountll(m);
    }
  }
  for (int64_t ih = 0; ih < a.H; ++ih) {
    const int64_t r = ih + a.ph;
    f.row_dst.push_back(r / a.sh < Rb ? (r % a.sh) * f.BS + (r / a.sh) * P + a.pw : -1);
  }
  return f;
}

// The plane's rows into Xp as u8 codes (x XOR flip): by vpexpandb chunks for row stride 1, else
// row by row with masked loads and stores. Nothing past the input plane is read.
template <typename TX>
HWY_INLINE void quad_fill(const TX* x, const DwConvArgs& a, const QuadPlan& f, uint8_t flip, uint8_t pad,
                          uint8_t* xp) {
  const __m512i vflip = _mm512_set1_epi8(char(flip));
  if (!f.fill_mask.empty()) {
    // The last chunk may write up to 63 bytes past the rows: padding rows or slack (BS has 128
    // bytes of it), which hold the padding code anyway.
    const __m512i vpad = _mm512_set1_epi8(char(pad));
    for (size_t k = 0; k < f.fill_mask.size(); ++k) {
      const uint64_t m = f.fill_mask[k];
      const int n = __builtin_popcountll(m);
      const __mmask64 take = n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
      const __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(take, x + f.fill_src[k]), vflip);
      _mm512_storeu_si512(xp + f.fill_begin + 64 * int64_t(k), _mm512_mask_expand_epi8(vpad, m, v));
    }
    return;
  }
  for (int64_t ih = 0; ih < a.H; ++ih) {
    const int64_t o = f.row_dst[size_t(ih)];
    if (o < 0) continue;
    const TX* src = x + ih * a.W;
    for (int64_t j = 0; j < a.W; j += 64) {
      const int64_t n = std::min<int64_t>(64, a.W - j);
      const __mmask64 m = n == 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
      const __m512i v = _mm512_maskz_loadu_epi8(m, src + j);
      _mm512_mask_storeu_epi8(xp + o + j, m, _mm512_xor_si512(v, vflip));
    }
  }
}

HWY_INLINE VI QuadDot(VI acc, const uint8_t* x, VI w) {
  __m512i r = acc.raw;
  asm("vpdpbusd %2, %1, %0" : "+v"(r) : "v"(_mm512_loadu_si512(x)), "v"(w.raw));
  return VI{r};
}

// The codes of one plane into y [OH, OW]. J accumulators per step, Q quads (0: run time), HIGH
// as in conv_plane.
template <int J, int Q, bool HIGH, typename TY>
void quad_plane(const DwConvArgs& a, const QuadPlan& f, const uint8_t* xp, const int32_t* wq, int32_t offset,
                int64_t c, TY* y) {
  const DI d;
  constexpr int64_t kSw = 4 / J, kStep = 16 * J;
  const int64_t quads = Q ? Q : int64_t(f.toff.size());
  const int64_t* toff = f.toff.data();
  const VI vb = hn::Set(d, offset);
  const ChannelRequant rq(a, c);
  const hn::RepartitionToWide<DI> d64;
  const VI vm = hn::Set(d, rq.q.multiplier), vlo = hn::Set(d, rq.qmin), vhi = hn::Set(d, rq.qmax);
  const auto vround = hn::Set(d64, HIGH ? RequantHighRound(rq.q) : 0);
  const int shift = rq.q.n - 32;
  const VI ff = hn::Set(d, 0xFF);
  for (int64_t i0 = 0, s = 0; i0 < f.n_acc; i0 += kStep, ++s) {
    const uint8_t* b = xp + kSw * i0;
    const uint64_t keep = f.keep[size_t(s)];
    const uint64_t put = keep == ~uint64_t(0) ? keep : (uint64_t(1) << __builtin_popcountll(keep)) - 1;
    TY* out = y + f.dst[size_t(s)];
    VI acc[J];
    for (int j = 0; j < J; ++j) acc[j] = vb;
    for (int64_t t = 0; t < quads; ++t) {
      const VI w = hn::Set(d, wq[t]);
      for (int j = 0; j < J; ++j) acc[j] = QuadDot(acc[j], b + toff[t] + kSw * j, w);
    }
    for (int j = 0; j < J; ++j)
      acc[j] = HIGH ? RequantizeHighV(d, acc[j], vm, vround, shift, vlo, vhi) : rq(d, acc[j]);
    // Lane l of accumulator j is output i0 + J·l + j: its byte goes to position j of word l.
    if constexpr (J == 4) {
      const VI lo = hn::Or(hn::And(acc[0], ff), hn::ShiftLeft<8>(hn::And(acc[1], ff)));
      const VI hi = hn::Or(hn::ShiftLeft<16>(hn::And(acc[2], ff)), hn::ShiftLeft<24>(acc[3]));
      _mm512_mask_storeu_epi8(out, put, _mm512_maskz_compress_epi8(keep, hn::Or(lo, hi).raw));
    } else if constexpr (J == 2) {
      const VI w16 = hn::Or(hn::And(acc[0], ff), hn::ShiftLeft<8>(acc[1]));
      _mm256_mask_storeu_epi8(out, __mmask32(put),
                              _mm256_maskz_compress_epi8(__mmask32(keep), _mm512_cvtepi32_epi16(w16.raw)));
    } else {
      _mm_mask_storeu_epi8(out, __mmask16(put), _mm_maskz_compress_epi8(__mmask16(keep), _mm512_cvtepi32_epi8(acc[0].raw)));
    }
  }
}

template <int J, typename TX, typename TY>
void planes_quad(const DwConvArgs& a, const QuadPlan& f, int64_t p_begin, int64_t p_end) {
  const uint8_t flip = a.x_u8 ? 0 : 0x80;
  const int32_t zx_u8 = a.x_u8 ? a.zx : a.zx + 128;
  // Two scratch planes, the next plane filled while the current one's stores still drain: the
  // convolution's wide loads would otherwise wait on the fill's masked stores.
  const size_t plane = size_t(a.sh * f.BS);
  std::vector<uint8_t> xp(2 * plane, uint8_t(zx_u8));  // the padding: the u8 zero point
  const TX* x = static_cast<const TX*>(a.x);
  if (p_begin < p_end) quad_fill(x + p_begin * a.x_plane, a, f, flip, uint8_t(zx_u8), xp.data());
  const int64_t quads = int64_t(f.toff.size());
  for (int64_t p = p_begin; p < p_end; ++p) {
    const int64_t c = p % a.C;
    const uint8_t* cur = xp.data() + size_t((p - p_begin) % 2) * plane;
    if (p + 1 < p_end) quad_fill(x + (p + 1) * a.x_plane, a, f, flip, uint8_t(zx_u8), xp.data() + size_t((p + 1 - p_begin) % 2) * plane);
    const int32_t* wq = a.quad_w + c * quads;
    const int32_t offset = a.quad_off[c];
    const bool high = RequantHighApplies(RequantParams(a.mult[c], a.shift[c], a.z_out, a.qmin, a.qmax));
    TY* y = static_cast<TY*>(a.y) + p * a.y_plane;
    if (quads == 3 && high)
      quad_plane<J, 3, true>(a, f, cur, wq, offset, c, y);
    else if (high)
      quad_plane<J, 0, true>(a, f, cur, wq, offset, c, y);
    else
      quad_plane<J, 0, false>(a, f, cur, wq, offset, c, y);
  }
}

template <typename TX, typename TY>
void planes_quad(const DwConvArgs& a, int64_t p_begin, int64_t p_end) {
  // The plan depends only on the geometry, and a model has a handful of them: building it walks
  // every output and scratch byte (a few µs for a 56×56 plane), so each thread keeps the plans
  // it has built.
  const std::array<int64_t, 11> key{a.H, a.W, a.KH, a.KW, a.sh, a.sw, a.ph, a.pw, a.dh, a.OH, a.OW};
  thread_local std::map<std::array<int64_t, 11>, QuadPlan> plans;
  auto it = plans.find(key);
  if (it == plans.end()) it = plans.emplace(key, quad_plan(a)).first;
  const QuadPlan& f = it->second;
  if (a.sw == 1) return planes_quad<4, TX, TY>(a, f, p_begin, p_end);
  if (a.sw == 2) return planes_quad<2, TX, TY>(a, f, p_begin, p_end);
  planes_quad<1, TX, TY>(a, f, p_begin, p_end);
}

#endif  // HWY_TARGET == HWY_AVX3_DL
