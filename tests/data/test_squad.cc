// SQuAD: the JSON reader's errors, features against transformers' prepare_train_features, answer
// decoding against postprocess_qa_predictions and EM/F1 against the official evaluation
// (goldens from tests/golden/make_wordpiece_goldens.py).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "framework/error.h"
#include "data/squad.h"
#include "data/squad_eval.h"
#include "data/squad_features.h"

namespace finch::data {
namespace {

std::string golden(const std::string& f) { return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + f; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

std::string error_of(const std::string& json) {
  try {
    parse_squad(json, "x.json");
  } catch (const finch::Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(Squad, ReadsV1AndV2) {
  const auto ex = read_squad(golden("squad_sample.json"));
  ASSERT_EQ(ex.size(), 8u);
  EXPECT_EQ(ex[6].id, "edge-long-question");
  EXPECT_EQ(ex[6].answers[0].start, 6);
  EXPECT_TRUE(ex[7].answers.empty());
  const auto v2 = parse_squad(R"({"version":"v2.0","data":[{"title":"t","paragraphs":[{"context":"é ab",
      "qas":[{"id":"1","question":"q","answers":[],"is_impossible":true},
             {"id":"2","question":"q","answers":[{"text":"ab","answer_start":2}],"is_impossible":false}]}]}]})",
                              "v2");
  ASSERT_EQ(v2.size(), 2u);
  EXPECT_TRUE(v2[0].is_impossible);
  EXPECT_EQ(v2[1].answers[0].start, 2);  // code points: "é" is one
}

TEST(Squad, ErrorsNameFileAndPath) {
  EXPECT_NE(error_of("{").find("x.json: malformed JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"version":"1"})").find("x.json: data is missing"), std::string::npos);
  const std::string m = error_of(R"({"data":[{"paragraphs":[{"context":"c","qas":[{"id":"1","answers":[]}]}]}]})");
  EXPECT_NE(m.find("x.json: data[0].paragraphs[0].qas[0].question is missing"), std::string::npos) << m;
  const std::string s = error_of(R"({"data":[{"paragraphs":[{"context":"abc","qas":[{"id":"1","question":"q",
      "answers":[{"text":"bc","answer_start":2}]}]}]}]})");
  EXPECT_NE(s.find("data[0].paragraphs[0].qas[0].answers[0].answer_start should place"), std::string::npos) << s;
  const std::string t = error_of(R"({"data":[{"paragraphs":[{"context":"abc","qas":[{"id":"1","question":"q",
      "answers":[{"text":"bc","answer_start":"1"}]}]}]}]})");
  EXPECT_NE(t.find("answer_start should be a JSON integer, found string"), std::string::npos) << t;
  const std::string d = error_of(R"({"data":[{"paragraphs":[{"context":"c","qas":[{"id":"1","question":"q","answers":[]},
      {"id":"1","question":"q","answers":[]}]}]}]})");
  EXPECT_NE(d.find("qas[1].id repeats"), std::string::npos) << d;
  EXPECT_THROW(read_squad("/nonexistent.json"), finch::Error);
}

TEST(SquadFeatures, MatchTransformers) {
  const nlohmann::json g = read_json(golden("squad_features.json"));
  const auto tok = WordPieceTokenizer::from_file(golden(g["vocab"].get<std::string>()));
  const auto examples = read_squad(golden("squad_sample.json"));
  ASSERT_EQ(g["configs"].size(), 3u);
  for (const auto& cfg : g["configs"]) {
    SquadFeatureOptions opt;
    opt.max_seq_length = cfg["max_seq_length"];
    opt.doc_stride = cfg["doc_stride"];
    opt.max_query_length = cfg["max_query_length"];
    std::vector<SquadFeature> got;
    int64_t last = -1;
    for (const auto& want : cfg["features"]) {  // the golden lists the examples it used, in order
      const int64_t e = want["example"];
      if (e == last) continue;
      last = e;
      for (auto& f : make_squad_features(examples[size_t(e)], e, tok, opt)) got.push_back(std::move(f));
    }
    ASSERT_EQ(got.size(), cfg["features"].size()) << "max_seq_length " << opt.max_seq_length;
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& w = cfg["features"][i];
      const auto& f = got[i];
      const std::string at = "config " + std::to_string(opt.max_seq_length) + " feature " + std::to_string(i);
      const size_t n = w["length"];
      ASSERT_EQ(f.input_ids.size(), size_t(opt.max_seq_length)) << at;
      EXPECT_EQ(f.example_index, w["example"].get<int64_t>()) << at;
      EXPECT_EQ(std::vector<int32_t>(f.input_ids.begin(), f.input_ids.begin() + long(n)),
                w["input_ids"].get<std::vector<int32_t>>()) << at;
      EXPECT_EQ(std::vector<int32_t>(f.token_type_ids.begin(), f.token_type_ids.begin() + long(n)),
                w["token_type_ids"].get<std::vector<int32_t>>()) << at;
      for (size_t k = 0; k < size_t(opt.max_seq_length); ++k) {
        ASSERT_EQ(f.attention_mask[k], k < n ? 1 : 0) << at;
        if (k >= n) {
          ASSERT_EQ(f.input_ids[k], tok.pad_id()) << at;
        }
      }
      ASSERT_EQ(f.context_begin, w["context_begin"].get<int64_t>()) << at;
      ASSERT_EQ(f.context_end, w["context_end"].get<int64_t>()) << at;
      for (int64_t k = f.context_begin; k < f.context_end; ++k) {
        const auto& o = w["context_offsets"][size_t(k - f.context_begin)];
        EXPECT_EQ(f.offsets[size_t(k)].first, o[0].get<int64_t>()) << at << " token " << k;
        EXPECT_EQ(f.offsets[size_t(k)].second, o[1].get<int64_t>()) << at << " token " << k;
      }
      EXPECT_EQ(f.offsets[0].first, -1) << at;
      EXPECT_EQ(f.start_position, w["start_position"].get<int64_t>()) << at;
      EXPECT_EQ(f.end_position, w["end_position"].get<int64_t>()) << at;
    }
  }
}

