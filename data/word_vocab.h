// A word tokenizer and a word vocabulary for text classification (IMDB reviews), with keras-like
// truncation and padding of the id sequences.
//
// Tokenizer (tokenize_words): ASCII letters are lower-cased; HTML line breaks (<br />, <br/>,
// <br>, any case) become spaces; a word is a maximal run of word characters — ASCII letters,
// digits, any byte >= 0x80 (so UTF-8 letters such as "é" stay inside words) and the apostrophe
// when it has a word character on both sides ("don't" is one word, "'quoted'" gives "quoted");
// everything else separates words. No stemming, no stop words.
//
// Ids: 0 = padding, 1 = out of vocabulary (OOV), 2 … = the words, most frequent first (ties
// broken by the word, bytewise ascending, so the ids are deterministic).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace finch::data {

std::vector<std::string> tokenize_words(std::string_view text);

// Which end loses tokens (truncation) or gains padding — keras pad_sequences' "pre"/"post".
enum class Side { pre, post };
const char* side_name(Side s);
Side side_from_name(const std::string& name);  // "pre" or "post"; throws otherwise

class WordVocab {
 public:
  static constexpr int64_t kPad = 0, kOov = 1, kFirstWord = 2;

  // The max_words most frequent words of `documents` (each already tokenized): build it from the
  // training split only. max_words counts the words alone (ids 2 … max_words + 1); 0 keeps every
  // word. min_count drops words seen fewer times.
  static WordVocab build(const std::vector<std::vector<std::string>>& documents, int64_t max_words,
                         int64_t min_count = 1);
  // Reads what save() wrote; throws naming the file and line of anything malformed.
  static WordVocab load(const std::string& path);
  // A text file: "finch-word-vocab 1 <n>" then one "word<TAB>count" line per id from 2 upwards;
  // written atomically.
  void save(const std::string& path) const;

  int64_t size() const { return int64_t(words_.size()) + kFirstWord; }  // ids 0 … size()-1
  int64_t id(const std::string& word) const;  // kOov when absent
  const std::string& word(int64_t id) const;  // "<pad>", "<oov>" or the word
  int64_t count(int64_t id) const;            // the training count (0 for pad/OOV)

  // Ids of the tokens, cut to at most max_len (0: no limit) by dropping tokens at `truncate`'s
  // end. An empty document gives one OOV id, so every sequence has at least one step.
  std::vector<int64_t> encode(const std::vector<std::string>& tokens, int64_t max_len = 0,
                              Side truncate = Side::pre) const;

 private:
  std::vector<std::string> words_;  // words_[i] has id i + 2
  std::vector<int64_t> counts_;
  std::unordered_map<std::string, int64_t> index_;
};

// Pads (with 0) or truncates one sequence to exactly `length` ids, keras pad_sequences style (its
// defaults are padding="pre", truncating="pre"). The DataLoader pads variable-length batches at
// the end by itself; this is for models that want one fixed length.
std::vector<int64_t> pad_sequence(const std::vector<int64_t>& ids, int64_t length, Side padding = Side::pre,
                                  Side truncate = Side::pre);

}  // namespace finch::data
