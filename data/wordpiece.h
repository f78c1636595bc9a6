// BERT's WordPiece tokenizer (transformers' BertTokenizer = BasicTokenizer + WordpieceTokenizer,
// and the fast tokenizers' BertNormalizer + BertPreTokenizer + WordPiece) over a vocab.txt, with
// the character offsets of every token.
//
// Basic tokenizer, in order: NUL, U+FFFD and control characters are removed, white space becomes
// a separator; CJK ideographs become words of their own; each remaining code point is lower-cased
// (Python's str.lower) and its accents stripped (NFD without category Mn) when the options say
// so; white space splits words, and every punctuation character is a word of its own. WordPiece:
// a word longer than max_chars_per_word code points is [UNK]; otherwise greedy longest match from
// the left, continuation pieces prefixed with "##"; a word with no match at some point is [UNK].
//
// Offsets are in code points of the original text (Python str indices, as SQuAD's answer_start
// and the fast tokenizer's offset_mapping): token t covers text[begin, end). A code point that
// normalizes to several is covered by every token made from them. Invalid UTF-8 bytes decode to
// U+FFFD (removed). Special tokens written inside the text ("[MASK]") are not kept whole.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace finch::data {

struct WordPieceOptions {
  bool lower_case = true;     // bert-base-uncased: true; cased models: false
  int strip_accents = -1;     // -1: follow lower_case (transformers' None), 0: no, 1: yes
  bool split_cjk = true;      // tokenize_chinese_chars
  int64_t max_chars_per_word = 100;
};

struct WordPieceToken {
  int32_t id = 0;
  int64_t begin = 0, end = 0;  // code points of the original text, [begin, end)
};

class WordPieceTokenizer {
 public:
  // vocab.txt: one token per line, the id is the line number (0-based); a trailing "\r" is
  // dropped; a repeated token keeps its last line (as transformers' load_vocab). Throws one
  // sentence naming the file when it cannot be read, is empty, or lacks one of [CLS] [SEP]
  // [PAD] [UNK] [MASK].
  static WordPieceTokenizer from_file(const std::string& vocab_path, WordPieceOptions opt = {});
  // The same from the tokens themselves; `source` names them in errors.
  static WordPieceTokenizer from_tokens(std::vector<std::string> tokens, WordPieceOptions opt = {},
                                        const std::string& source = "vocabulary");

  // The tokens of `text` (UTF-8), without [CLS]/[SEP].
  std::vector<WordPieceToken> encode(std::string_view text) const;
  std::vector<int32_t> encode_ids(std::string_view text) const;
  // The basic tokenizer alone: normalized words (UTF-8) and their offsets.
  std::vector<std::pair<std::string, std::pair<int64_t, int64_t>>> basic_words(
      std::string_view text) const;

  int64_t size() const { return int64_t(tokens_.size()); }
  const std::string& token(int32_t id) const;  // throws on an id outside [0, size())
  int32_t id(std::string_view token) const;    // -1 when absent
  int32_t cls_id() const { return cls_; }
  int32_t sep_id() const { return sep_; }
  int32_t pad_id() const { return pad_; }
  int32_t unk_id() const { return unk_; }
  int32_t mask_id() const { return mask_; }
  const WordPieceOptions& options() const { return opt_; }

 private:
  struct Word {
    std::u32string cps;
    std::vector<int64_t> src;  // original code point index of each normalized code point
  };
  std::vector<Word> words(std::string_view text) const;
  void wordpiece(const Word& w, std::vector<WordPieceToken>& out) const;

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t, Hash, std::equal_to<>> index_;
  WordPieceOptions opt_;
  int32_t cls_ = -1, sep_ = -1, pad_ = -1, unk_ = -1, mask_ = -1;
};

}  // namespace finch::data
