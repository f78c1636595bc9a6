// SQuAD features for a BERT question-answering model, as transformers' run_qa.py
// prepare_train_features (the offset-mapping version) makes them with a fast tokenizer:
// [CLS] question [SEP] context window [SEP] [PAD]…, windows of the context overlapping by
// doc_stride tokens, the answer's character span mapped to token start/end through the offsets.
//
// Two deliberate differences from that script: the question is cut to max_query_length tokens
// (as the older squad_convert_examples_to_features does; run_qa.py would fail instead), and the
// walk that finds the start/end tokens stays inside the context (run_qa.py can step onto [SEP]
// and the padding when the answer starts in the window's last token).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "data/squad.h"
#include "data/wordpiece.h"

namespace finch::data {

struct SquadFeatureOptions {
  int64_t max_seq_length = 384;
  int64_t doc_stride = 128;  // tokens shared by consecutive windows (the fast tokenizer's stride)
  int64_t max_query_length = 64;
};

struct SquadFeature {
  int64_t example_index = 0;                          // which example it was made from
  std::vector<int32_t> input_ids, token_type_ids, attention_mask;  // max_seq_length each
  // Per token: the code point span in the context for context tokens, (-1, -1) for the others.
  std::vector<std::pair<int64_t, int64_t>> offsets;
  int64_t context_begin = 0, context_end = 0;  // the context tokens are [context_begin, context_end)
  int64_t start_position = 0, end_position = 0;  // 0 ([CLS]) when the answer is not in the window
};

// Throws one sentence when the options are out of range (each ≥ 1 but the stride ≥ 0, and
// max_seq_length - max_query_length - 3 > doc_stride so a window always advances).
void validate(const SquadFeatureOptions& opt);

// The features of one example (training positions from its first answer; none: [CLS]).
std::vector<SquadFeature> make_squad_features(const SquadExample& ex, int64_t example_index,
                                              const WordPieceTokenizer& tok,
                                              const SquadFeatureOptions& opt);

}  // namespace finch::data
