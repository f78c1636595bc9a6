// Result files: a CSV table writer (RFC 4180) and JSON file helpers, both written atomically.
//
// Programs print a human table and also leave machine-readable results beside it; these are the
// two formats. Numbers are written with full precision (the shortest text that reads back to the
// same double), so a result file never loses digits that a later comparison needs.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

namespace finch {

// One CSV field: text, or a number formatted with full precision.
class CsvCell {
 public:
  CsvCell(std::string s) : text_(std::move(s)) {}
  CsvCell(const char* s) : text_(s) {}
  CsvCell(bool b) : text_(b ? "true" : "false") {}
  CsvCell(double v);
  CsvCell(float v) : CsvCell(double(v)) {}
  template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  CsvCell(I v) : text_(std::to_string(v)) {}
  const std::string& text() const { return text_; }  // unescaped

 private:
  std::string text_;
};

// Quotes a field when it contains a comma, a double quote, CR or LF (doubling inner quotes), as
// RFC 4180 says; other fields are written as they are.
std::string csv_escape(const std::string& field);
// Shortest round-trip decimal text of v ("0.1", "1e-07", "3"); "nan", "inf", "-inf" otherwise.
std::string format_number(double v);

// A CSV table kept in memory; save() rewrites the whole file atomically, so calling it after
// each epoch leaves a complete, valid file on disk at every moment.
class CsvWriter {
 public:
  explicit CsvWriter(std::vector<std::string> header);
  // Appends a row; throws finch::Error when the cell count differs from the header's.
  void add_row(std::vector<CsvCell> row);
  size_t rows() const { return rows_.size(); }
  std::string str() const;  // the whole file; CRLF-free: lines end with "\n"
  void save(const std::string& path) const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// Writes `j` as pretty JSON (indent 2, trailing newline) atomically. NaN/inf become null (JSON
// has no such numbers). Throws finch::Error naming the file on failure (e.g. invalid UTF-8).
void write_json_file(const std::string& path, const nlohmann::json& j, int indent = 2);
// Reads a JSON file; throws finch::Error naming the file for a missing file or invalid JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace finch
