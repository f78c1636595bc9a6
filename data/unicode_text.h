// UTF-8 decoding and the few Unicode properties BERT's tokenizer and SQuAD's evaluation need:
// Python's str.lower per code point, NFD with the combining marks (category Mn) removed, BERT's
// white space / control / punctuation / CJK tests and Python's isspace / isalnum. The tables are
// generated from Python's unicodedata (Unicode 14.0.0) by tests/golden/make_unicode_tables.py into
// data/unicode_tables/*.inc; no ICU needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace finch::data::unicode {

// The code points of `s`. A byte that does not start a valid UTF-8 sequence (stray continuation
// byte, overlong form, surrogate, truncated sequence, > U+10FFFF) decodes to one U+FFFD, so every
// input decodes and offsets stay meaningful. byte_offsets, when given, receives the byte offset of
// each code point plus a final entry = s.size().
std::u32string decode_utf8(std::string_view s, std::vector<uint32_t>* byte_offsets = nullptr);
void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(std::u32string_view s);

bool is_bert_whitespace(char32_t c);   // space, \t, \n, \r, U+2028, U+2029, category Zs
bool is_bert_control(char32_t c);      // category C* except \t, \n, \r
bool is_bert_punctuation(char32_t c);  // ASCII 33-47, 58-64, 91-96, 123-126, category P*
bool is_cjk(char32_t c);               // the CJK Unified Ideograph blocks BERT spaces out
bool is_py_space(char32_t c);          // Python str.isspace
bool is_py_alnum(char32_t c);          // Python str.isalnum

// Appends Python's str.lower of the single code point c (one to three code points; the Greek
// final-sigma rule, which depends on the neighbours, is not applied: Σ always gives σ).
void append_lower(char32_t c, std::u32string& out);
// Appends NFD(c) without its category-Mn code points (nothing for a lone combining mark).
void append_strip_accents(char32_t c, std::u32string& out);

// Python's str.lower over a whole UTF-8 string (code point by code point, as append_lower).
std::string lower_utf8(std::string_view s);

}  // namespace finch::data::unicode