TEST(SquadFeatures, RejectsBadOptions) {
  SquadFeatureOptions o;
  o.doc_stride = 400;
  EXPECT_THROW(validate(o), finch::Error);
  o = {};
  o.max_seq_length = 2;
  EXPECT_THROW(validate(o), finch::Error);
  o = {};
  o.max_query_length = 0;
  EXPECT_THROW(validate(o), finch::Error);
  EXPECT_NO_THROW(validate(SquadFeatureOptions{}));
}

TEST(SquadEval, DecodeMatchesPostprocess) {
  const nlohmann::json g = read_json(golden("squad_eval.json"));
  const std::string context = g["context"];
  ASSERT_EQ(g["decode"].size(), 8u);
  for (const auto& c : g["decode"]) {
    std::vector<std::vector<std::pair<int64_t, int64_t>>> offs;
    std::vector<std::vector<float>> st, en;
    for (const auto& f : c["features"]) {
      offs.emplace_back();
      for (const auto& o : f["offsets"]) offs.back().push_back({o[0], o[1]});
      st.push_back(f["start_logits"].get<std::vector<float>>());
      en.push_back(f["end_logits"].get<std::vector<float>>());
    }
    std::vector<SquadFeatureLogits> feats;
    for (size_t i = 0; i < offs.size(); ++i) feats.push_back({offs[i], st[i], en[i]});
    SquadDecodeOptions opt;
    opt.n_best = c["n_best"];
    opt.max_answer_length = c["max_answer_length"];
    opt.version_2 = c["version_2"];
    opt.null_threshold = c["null_threshold"];
    EXPECT_EQ(decode_squad_answer(context, feats, opt), c["answer"].get<std::string>()) << c.dump().substr(0, 200);
  }
}

TEST(SquadEval, OfficialExactMatchAndF1) {
  const nlohmann::json ev = read_json(golden("squad_eval.json"))["evaluate"];
  for (const auto& p : ev["per_pair"]) {
    const std::string pred = p["pred"], gold = p["gold"];
    EXPECT_EQ(normalize_squad_answer(gold), p["norm"].get<std::string>()) << gold;
    EXPECT_EQ(squad_exact_match(pred, gold) ? 1.0 : 0.0, p["em"].get<double>()) << pred << " | " << gold;
    EXPECT_NEAR(squad_f1(pred, gold, false), p["f1_v1"].get<double>(), 1e-12) << pred << " | " << gold;
    EXPECT_NEAR(squad_f1(pred, gold, true), p["f1_v2"].get<double>(), 1e-12) << pred << " | " << gold;
  }
  std::vector<SquadExample> exs;
  for (const auto& q : ev["questions"]) {
    SquadExample e;
    e.id = q["id"];
    for (const auto& a : q["answers"]) e.answers.push_back({a.get<std::string>(), 0});
    exs.push_back(e);
  }
  const auto preds = ev["predictions"].get<std::map<std::string, std::string>>();
  for (const bool v2 : {false, true}) {
    const auto s = evaluate_squad(exs, preds, v2);
    const auto& want = ev[v2 ? "v2" : "v1"];
    EXPECT_NEAR(s.exact, want["exact"].get<double>(), 1e-9) << "v2 " << v2;
    EXPECT_NEAR(s.f1, want["f1"].get<double>(), 1e-9) << "v2 " << v2;
    EXPECT_EQ(s.total, 10);
    EXPECT_EQ(s.missing, 1);
  }
  EXPECT_EQ(normalize_squad_answer("The  Cat, an   apple!"), "cat apple");
  EXPECT_EQ(normalize_squad_answer("theater a-b"), "theater ab");
  EXPECT_DOUBLE_EQ(squad_f1("x b c", "b c d"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(squad_f1("a b c", "b c d"), 0.8);  // "a" is an article: p = [b c]
}

}  // namespace
}  // namespace finch::data
