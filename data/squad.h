// SQuAD v1.1 / v2.0 JSON reader: {"version", "data": [{"title", "paragraphs": [{"context",
// "qas": [{"id", "question", "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}.
// answer_start counts code points of the context (Python str indices), as the files do.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace finch::data {

struct SquadAnswer {
  std::string text;
  int64_t start = 0;  // code point index into the context
};

struct SquadExample {
  std::string id, title, question, context;  // UTF-8
  std::vector<SquadAnswer> answers;          // empty for a v2.0 impossible question
  bool is_impossible = false;
};

// Every question of the file, in file order. Malformed JSON, a missing or mistyped field, an
// answer_start outside the context or a repeated question id: throws one sentence naming the file
// and the JSON path ("data[3].paragraphs[0].qas[2].answers[0].answer_start"). An answer whose text
// differs from the context at answer_start is kept (the evaluation uses the text).
std::vector<SquadExample> read_squad(const std::string& path);
std::vector<SquadExample> parse_squad(std::string_view json, const std::string& source);

}  // namespace finch::data
