// Masked-language-model packing and masking (data/mlm.h).
#include "data/mlm.h"

#include "data/wordpiece.h"
#include "framework/error.h"

namespace finch::data {

MlmVocab MlmVocab::from(const WordPieceTokenizer& tok) {
  MlmVocab v;
  v.size = tok.size();
  v.cls = tok.cls_id();
  v.sep = tok.sep_id();
  v.pad = tok.pad_id();
  v.unk = tok.unk_id();
  v.mask = tok.mask_id();
  v.continuation.resize(size_t(v.size));
  for (int64_t i = 0; i < v.size; ++i) v.continuation[size_t(i)] = tok.token(int32_t(i)).rfind("##", 0) == 0;
  return v;
}

void MlmOptions::validate() const {
  auto prob = [](const char* name, double p) {
    if (!(p >= 0 && p <= 1)) fail("masking: ", name, " should be a probability in [0, 1], found ", p);
  };
  prob("the selection probability", select_prob);
  prob("the [MASK] probability", mask_prob);
  prob("the random-token probability", random_prob);
  if (mask_prob + random_prob > 1)
    fail("masking: the [MASK] and random-token probabilities should add up to at most 1, found ",
         mask_prob + random_prob);
}

namespace {
bool never_selected(int32_t id, const MlmVocab& v) { return id == v.cls || id == v.sep || id == v.pad; }
bool special(int32_t id, const MlmVocab& v) { return never_selected(id, v) || id == v.unk || id == v.mask; }

void check_ids(const std::vector<int32_t>& ids, const MlmVocab& v) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= v.size)
      fail("masking: token ", i, " has id ", ids[i], ", outside the vocabulary of ", v.size, " tokens");
}
}  // namespace

std::vector<int64_t> word_groups(const std::vector<int32_t>& ids, const MlmVocab& v) {
  check_ids(ids, v);
  std::vector<int64_t> g(ids.size(), -1);
  int64_t word = -1;
  bool open = false;  // the previous token can be continued by a "##" piece
  for (size_t i = 0; i < ids.size(); ++i) {
    if (never_selected(ids[i], v)) {
      open = false;
      continue;
    }
    if (!(open && v.continuation[size_t(ids[i])])) ++word;
    g[i] = word;
    open = true;
  }
  return g;
}

MlmExample mask_tokens(const std::vector<int32_t>& ids, const MlmVocab& v, const MlmOptions& o, Generator& gen) {
  check_ids(ids, v);
  MlmExample ex;
  ex.input_ids = ids;
  ex.labels.assign(ids.size(), -100);
  std::vector<bool> selected(ids.size(), false);
  if (o.whole_word) {
    const std::vector<int64_t> g = word_groups(ids, v);
    bool take = false;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (g[i] < 0) continue;
      if (i == 0 || g[i] != g[i - 1]) take = gen.uniform_double() < o.select_prob;  // one draw per word
      selected[i] = take;
    }
  } else {
    for (size_t i = 0; i < ids.size(); ++i)
      if (!never_selected(ids[i], v)) selected[i] = gen.uniform_double() < o.select_prob;
  }
  // A vocabulary of nothing but the five special tokens has no random replacement to draw.
  const bool can_draw = v.size > 5;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!selected[i]) continue;
    ex.labels[i] = ids[i];
    const double r = gen.uniform_double();
    if (r < o.mask_prob) {
      ex.input_ids[i] = v.mask;
    } else if (r < o.mask_prob + o.random_prob && can_draw) {
      int32_t id;
      do id = int32_t(gen.below(uint64_t(v.size)));
      while (special(id, v));
      ex.input_ids[i] = id;
    }
  }
  return ex;
}

std::vector<std::vector<int32_t>> pack_sequences(const std::vector<std::vector<int32_t>>& docs, int64_t seq_len,
                                                 const MlmVocab& v) {
  if (seq_len < 3) fail("packing: the sequence length should be at least 3 ([CLS], a token, [SEP]), found ", seq_len);
  const size_t run = size_t(seq_len - 2);
  std::vector<std::vector<int32_t>> out;
  std::vector<int32_t> cur;
  auto flush = [&] {
    std::vector<int32_t> s;
    s.reserve(size_t(seq_len));
    s.push_back(v.cls);
    s.insert(s.end(), cur.begin(), cur.end());
    s.push_back(v.sep);
    s.resize(size_t(seq_len), v.pad);
    out.push_back(std::move(s));
    cur.clear();
  };
  bool first = true;
  for (const auto& d : docs) {
    if (d.empty()) continue;
    if (!first) {
      cur.push_back(v.sep);
      if (cur.size() == run) flush();
    }
    first = false;
    for (int32_t id : d) {
      cur.push_back(id);
      if (cur.size() == run) flush();
    }
  }
  if (!cur.empty()) flush();
  return out;
}

}  // namespace finch::data
