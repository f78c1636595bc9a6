// UTF-8 decoding and Unicode property tables (see unicode_text.h); the tables are parsed once, on
// first use, into a flag byte per code point and hash maps for the two mappings.
#include "data/unicode_text.h"

#include <array>
#include <cstdlib>
#include <mutex>
#include <unordered_map>

namespace finch::data::unicode {
namespace {

const char kPunct[] =
#include "data/unicode_tables/bert_punct.inc"
    ;
const char kControl[] =
#include "data/unicode_tables/bert_control.inc"
    ;
const char kSpace[] =
#include "data/unicode_tables/bert_space.inc"
    ;
const char kPySpace[] =
#include "data/unicode_tables/py_space.inc"
    ;
const char kPyAlnum[] =
#include "data/unicode_tables/py_alnum.inc"
    ;
const char kLower[] =
#include "data/unicode_tables/lower.inc"
    ;
const char kStripNfd[] =
#include "data/unicode_tables/strip_nfd.inc"
    ;

constexpr uint32_t kMaxCp = 0x110000;
enum Flag : uint8_t { kFPunct = 1, kFControl = 2, kFSpace = 4, kFPySpace = 8, kFPyAlnum = 16 };

struct Tables {
  std::vector<uint8_t> flags = std::vector<uint8_t>(kMaxCp, 0);
  std::unordered_map<char32_t, std::u32string> lower, strip;
};

uint32_t parse_hex(const char*& p) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(p, &end, 16);
  p = end;
  return uint32_t(v);
}

void set_ranges(Tables& t, const char* p, uint8_t flag) {
  while (*p) {
    if (*p == ' ') { ++p; continue; }
    const uint32_t lo = parse_hex(p);
    uint32_t hi = lo;
    if (*p == '-') ++p, hi = parse_hex(p);
    for (uint32_t c = lo; c <= hi && c < kMaxCp; ++c) t.flags[c] |= flag;
  }
}

void read_map(std::unordered_map<char32_t, std::u32string>& m, const char* p) {
  while (*p) {
    if (*p == ' ') { ++p; continue; }
    const char32_t cp = parse_hex(p);
    std::u32string out;
    ++p;  // ':'
    while (*p && *p != ' ') {
      if (*p == '.') ++p;
      out.push_back(parse_hex(p));
    }
    m.emplace(cp, std::move(out));
  }
}

const Tables& tables() {
  static const Tables* t = [] {
    auto* x = new Tables;
    set_ranges(*x, kPunct, kFPunct);
    set_ranges(*x, kControl, kFControl);
    set_ranges(*x, kSpace, kFSpace);
    set_ranges(*x, kPySpace, kFPySpace);
    set_ranges(*x, kPyAlnum, kFPyAlnum);
    read_map(x->lower, kLower);
    read_map(x->strip, kStripNfd);
    return x;
  }();
  return *t;
}

inline bool flag(char32_t c, uint8_t f) { return c < kMaxCp && (tables().flags[c] & f) != 0; }

}  // namespace

std::u32string decode_utf8(std::string_view s, std::vector<uint32_t>* byte_offsets) {
  std::u32string out;
  out.reserve(s.size());
  if (byte_offsets) byte_offsets->clear(), byte_offsets->reserve(s.size() + 1);
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (byte_offsets) byte_offsets->push_back(uint32_t(i));
    const unsigned char c = b[i];
    if (c < 0x80) { out.push_back(c); ++i; continue; }
    int len = 0;
    char32_t cp = 0, min = 0;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    bool ok = len > 0 && i + size_t(len) <= n;
    for (int k = 1; ok && k < len; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) ok = false;
      else cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    if (ok && (cp < min || cp >= kMaxCp || (cp >= 0xD800 && cp <= 0xDFFF))) ok = false;
    if (!ok) { out.push_back(0xFFFD); ++i; continue; }
    out.push_back(cp);
    i += size_t(len);
  }
  if (byte_offsets) byte_offsets->push_back(uint32_t(n));
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

bool is_bert_whitespace(char32_t c) {
  if (c < 0x80) return c == ' ' || c == '\t' || c == '\n' || c == '\r';
  return flag(c, kFSpace);
}
bool is_bert_control(char32_t c) { return flag(c, kFControl); }
bool is_bert_punctuation(char32_t c) { return flag(c, kFPunct); }
bool is_py_space(char32_t c) { return flag(c, kFPySpace); }
bool is_py_alnum(char32_t c) { return flag(c, kFPyAlnum); }

bool is_cjk(char32_t c) {
  // The blocks of transformers' BasicTokenizer._is_chinese_char (CJK Unified Ideographs and its
  // extensions A-E, compatibility ideographs); Hangul and kana are not in them.
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

void append_lower(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c >= 'A' && c <= 'Z' ? c + 32 : c);
    return;
  }
  const auto& m = tables().lower;
  const auto it = m.find(c);
  if (it == m.end()) out.push_back(c);
  else out += it->second;
}

void append_strip_accents(char32_t c, std::u32string& out) {
  if (c < 0x80) {
    out.push_back(c);
    return;
  }
  if (c >= 0xAC00 && c <= 0xD7A3) {  // Hangul syllable: the algorithmic NFD into conjoining jamo
    const char32_t s = c - 0xAC00;
    out.push_back(0x1100 + s / (21 * 28));
    out.push_back(0x1161 + (s % (21 * 28)) / 28);
    if (s % 28) out.push_back(0x11A7 + s % 28);
    return;
  }
  const auto& m = tables().strip;
  const auto it = m.find(c);
  if (it == m.end()) out.push_back(c);
  else out += it->second;
}

std::string lower_utf8(std::string_view s) {
  std::u32string low;
  for (char32_t c : decode_utf8(s)) append_lower(c, low);
  return encode_utf8(low);
}

}  // namespace finch::data::unicode
