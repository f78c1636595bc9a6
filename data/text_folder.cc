// Parallel reading of root/<class>/*.txt folders and their conversion to token datasets.
#include "data/text_folder.h"

#include <algorithm>
#include <filesystem>

#include "data/series_text.h"
#include "framework/parallel.h"

namespace finch::data {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> txt_files(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".txt") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TextFolder read_text_folder(const std::string& root, const std::vector<std::string>& classes) {
  const char* op = "read_text_folder";
  if (!fs::is_directory(root)) fail(op, ": text folder ", root, " does not exist");
  TextFolder out;
  std::vector<std::vector<std::string>> per_class;
  if (classes.empty()) {
    std::vector<std::string> dirs;
    for (const auto& e : fs::directory_iterator(root))
      if (e.is_directory()) dirs.push_back(e.path().filename().string());
    std::sort(dirs.begin(), dirs.end());
    for (const auto& d : dirs) {
      auto files = txt_files(fs::path(root) / d);
      if (files.empty()) continue;
      out.classes.push_back(d);
      per_class.push_back(std::move(files));
    }
    if (out.classes.empty())
      fail(op, ": ", root, " has no class subfolder with .txt files (expected root/<class>/<name>.txt)");
  } else {
    for (const auto& c : classes) {
      const fs::path dir = fs::path(root) / c;
      if (!fs::is_directory(dir)) fail(op, ": class folder ", dir.string(), " does not exist");
      auto files = txt_files(dir);
      if (files.empty()) fail(op, ": class folder ", dir.string(), " has no .txt files");
      out.classes.push_back(c);
      per_class.push_back(std::move(files));
    }
  }
  for (size_t k = 0; k < per_class.size(); ++k)
    for (auto& f : per_class[k]) {
      out.files.push_back(std::move(f));
      out.labels.push_back(int64_t(k));
    }
  out.texts.resize(out.files.size());
  // One file per iteration; each writes only its own slot, so the result is order-independent.
  parallel_for(0, int64_t(out.files.size()), 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out.texts[size_t(i)] = text::read_file(out.files[size_t(i)], op);
  });
  return out;
}

std::vector<std::vector<std::string>> tokenize_all(const std::vector<std::string>& texts) {
  std::vector<std::vector<std::string>> out(texts.size());
  parallel_for(0, int64_t(texts.size()), 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[size_t(i)] = tokenize_words(texts[size_t(i)]);
  });
  return out;
}

std::shared_ptr<TokenDataset> make_token_dataset(const TextFolder& folder,
                                                 const std::vector<std::vector<std::string>>& tokens,
                                                 const WordVocab& vocab, int64_t max_len, Side truncate) {
  if (tokens.size() != folder.texts.size())
    fail("make_token_dataset: expected ", folder.texts.size(), " tokenized documents (one per file), found ",
         tokens.size());
  if (max_len < 0) fail("make_token_dataset: expected max_len >= 0 (0: no limit), found ", max_len);
  std::vector<std::vector<int64_t>> ids(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ids[i] = vocab.encode(tokens[i], max_len, truncate);
  return std::make_shared<TokenDataset>(std::move(ids), folder.labels, folder.classes);
}

}  // namespace finch::data
