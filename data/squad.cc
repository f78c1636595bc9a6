// SQuAD JSON reader (see squad.h), with nlohmann-json.
#include "data/squad.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include "data/unicode_text.h"
#include "framework/error.h"

namespace finch::data {
namespace {

using json = nlohmann::json;

[[noreturn]] void fail(const std::string& source, const std::string& path, const std::string& what) {
  throw Error(source + ": " + path + " " + what);
}

const json& field(const json& obj, const char* key, json::value_t type, const std::string& source,
                  const std::string& path) {
  const auto it = obj.find(key);
  const std::string p = path.empty() ? key : path + "." + key;
  if (it == obj.end()) fail(source, p, "is missing");
  const bool ok = it->type() == type || (type == json::value_t::number_integer &&
                                         it->type() == json::value_t::number_unsigned);
  if (!ok)
    fail(source, p, std::string("should be a JSON ") +
                        (type == json::value_t::string ? "string"
                         : type == json::value_t::array ? "array"
                         : type == json::value_t::object ? "object"
                                                         : "integer") +
                        ", found " + it->type_name());
  return *it;
}

std::string idx(const std::string& path, const char* key, size_t i) {
  return (path.empty() ? std::string() : path + ".") + key + "[" + std::to_string(i) + "]";
}

}  // namespace

std::vector<SquadExample> parse_squad(std::string_view text, const std::string& source) {
  json doc;
  try {
    doc = json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    // nlohmann's "[json.exception.parse_error.101] " tag is library text, not the user's sentence.
    std::string what = e.what();
    const auto tag = what.find("[json.exception.");
    const auto close = tag == std::string::npos ? tag : what.find("] ", tag);
    if (close != std::string::npos) what.erase(tag, close + 2 - tag);
    throw Error(source + ": malformed JSON, " + what);
  }
  if (!doc.is_object()) fail(source, "the top level", "should be a JSON object");
  using vt = json::value_t;
  std::vector<SquadExample> out;
  std::unordered_set<std::string> ids;
  const json& data = field(doc, "data", vt::array, source, "");
  for (size_t a = 0; a < data.size(); ++a) {
    const std::string ap = idx("", "data", a);
    if (!data[a].is_object()) fail(source, ap, "should be a JSON object");
    const auto t = data[a].find("title");  // optional: some hand-made files have none
    const std::string title = t != data[a].end() && t->is_string() ? t->get<std::string>() : "";
    const json& paras = field(data[a], "paragraphs", vt::array, source, ap);
    for (size_t p = 0; p < paras.size(); ++p) {
      const std::string pp = idx(ap, "paragraphs", p);
      if (!paras[p].is_object()) fail(source, pp, "should be a JSON object");
      const std::string context = field(paras[p], "context", vt::string, source, pp);
      const int64_t context_len = int64_t(unicode::decode_utf8(context).size());
      const json& qas = field(paras[p], "qas", vt::array, source, pp);
      for (size_t q = 0; q < qas.size(); ++q) {
        const std::string qp = idx(pp, "qas", q);
        if (!qas[q].is_object()) fail(source, qp, "should be a JSON object");
        SquadExample ex;
        ex.title = title;
        ex.context = context;
        ex.id = field(qas[q], "id", vt::string, source, qp).get<std::string>();
        ex.question = field(qas[q], "question", vt::string, source, qp).get<std::string>();
        if (!ids.insert(ex.id).second) fail(source, qp + ".id", "repeats the id \"" + ex.id + "\"");
        const auto imp = qas[q].find("is_impossible");
        if (imp != qas[q].end()) {
          if (!imp->is_boolean()) fail(source, qp + ".is_impossible", "should be true or false");
          ex.is_impossible = imp->get<bool>();
        }
        const json& answers = field(qas[q], "answers", vt::array, source, qp);
        for (size_t k = 0; k < answers.size(); ++k) {
          const std::string kp = idx(qp, "answers", k);
          if (!answers[k].is_object()) fail(source, kp, "should be a JSON object");
          SquadAnswer ans;
          ans.text = field(answers[k], "text", vt::string, source, kp).get<std::string>();
          const json& st = field(answers[k], "answer_start", vt::number_integer, source, kp);
          const int64_t len = int64_t(unicode::decode_utf8(ans.text).size());
          if (st.is_number_unsigned() && st.get<uint64_t>() > uint64_t(INT64_MAX))
            fail(source, kp + ".answer_start", "is out of range");
          ans.start = st.get<int64_t>();
          if (ans.start < 0 || ans.start + len > context_len)
            fail(source, kp + ".answer_start",
                 "should place the answer (" + std::to_string(len) + " characters) inside the " +
                     std::to_string(context_len) + "-character context, found " +
                     std::to_string(ans.start));
          ex.answers.push_back(std::move(ans));
        }
        if (ex.is_impossible && !ex.answers.empty())
          fail(source, qp, "is_impossible is true but answers is not empty");
        out.push_back(std::move(ex));
      }
    }
  }
  return out;
}

std::vector<SquadExample> read_squad(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open the SQuAD file");
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error in the SQuAD file");
  return parse_squad(ss.str(), path);
}

}  // namespace finch::data
