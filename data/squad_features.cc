// SQuAD features through WordPiece offsets (see squad_features.h).
#include "data/squad_features.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "data/unicode_text.h"
#include "framework/error.h"

namespace finch::data {

void validate(const SquadFeatureOptions& o) {
  auto bad = [](const std::string& what, int64_t v) {
    throw Error("SQuAD features: " + what + ", got " + std::to_string(v));
  };
  if (o.max_seq_length < 4 || o.max_seq_length > 1'000'000)
    bad("max_seq_length should be 4 … 1000000", o.max_seq_length);
  if (o.max_query_length < 1) bad("max_query_length should be at least 1", o.max_query_length);
  if (o.doc_stride < 0) bad("doc_stride should be at least 0", o.doc_stride);
  if (o.max_seq_length - o.max_query_length - 3 <= o.doc_stride)
    bad("max_seq_length - max_query_length - 3 should exceed doc_stride (" +
            std::to_string(o.doc_stride) + ") so the windows advance",
        o.max_seq_length - o.max_query_length - 3);
}

std::vector<SquadFeature> make_squad_features(const SquadExample& ex, int64_t example_index,
                                              const WordPieceTokenizer& tok,
                                              const SquadFeatureOptions& opt) {
  validate(opt);
  std::vector<WordPieceToken> q = tok.encode(ex.question);
  if (int64_t(q.size()) > opt.max_query_length) q.resize(size_t(opt.max_query_length));
  const std::vector<WordPieceToken> ctx = tok.encode(ex.context);
  const int64_t n = int64_t(ctx.size());
  const int64_t budget = opt.max_seq_length - int64_t(q.size()) - 3;  // > doc_stride (validate)

  int64_t start_char = -1, end_char = -1;
  if (!ex.answers.empty()) {
    start_char = ex.answers[0].start;
    end_char = start_char + int64_t(unicode::decode_utf8(ex.answers[0].text).size());
  }

  std::vector<SquadFeature> out;
  for (int64_t begin = 0;; begin += budget - opt.doc_stride) {
    const int64_t stop = std::min(begin + budget, n);
    SquadFeature f;
    f.example_index = example_index;
    const size_t L = size_t(opt.max_seq_length);
    f.input_ids.assign(L, tok.pad_id());
    f.token_type_ids.assign(L, 0);
    f.attention_mask.assign(L, 0);
    f.offsets.assign(L, {-1, -1});
    size_t k = 0;
    auto put = [&](int32_t id, int32_t type) {
      f.input_ids[k] = id, f.token_type_ids[k] = type, f.attention_mask[k] = 1;
      ++k;
    };
    put(tok.cls_id(), 0);
    for (const auto& t : q) put(t.id, 0);
    put(tok.sep_id(), 0);
    f.context_begin = int64_t(k);
    for (int64_t i = begin; i < stop; ++i) {
      f.offsets[k] = {ctx[size_t(i)].begin, ctx[size_t(i)].end};
      put(ctx[size_t(i)].id, 1);
    }
    f.context_end = int64_t(k);
    put(tok.sep_id(), 1);

    if (start_char >= 0 && f.context_end > f.context_begin) {
      int64_t ts = f.context_begin, te = f.context_end - 1;
      if (f.offsets[size_t(ts)].first <= start_char && f.offsets[size_t(te)].second >= end_char) {
        while (ts < f.context_end && f.offsets[size_t(ts)].first <= start_char) ++ts;
        f.start_position = ts - 1;
        while (te >= f.context_begin && f.offsets[size_t(te)].second >= end_char) --te;
        f.end_position = te + 1;
      }
    }
    out.push_back(std::move(f));
    if (stop >= n) break;
  }
  return out;
}

}  // namespace finch::data
