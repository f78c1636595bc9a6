// BERT WordPiece tokenizer with code point offsets (see wordpiece.h).
#include "data/wordpiece.h"

#include <fstream>
#include <stdexcept>

#include "data/unicode_text.h"
#include "framework/error.h"

namespace finch::data {

using namespace unicode;

WordPieceTokenizer WordPieceTokenizer::from_file(const std::string& vocab_path,
                                                 WordPieceOptions opt) {
  std::ifstream in(vocab_path, std::ios::binary);
  if (!in) throw Error(vocab_path + ": cannot open the WordPiece vocab file");
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    tokens.push_back(line);
  }
  if (in.bad()) throw Error(vocab_path + ": read error in the WordPiece vocab file");
  return from_tokens(std::move(tokens), opt, vocab_path);
}

WordPieceTokenizer WordPieceTokenizer::from_tokens(std::vector<std::string> tokens,
                                                   WordPieceOptions opt,
                                                   const std::string& source) {
  if (tokens.empty())
    throw Error(source + ": the WordPiece vocab is empty, expected one token a line");
  if (tokens.size() > size_t(INT32_MAX))
    throw Error(source + ": the WordPiece vocab has more than 2^31 - 1 tokens");
  if (opt.max_chars_per_word < 1)
    throw Error(source + ": max_chars_per_word must be at least 1, got " +
                             std::to_string(opt.max_chars_per_word));
  if (opt.strip_accents < -1 || opt.strip_accents > 1)
    throw Error(source + ": strip_accents must be -1, 0 or 1, got " +
                             std::to_string(opt.strip_accents));
  WordPieceTokenizer t;
  t.opt_ = opt;
  t.tokens_ = std::move(tokens);
  for (size_t i = 0; i < t.tokens_.size(); ++i) t.index_[t.tokens_[i]] = int32_t(i);
  std::string missing;
  auto special = [&](const char* name, int32_t& slot) {
    slot = t.id(name);
    if (slot < 0) missing += std::string(missing.empty() ? "" : " ") + name;
  };
  special("[CLS]", t.cls_);
  special("[SEP]", t.sep_);
  special("[PAD]", t.pad_);
  special("[UNK]", t.unk_);
  special("[MASK]", t.mask_);
  if (!missing.empty())
    throw Error(source + ": the WordPiece vocab lacks the special token(s) " +
                             missing + " (expected [CLS] [SEP] [PAD] [UNK] [MASK], one a line)");
  return t;
}

const std::string& WordPieceTokenizer::token(int32_t id) const {
  if (id < 0 || size_t(id) >= tokens_.size())
    throw std::out_of_range("WordPiece id " + std::to_string(id) + " is outside the vocab of " +
                            std::to_string(tokens_.size()) + " tokens");
  return tokens_[size_t(id)];
}

int32_t WordPieceTokenizer::id(std::string_view token) const {
  const auto it = index_.find(token);
  return it == index_.end() ? -1 : it->second;
}

std::vector<WordPieceTokenizer::Word> WordPieceTokenizer::words(std::string_view text) const {
  const std::u32string cps = decode_utf8(text);
  const bool lower = opt_.lower_case;
  const bool strip = opt_.strip_accents == -1 ? lower : opt_.strip_accents == 1;
  std::vector<Word> out;
  Word cur;
  auto flush = [&] {
    if (!cur.cps.empty()) out.push_back(std::move(cur)), cur = Word{};
  };
  std::u32string low, norm;
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    if (c < 0x80) {  // ASCII fast path: the same rules without table look-ups
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') { flush(); continue; }
      if (c == 0 || c < 0x20 || c == 0x7F) continue;  // control characters
      const bool punct = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
                         (c >= 123 && c <= 126);
      if (punct) {
        flush();
        cur.cps.push_back(c), cur.src.push_back(int64_t(i));
        flush();
        continue;
      }
      cur.cps.push_back(lower && c >= 'A' && c <= 'Z' ? c + 32 : c);
      cur.src.push_back(int64_t(i));
      continue;
    }
    if (c == 0xFFFD || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) { flush(); continue; }
    if (opt_.split_cjk && is_cjk(c)) {
      flush();
      cur.cps.push_back(c), cur.src.push_back(int64_t(i));
      flush();
      continue;
    }
    low.clear();
    if (lower) append_lower(c, low);
    else low.push_back(c);
    norm.clear();
    if (strip) {
      for (char32_t x : low) append_strip_accents(x, norm);
    } else {
      norm = low;
    }
    for (char32_t x : norm) {
      if (is_bert_punctuation(x)) {
        flush();
        cur.cps.push_back(x), cur.src.push_back(int64_t(i));
        flush();
      } else {
        cur.cps.push_back(x), cur.src.push_back(int64_t(i));
      }
    }
  }
  flush();
  return out;
}

void WordPieceTokenizer::wordpiece(const Word& w, std::vector<WordPieceToken>& out) const {
  const int64_t n = int64_t(w.cps.size());
  const int64_t word_begin = w.src.front(), word_end = w.src.back() + 1;
  if (n > opt_.max_chars_per_word) {
    out.push_back({unk_, word_begin, word_end});
    return;
  }
  // Byte offset of each code point in the word's UTF-8, so candidate pieces are substrings.
  std::string utf8;
  std::vector<size_t> at(size_t(n) + 1);
  for (int64_t k = 0; k < n; ++k) at[size_t(k)] = utf8.size(), append_utf8(utf8, w.cps[size_t(k)]);
  at[size_t(n)] = utf8.size();
  const size_t mark = out.size();
  std::string piece = "##";  // "##" + the candidate for continuation pieces
  int64_t start = 0;
  while (start < n) {
    int64_t end = n;
    int32_t found = -1;
    while (start < end) {
      const std::string_view sub(utf8.data() + at[size_t(start)], at[size_t(end)] - at[size_t(start)]);
      if (start == 0) {
        found = id(sub);
      } else {
        piece.resize(2);
        piece.append(sub.data(), sub.size());
        found = id(piece);
      }
      if (found >= 0) break;
      --end;
    }
    if (found < 0) {
      out.resize(mark);
      out.push_back({unk_, word_begin, word_end});
      return;
    }
    out.push_back({found, w.src[size_t(start)], w.src[size_t(end - 1)] + 1});
    start = end;
  }
}

std::vector<WordPieceToken> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<WordPieceToken> out;
  for (const Word& w : words(text)) wordpiece(w, out);
  return out;
}

std::vector<int32_t> WordPieceTokenizer::encode_ids(std::string_view text) const {
  std::vector<int32_t> ids;
  for (const WordPieceToken& t : encode(text)) ids.push_back(t.id);
  return ids;
}

std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> WordPieceTokenizer::basic_words(
    std::string_view text) const {
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> out;
  for (const Word& w : words(text))
    out.push_back({encode_utf8(w.cps), {w.src.front(), w.src.back() + 1}});
  return out;
}

}  // namespace finch::data
