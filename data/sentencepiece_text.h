// A sentencepiece model (e.g. /work/shared/data/text/botchan-unigram.model) as a tokenizer for
// the text datasets, through libsentencepiece.
//
// Ids: finch id = the model's piece id + 1, so that 0 stays the padding id of every finch token
// sequence (the DataLoader pads with 0). The usual model has <unk> = 0, which becomes 1 — the
// same OOV id as data::WordVocab. HTML line breaks (<br />) become spaces before encoding;
// everything else (normalization, case) is the model's own.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/series_dataset.h"
#include "data/text_folder.h"

namespace finch::data {

class SentencePieceTokenizer {
 public:
  // Loads the model; throws naming the file when it is missing or not a sentencepiece model, or
  // when finch was built without libsentencepiece.
  explicit SentencePieceTokenizer(const std::string& model_path);
  ~SentencePieceTokenizer();
  SentencePieceTokenizer(const SentencePieceTokenizer&) = delete;
  SentencePieceTokenizer& operator=(const SentencePieceTokenizer&) = delete;

  // True when finch was built with libsentencepiece (tests skip otherwise).
  static bool available();
  int64_t size() const;  // ids 0 … size()-1 (the model's pieces + the padding id)
  // Ids of `text`, cut to max_len (0: no limit) at `truncate`'s end; at least one id (OOV for
  // an empty text). Safe to call from several threads at once.
  std::vector<int64_t> encode(std::string_view text, int64_t max_len = 0, Side truncate = Side::pre) const;
  std::vector<std::string> pieces(std::string_view text) const;  // the model's pieces, for display
  std::string piece(int64_t id) const;  // "<pad>" for 0

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

// The folder's documents encoded with the model (in parallel, deterministic order).
std::shared_ptr<TokenDataset> make_token_dataset(const TextFolder& folder, const SentencePieceTokenizer& sp,
                                                 int64_t max_len, Side truncate = Side::pre);

}  // namespace finch::data
