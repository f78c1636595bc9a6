// The sentencepiece tokenizer wrapper (ids shifted by one so 0 is padding).
#include "data/sentencepiece_text.h"

#include "framework/parallel.h"

#ifdef FINCH_HAVE_SENTENCEPIECE
#include <sentencepiece_processor.h>
#endif

namespace finch::data {

namespace {

// "<br />" and its spellings → " " (IMDB reviews carry them; they are markup, not words).
std::string strip_breaks(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 3 <= s.size() && (s[i + 1] | 0x20) == 'b' && (s[i + 2] | 0x20) == 'r') {
      size_t j = i + 3;
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && s[j] == '/') ++j;
      while (j < s.size() && s[j] == ' ') ++j;
      if (j < s.size() && s[j] == '>') {
        out += ' ';
        i = j;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

}  // namespace

#ifdef FINCH_HAVE_SENTENCEPIECE

struct SentencePieceTokenizer::Impl {
  sentencepiece::SentencePieceProcessor sp;
};

bool SentencePieceTokenizer::available() { return true; }

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path)
    : impl_(std::make_unique<Impl>()), path_(model_path) {
  const auto status = impl_->sp.Load(model_path);
  if (!status.ok())
    fail("SentencePieceTokenizer: cannot load the sentencepiece model ", model_path, " (", status.ToString(), ")");
}

int64_t SentencePieceTokenizer::size() const { return int64_t(impl_->sp.GetPieceSize()) + 1; }

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text, int64_t max_len, Side truncate) const {
  if (max_len < 0) fail("SentencePieceTokenizer::encode: expected max_len >= 0 (0: no limit), found ", max_len);
  std::vector<int> raw;
  const auto status = impl_->sp.Encode(strip_breaks(text), &raw);
  if (!status.ok()) fail("SentencePieceTokenizer::encode: ", path_, ": ", status.ToString());
  std::vector<int64_t> ids;
  ids.reserve(raw.size());
  for (int id : raw) ids.push_back(int64_t(id) + 1);
  if (max_len > 0 && int64_t(ids.size()) > max_len) {
    if (truncate == Side::pre) ids.erase(ids.begin(), ids.end() - max_len);
    else ids.resize(size_t(max_len));
  }
  if (ids.empty()) ids.push_back(impl_->sp.unk_id() + 1);
  return ids;
}

std::vector<std::string> SentencePieceTokenizer::pieces(std::string_view text) const {
  std::vector<std::string> out;
  const auto status = impl_->sp.Encode(strip_breaks(text), &out);
  if (!status.ok()) fail("SentencePieceTokenizer::pieces: ", path_, ": ", status.ToString());
  return out;
}

std::string SentencePieceTokenizer::piece(int64_t id) const {
  if (id < 0 || id >= size()) fail("SentencePieceTokenizer::piece: id ", id, " is outside [0, ", size(), ")");
  return id == 0 ? "<pad>" : impl_->sp.IdToPiece(int(id - 1));
}

#else  // built without libsentencepiece

struct SentencePieceTokenizer::Impl {};

bool SentencePieceTokenizer::available() { return false; }

SentencePieceTokenizer::SentencePieceTokenizer(const std::string& model_path) : path_(model_path) {
  (void)strip_breaks;
  fail("SentencePieceTokenizer: cannot load ", model_path, ": finch was built without libsentencepiece "
       "(apt-get install libsentencepiece-dev, then re-run cmake)");
}
int64_t SentencePieceTokenizer::size() const { return 0; }
std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view, int64_t, Side) const { return {}; }
std::vector<std::string> SentencePieceTokenizer::pieces(std::string_view) const { return {}; }
std::string SentencePieceTokenizer::piece(int64_t) const { return {}; }

#endif

SentencePieceTokenizer::~SentencePieceTokenizer() = default;

std::shared_ptr<TokenDataset> make_token_dataset(const TextFolder& folder, const SentencePieceTokenizer& sp,
                                                 int64_t max_len, Side truncate) {
  std::vector<std::vector<int64_t>> ids(folder.texts.size());
  parallel_for(0, int64_t(ids.size()), 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) ids[size_t(i)] = sp.encode(folder.texts[size_t(i)], max_len, truncate);
  });
  return std::make_shared<TokenDataset>(std::move(ids), folder.labels, folder.classes);
}

}  // namespace finch::data
