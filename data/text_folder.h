// Text-classification folders, IMDB style: root/<class>/*.txt (aclImdb/train/pos/0_9.txt), read
// in parallel in a fixed order, and turned into token-id datasets with a word vocabulary.
//
// Shapes: N documents; a document's ids are I64 [T_i] with 1 <= T_i <= max_len.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/series_dataset.h"
#include "data/word_vocab.h"

namespace finch::data {

struct TextFolder {
  std::vector<std::string> texts;   // file contents, in `files` order
  std::vector<int64_t> labels;      // class index per document
  std::vector<std::string> classes; // class k's folder name
  std::vector<std::string> files;   // sorted by class, then by path
  int64_t size() const { return int64_t(texts.size()); }
};

// Reads root/<class>/*.txt. `classes` names the class folders in label order; empty: every
// subfolder that holds a .txt file, sorted by name (aclImdb: neg = 0, pos = 1). Files are read
// in parallel on the finch pool; the order depends only on the names.
TextFolder read_text_folder(const std::string& root, const std::vector<std::string>& classes = {});

// tokenize_words over every text, in parallel, results in input order.
std::vector<std::vector<std::string>> tokenize_all(const std::vector<std::string>& texts);

// The documents as token ids of `vocab` (truncated to max_len at `truncate`'s end, 0: no limit).
std::shared_ptr<TokenDataset> make_token_dataset(const TextFolder& folder,
                                                 const std::vector<std::vector<std::string>>& tokens,
                                                 const WordVocab& vocab, int64_t max_len, Side truncate = Side::pre);

}  // namespace finch::data
