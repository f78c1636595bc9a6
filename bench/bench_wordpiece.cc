// WordPiece over every question and context of a SQuAD file, one thread: tokens per second (best
// of --reps passes), and the ids written one text a line so bench_wordpiece_ref.py can compare
// them with the tokenizers / transformers ids and time those on the same texts. With FEATURES_OUT,
// also the SQuAD features (384/128/64) of every question, one a line: example index, start and
// end position, context token range, then the ids up to the padding (compare_squad_features.py).
//   bench_wordpiece VOCAB SQUAD.json IDS_OUT [REPS [FEATURES_OUT]]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/squad.h"
#include "data/squad_features.h"
#include "data/wordpiece.h"

int main(int argc, char** argv) {
  if (argc < 4 || argc > 6) {
    std::fprintf(stderr, "usage: %s VOCAB SQUAD.json IDS_OUT [REPS [FEATURES_OUT]]\n", argv[0]);
    return 2;
  }
  try {
    const auto tok = finch::data::WordPieceTokenizer::from_file(argv[1]);
    const auto examples = finch::data::read_squad(argv[2]);
    const int reps = argc >= 5 ? std::stoi(argv[4]) : 3;
    if (reps < 1 || reps > 100) throw std::runtime_error("REPS should be 1..100");
    // Texts in file order: each context once (before its questions), then its questions.
    std::vector<const std::string*> texts;
    const std::string* last_context = nullptr;
    for (const auto& ex : examples) {
      if (!last_context || *last_context != ex.context) texts.push_back(&ex.context);
      last_context = &ex.context;
      texts.push_back(&ex.question);
    }
    double best = 1e30;
    int64_t tokens = 0;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      int64_t n = 0;
      for (const std::string* t : texts) n += int64_t(tok.encode(*t).size());
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      tokens = n;
    }
    std::ofstream out(argv[3]);
    for (const std::string* t : texts) {
      const auto ids = tok.encode(*t);
      for (size_t i = 0; i < ids.size(); ++i)
        out << (i ? " " : "") << ids[i].id << ":" << ids[i].begin << ":" << ids[i].end;
      out << "\n";
    }
    std::printf("finch WordPiece: %zu texts, %lld tokens, best of %d: %.3f s, %.0f tokens/s\n",
                texts.size(), static_cast<long long>(tokens), reps, best, double(tokens) / best);
    if (argc == 6) {
      std::ofstream fo(argv[5]);
      int64_t count = 0;
      const auto t0 = std::chrono::steady_clock::now();
      for (size_t e = 0; e < examples.size(); ++e) {
        for (const auto& f : finch::data::make_squad_features(examples[e], int64_t(e), tok, {})) {
          fo << f.example_index << " " << f.start_position << " " << f.end_position << " "
             << f.context_begin << " " << f.context_end;
          for (size_t k = 0; k < f.input_ids.size() && f.attention_mask[k]; ++k) fo << " " << f.input_ids[k];
          fo << "\n";
          ++count;
        }
      }
      std::printf("finch SQuAD features: %lld from %zu questions in %.3f s (written as text)\n",
                  static_cast<long long>(count), examples.size(),
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_wordpiece: %s\n", e.what());
    return 1;
  }
  return 0;
}
