// CSV table writer and JSON file helpers.
#include "framework/results.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "framework/atomic_file.h"
#include "framework/error.h"

namespace finch {

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  // std::to_chars without a precision gives the shortest text that parses back to exactly v
  // (Ryu); printf's %.17g would print 0.1 as 0.10000000000000001.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

CsvCell::CsvCell(double v) : text_(format_number(v)) {}

std::string csv_escape(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

CsvWriter::CsvWriter(std::vector<std::string> header) : header_(std::move(header)) {
  if (header_.empty()) fail("CsvWriter: expected at least one column name, got none");
}

void CsvWriter::add_row(std::vector<CsvCell> row) {
  if (row.size() != header_.size())
    fail("CsvWriter::add_row: expected ", header_.size(), " cells (one per column), got ", row.size());
  std::vector<std::string> r;
  r.reserve(row.size());
  for (CsvCell& c : row) r.push_back(c.text());
  rows_.push_back(std::move(r));
}

std::string CsvWriter::str() const {
  std::string s;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) {
      if (i) s += ',';
      s += csv_escape(cells[i]);
    }
    s += '\n';
  };
  line(header_);
  for (const auto& r : rows_) line(r);
  return s;
}

void CsvWriter::save(const std::string& path) const { write_file_atomically(path, str()); }

void write_json_file(const std::string& path, const nlohmann::json& j, int indent) {
  std::string text;
  try {
    text = j.dump(indent);
  } catch (const nlohmann::json::exception& ex) {
    fail("cannot write JSON file '", path, "': the value cannot be serialized (", ex.what(), ")");
  }
  text += '\n';
  write_file_atomically(path, text);
}

nlohmann::json read_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read JSON file '", path, "': the file does not exist or is not readable");
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& ex) {
    fail("JSON file '", path, "': expected valid JSON, found a parse error: ", ex.what());
  }
}

}  // namespace finch
