// The word tokenizer, the top-N vocabulary with its text file, and keras-style padding.
#include "data/word_vocab.h"

#include <algorithm>
#include <map>

#include "data/series_text.h"
#include "framework/atomic_file.h"
#include "framework/error.h"

namespace finch::data {

namespace {

bool word_char(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

// Length of an HTML line break starting at s[i] ("<br>", "<br/>", "<br />", any case), or 0.
size_t br_length(std::string_view s, size_t i) {
  if (i + 3 > s.size() || s[i] != '<' || (s[i + 1] | 0x20) != 'b' || (s[i + 2] | 0x20) != 'r') return 0;
  size_t j = i + 3;
  while (j < s.size() && s[j] == ' ') ++j;
  if (j < s.size() && s[j] == '/') ++j;
  while (j < s.size() && s[j] == ' ') ++j;
  return j < s.size() && s[j] == '>' ? j + 1 - i : 0;
}

}  // namespace

std::vector<std::string> tokenize_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) out.push_back(std::move(cur));
    cur.clear();
  };
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (const size_t n = br_length(s, i)) {
      flush();
      i += n - 1;
    } else if (word_char(c)) {
      cur += (c >= 'A' && c <= 'Z') ? char(c - 'A' + 'a') : char(c);
    } else if (c == '\'' && !cur.empty() && i + 1 < s.size() && word_char(static_cast<unsigned char>(s[i + 1]))) {
      cur += '\'';
    } else {
      flush();
    }
  }
  flush();
  return out;
}

const char* side_name(Side s) { return s == Side::pre ? "pre" : "post"; }

Side side_from_name(const std::string& name) {
  if (name == "pre") return Side::pre;
  if (name == "post") return Side::post;
  fail("truncation/padding side: expected pre or post, found '", name, "'");
}

WordVocab WordVocab::build(const std::vector<std::vector<std::string>>& documents, int64_t max_words,
                           int64_t min_count) {
  if (max_words < 0) fail("WordVocab::build: expected max_words >= 0 (0 keeps every word), found ", max_words);
  if (min_count < 1) fail("WordVocab::build: expected min_count >= 1, found ", min_count);
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& doc : documents)
    for (const auto& w : doc) ++counts[w];
  std::vector<std::pair<std::string, int64_t>> sorted;
  for (auto& [w, n] : counts)
    if (n >= min_count && !w.empty()) sorted.emplace_back(w, n);
  // Count descending, then the word ascending: a total order, so the ids never depend on hashing.
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  if (max_words > 0 && int64_t(sorted.size()) > max_words) sorted.resize(size_t(max_words));
  WordVocab v;
  for (auto& [w, n] : sorted) {
    v.index_.emplace(w, int64_t(v.words_.size()) + kFirstWord);
    v.words_.push_back(w);
    v.counts_.push_back(n);
  }
  return v;
}

void WordVocab::save(const std::string& path) const {
  write_file_atomically(path, [&](std::ostream& os) {
    os << "finch-word-vocab 1 " << words_.size() << "\n";
    for (size_t i = 0; i < words_.size(); ++i) os << words_[i] << '\t' << counts_[i] << '\n';
  });
}

WordVocab WordVocab::load(const std::string& path) {
  const std::string all = text::read_file(path, "WordVocab::load");
  const auto lines = text::split_lines(all);
  auto bad = [&](size_t line, const auto&... what) {
    fail("WordVocab::load: ", path, " line ", line, ": ", what...);
  };
  if (lines.empty()) fail("WordVocab::load: ", path, " is empty; expected the header 'finch-word-vocab 1 <n>'");
  const auto head = text::split_ws(lines[0]);
  int64_t n = 0;
  if (head.size() != 3 || head[0] != "finch-word-vocab" || head[1] != "1" ||
      !text::parse_int(head[2], 0, int64_t(1) << 32, n))
    bad(1, "expected the header 'finch-word-vocab 1 <n>', found ", text::quote(lines[0]));
  if (int64_t(lines.size()) - 1 != n)
    fail("WordVocab::load: ", path, ": the header promises ", n, " words but ", lines.size() - 1, " lines follow");
  WordVocab v;
  v.words_.reserve(size_t(n));
  for (int64_t i = 1; i <= n; ++i) {
    const std::string_view l = lines[size_t(i)];
    const size_t tab = l.find('\t');
    int64_t count = 0;
    if (tab == std::string_view::npos || tab == 0 || !text::parse_int(l.substr(tab + 1), 0, INT64_MAX, count))
      bad(size_t(i) + 1, "expected 'word<TAB>count', found ", text::quote(l));
    const std::string w(l.substr(0, tab));
    // A word the tokenizer cannot produce (space, control byte) would never be looked up.
    for (unsigned char c : w)
      if (!word_char(c) && c != '\'') bad(size_t(i) + 1, "the word ", text::quote(w), " has the character ", int(c),
                                          " which the tokenizer never keeps");
    if (!v.index_.emplace(w, int64_t(v.words_.size()) + kFirstWord).second)
      bad(size_t(i) + 1, "the word ", text::quote(w), " appears twice");
    v.words_.push_back(w);
    v.counts_.push_back(count);
  }
  return v;
}

int64_t WordVocab::id(const std::string& word) const {
  const auto it = index_.find(word);
  return it == index_.end() ? kOov : it->second;
}

const std::string& WordVocab::word(int64_t id) const {
  static const std::string pad = "<pad>", oov = "<oov>";
  if (id < 0 || id >= size()) fail("WordVocab::word: id ", id, " is outside [0, ", size(), ")");
  return id == kPad ? pad : id == kOov ? oov : words_[size_t(id - kFirstWord)];
}

int64_t WordVocab::count(int64_t id) const {
  if (id < 0 || id >= size()) fail("WordVocab::count: id ", id, " is outside [0, ", size(), ")");
  return id < kFirstWord ? 0 : counts_[size_t(id - kFirstWord)];
}

std::vector<int64_t> WordVocab::encode(const std::vector<std::string>& tokens, int64_t max_len, Side truncate) const {
  if (max_len < 0) fail("WordVocab::encode: expected max_len >= 0 (0: no limit), found ", max_len);
  std::vector<int64_t> ids;
  ids.reserve(tokens.size());
  for (const auto& t : tokens) ids.push_back(id(t));
  if (max_len > 0 && int64_t(ids.size()) > max_len) {
    if (truncate == Side::pre) ids.erase(ids.begin(), ids.end() - max_len);
    else ids.resize(size_t(max_len));
  }
  if (ids.empty()) ids.push_back(kOov);
  return ids;
}

std::vector<int64_t> pad_sequence(const std::vector<int64_t>& ids, int64_t length, Side padding, Side truncate) {
  if (length < 1) fail("pad_sequence: expected length >= 1, found ", length);
  std::vector<int64_t> out = ids;
  if (int64_t(out.size()) > length) {
    if (truncate == Side::pre) out.erase(out.begin(), out.end() - length);
    else out.resize(size_t(length));
  }
  const size_t pad = size_t(length) - out.size();
  if (padding == Side::pre) out.insert(out.begin(), pad, WordVocab::kPad);
  else out.insert(out.end(), pad, WordVocab::kPad);
  return out;
}

}  // namespace finch::data
