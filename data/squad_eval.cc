// SQuAD answer decoding and the official EM/F1 (see squad_eval.h).
#include "data/squad_eval.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <unordered_map>

#include "data/unicode_text.h"

namespace finch::data {
namespace {

// Indices of the n largest values, largest first; ties: the later index first (numpy's stable
// ascending argsort read backwards).
std::vector<int64_t> top_n(std::span<const float> v, int64_t n) {
  std::vector<int64_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
    return v[size_t(a)] > v[size_t(b)] || (v[size_t(a)] == v[size_t(b)] && a > b);
  });
  if (int64_t(idx.size()) > n) idx.resize(size_t(n));
  return idx;
}

struct Candidate {
  int64_t begin, end;  // code points of the context; (0, 0) for the null answer
  double score, start_logit, end_logit;
  bool null;
};

bool is_word(char32_t c) { return c == U'_' || unicode::is_py_alnum(c); }

std::vector<std::u32string> normalized_tokens(std::string_view s) {
  const std::u32string cps = unicode::decode_utf8(s);
  std::u32string low;
  for (size_t i = 0; i < cps.size(); ++i) {
    if (cps[i] == 0x03A3) {  // final sigma: after a letter, not before one
      const bool after = i > 0 && is_word(cps[i - 1]) && cps[i - 1] != U'_';
      const bool before = i + 1 < cps.size() && is_word(cps[i + 1]) && cps[i + 1] != U'_';
      if (after && !before) { low.push_back(0x03C2); continue; }
    }
    unicode::append_lower(cps[i], low);
  }
  std::u32string np;  // string.punctuation removed
  for (char32_t c : low) {
    const bool p = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
                   (c >= 123 && c <= 126);
    if (!p) np.push_back(c);
  }
  std::u32string na;  // re.sub(r"\b(a|an|the)\b", " ", text)
  const size_t n = np.size();
  for (size_t i = 0; i < n;) {
    if (i == 0 || !is_word(np[i - 1])) {
      size_t len = 0;
      for (const std::u32string_view w : {U"a", U"an", U"the"}) {
        if (np.compare(i, w.size(), w) == 0 && (i + w.size() == n || !is_word(np[i + w.size()]))) {
          len = w.size();
          break;
        }
      }
      if (len) { na.push_back(U' '); i += len; continue; }
    }
    na.push_back(np[i++]);
  }
  std::vector<std::u32string> toks;  // str.split()
  std::u32string cur;
  for (char32_t c : na) {
    if (unicode::is_py_space(c)) {
      if (!cur.empty()) toks.push_back(std::move(cur)), cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) toks.push_back(std::move(cur));
  return toks;
}

}  // namespace

