// Masked-language-model examples for BERT pretraining: documents of WordPiece ids packed into
// fixed-length sequences, and the 15 % / 80-10-10 masking of Devlin et al. 2019 (per token, or
// per whole word: a word's "##" pieces are selected together), drawn from a caller's generator
// so a run is reproducible sample by sample.
//
// Shapes: S = seq_len; every packed sequence is [CLS] t1 … t(S-2) [SEP], the last one padded.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/random.h"

namespace finch::data {

class WordPieceTokenizer;

// What masking needs to know of the vocabulary: its size, the special ids, and which tokens
// continue a word ("##…", for whole-word masking).
struct MlmVocab {
  int64_t size = 0;
  int32_t cls = -1, sep = -1, pad = -1, unk = -1, mask = -1;
  std::vector<bool> continuation;  // [size]: token starts with "##"
  static MlmVocab from(const WordPieceTokenizer& tok);
};

struct MlmOptions {
  double select_prob = 0.15;  // chance that a token (or a whole word) is predicted
  double mask_prob = 0.8;     // a selected token becomes [MASK] …
  double random_prob = 0.1;   // … or a random non-special token; else it stays as it was
  bool whole_word = false;
  // Throws one sentence when a probability is outside [0, 1] or mask + random > 1.
  void validate() const;
};

struct MlmExample {
  std::vector<int32_t> input_ids;  // [S] after masking
  std::vector<int64_t> labels;     // [S]: the original id where selected, -100 elsewhere
};

// Masks one packed sequence. [CLS], [SEP] and [PAD] are never selected ([UNK] may be, as in
// transformers). Per token: each other token is selected with select_prob. Whole word: a word is
// a token that is not a continuation plus the "##" tokens after it (a leading "##" run, cut off
// by packing, is a word of its own); each word is selected with select_prob, and then all of its
// tokens are. Each selected token then independently becomes [MASK] (mask_prob), a uniformly
// drawn id that is none of the five special tokens (random_prob), or stays. Ids outside the
// vocabulary are a finch::Error.
MlmExample mask_tokens(const std::vector<int32_t>& ids, const MlmVocab& v, const MlmOptions& o, Generator& gen);

// The word groups of `ids` as whole-word masking sees them: group[i] is the index of the word
// that token i belongs to, -1 for [CLS]/[SEP]/[PAD] (never selected).
std::vector<int64_t> word_groups(const std::vector<int32_t>& ids, const MlmVocab& v);

// Packs documents (token ids without specials) into sequences of seq_len: the documents are
// concatenated, with [SEP] between consecutive ones, and cut into runs of seq_len - 2 tokens,
// each wrapped as [CLS] run [SEP]; the last run is padded with [PAD]. Empty documents are
// skipped. seq_len must be at least 3 (one sentence otherwise).
std::vector<std::vector<int32_t>> pack_sequences(const std::vector<std::vector<int32_t>>& docs, int64_t seq_len,
                                                 const MlmVocab& v);

}  // namespace finch::data