std::string decode_squad_answer(const std::string& context,
                                const std::vector<SquadFeatureLogits>& features,
                                const SquadDecodeOptions& opt) {
  if (opt.n_best < 1 || opt.max_answer_length < 1)
    throw std::invalid_argument("SQuAD decoding: n_best and max_answer_length should be >= 1, got " +
                                std::to_string(opt.n_best) + " and " +
                                std::to_string(opt.max_answer_length));
  const std::u32string ctx = unicode::decode_utf8(context);
  std::vector<Candidate> prelim;
  bool have_null = false;
  Candidate min_null{0, 0, 0, 0, 0, true};
  for (const auto& f : features) {
    const size_t len = f.offsets.size();
    if (f.start_logits.size() != len || f.end_logits.size() != len || len == 0)
      throw std::invalid_argument("SQuAD decoding: a feature has " + std::to_string(len) +
                                  " offsets, " + std::to_string(f.start_logits.size()) +
                                  " start and " + std::to_string(f.end_logits.size()) +
                                  " end logits; expected the same non-zero length");
    const double null = double(f.start_logits[0]) + double(f.end_logits[0]);
    if (!have_null || min_null.score > null)
      min_null = {0, 0, null, f.start_logits[0], f.end_logits[0], true}, have_null = true;
    const auto starts = top_n(f.start_logits, opt.n_best), ends = top_n(f.end_logits, opt.n_best);
    for (int64_t s : starts) {
      for (int64_t e : ends) {
        const auto os = f.offsets[size_t(s)], oe = f.offsets[size_t(e)];
        if (os.first < 0 || oe.first < 0 || e < s || e - s + 1 > opt.max_answer_length) continue;
        if (os.first > int64_t(ctx.size()) || oe.second > int64_t(ctx.size()) || os.first > oe.second)
          throw std::invalid_argument("SQuAD decoding: offsets [" + std::to_string(os.first) +
                                      ", " + std::to_string(oe.second) +
                                      ") fall outside the " + std::to_string(ctx.size()) +
                                      "-character context");
        prelim.push_back({os.first, oe.second, double(f.start_logits[size_t(s)]) + f.end_logits[size_t(e)],
                          f.start_logits[size_t(s)], f.end_logits[size_t(e)], false});
      }
    }
  }
  if (opt.version_2 && have_null) prelim.push_back(min_null);
  std::stable_sort(prelim.begin(), prelim.end(),
                   [](const Candidate& a, const Candidate& b) { return a.score > b.score; });
  if (int64_t(prelim.size()) > opt.n_best) prelim.resize(size_t(opt.n_best));
  if (opt.version_2 && have_null &&
      std::none_of(prelim.begin(), prelim.end(),
                   [](const Candidate& c) { return c.begin == 0 && c.end == 0; }))
    prelim.push_back(min_null);
  auto text = [&](const Candidate& c) {
    return unicode::encode_utf8(std::u32string_view(ctx).substr(size_t(c.begin), size_t(c.end - c.begin)));
  };
  // transformers puts a candidate with the text "empty" and zero logits first when nothing but
  // an empty answer is left.
  if (prelim.empty() || (prelim.size() == 1 && prelim[0].end == prelim[0].begin)) {
    if (!opt.version_2) return "empty";
    return min_null.score > opt.null_threshold ? std::string() : std::string("empty");
  }
  if (!opt.version_2) return text(prelim[0]);
  for (const Candidate& c : prelim) {
    if (c.end == c.begin) continue;  // transformers skips every empty text, the null one included
    const double diff = min_null.score - c.start_logit - c.end_logit;
    return diff > opt.null_threshold ? std::string() : text(c);
  }
  return "";
}

std::string normalize_squad_answer(std::string_view s) {
  std::u32string out;
  for (const auto& t : normalized_tokens(s)) {
    if (!out.empty()) out.push_back(U' ');
    out += t;
  }
  return unicode::encode_utf8(out);
}

bool squad_exact_match(std::string_view prediction, std::string_view gold) {
  return normalized_tokens(prediction) == normalized_tokens(gold);
}

double squad_f1(std::string_view prediction, std::string_view gold, bool version_2) {
  const auto p = normalized_tokens(prediction), g = normalized_tokens(gold);
  if (version_2 && (p.empty() || g.empty())) return p == g ? 1.0 : 0.0;
  std::unordered_map<std::u32string, int64_t> count;
  for (const auto& t : g) ++count[t];
  int64_t same = 0;
  for (const auto& t : p) {
    auto it = count.find(t);
    if (it != count.end() && it->second > 0) --it->second, ++same;
  }
  if (same == 0) return 0.0;
  const double precision = double(same) / double(p.size()), recall = double(same) / double(g.size());
  return 2 * precision * recall / (precision + recall);
}

SquadScore evaluate_squad(const std::vector<SquadExample>& examples,
                          const std::map<std::string, std::string>& predictions, bool version_2) {
  SquadScore s;
  for (const auto& ex : examples) {
    ++s.total;
    std::vector<std::string> golds;
    for (const auto& a : ex.answers)
      if (!version_2 || !normalized_tokens(a.text).empty()) golds.push_back(a.text);
    if (golds.empty()) golds.push_back("");
    const auto it = predictions.find(ex.id);
    if (it == predictions.end()) { ++s.missing; continue; }
    double em = 0, f1 = 0;
    for (const auto& g : golds) {
      em = std::max(em, squad_exact_match(it->second, g) ? 1.0 : 0.0);
      f1 = std::max(f1, squad_f1(it->second, g, version_2));
    }
    s.exact += em, s.f1 += f1;
  }
  if (s.total > 0) s.exact *= 100.0 / double(s.total), s.f1 *= 100.0 / double(s.total);
  return s;
}

}  // namespace finch::data
