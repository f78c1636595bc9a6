// WordPiece tokenizer: ids and code point offsets against the fast `tokenizers` BertWordPiece
// golden (tests/golden/make_wordpiece_goldens.py) on SQuAD dev questions, contexts and edge
// strings, plus hand-checked rules and the vocab errors.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "framework/error.h"
#include "data/unicode_text.h"
#include "data/wordpiece.h"

namespace finch::data {
namespace {

std::string golden(const std::string& f) { return std::string(FINCH_TEST_DATA_DIR) + "/golden/data/" + f; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

WordPieceTokenizer tiny(WordPieceOptions opt = {}) {
  return WordPieceTokenizer::from_tokens({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un",
                                          "##aff", "##able", "a", "##b", "hello", ",", "!", "cafe",
                                          "中", "x", "##x"},
                                         opt, "tiny");
}

TEST(WordPiece, GoldenIdsAndOffsets) {
  const nlohmann::json g = read_json(golden("wordpiece_sample.json"));
  const auto tok = WordPieceTokenizer::from_file(golden(g["vocab"].get<std::string>()));
  WordPieceOptions cased_opt;
  cased_opt.lower_case = false;
  const auto cased = WordPieceTokenizer::from_file(golden(g["vocab"].get<std::string>()), cased_opt);
  ASSERT_GT(g["texts"].size(), 200u);
  int64_t tokens = 0;
  for (const auto& item : g["texts"]) {
    const std::string text = item["text"];
    const auto got = tok.encode(text);
    const auto& ids = item["ids"];
    ASSERT_EQ(got.size(), ids.size()) << "text: " << text;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].id, ids[i].get<int32_t>()) << "token " << i << " of: " << text;
      ASSERT_EQ(got[i].begin, item["offsets"][i][0].get<int64_t>()) << "token " << i << " of: " << text;
      ASSERT_EQ(got[i].end, item["offsets"][i][1].get<int64_t>()) << "token " << i << " of: " << text;
    }
    EXPECT_EQ(cased.encode_ids(text), item["cased_ids"].get<std::vector<int32_t>>()) << text;
    tokens += int64_t(got.size());
  }
  EXPECT_GT(tokens, 3000);
}

// The real bert-base-uncased vocab, when this machine has it (CI does not): a few known ids.
TEST(WordPiece, RealVocabWhenPresent) {
  const std::string path = "/work/shared/data/text/bert-base-uncased-vocab.txt";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " is absent";
  const auto tok = WordPieceTokenizer::from_file(path);
  EXPECT_EQ(tok.size(), 30522);
  EXPECT_EQ(tok.cls_id(), 101);
  EXPECT_EQ(tok.sep_id(), 102);
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.unk_id(), 100);
  EXPECT_EQ(tok.mask_id(), 103);
  // Reference: transformers BertTokenizer('Héllo wörld, 我爱') = 7592 2088 1010 1855 100.
  EXPECT_EQ(tok.encode_ids("Héllo wörld, 我爱"), (std::vector<int32_t>{7592, 2088, 1010, 1855, 100}));
}

TEST(WordPiece, GreedyLongestMatchAndUnk) {
  const auto t = tiny();
  EXPECT_EQ(t.encode_ids("unaffable"), (std::vector<int32_t>{5, 6, 7}));
  EXPECT_EQ(t.encode_ids("ab"), (std::vector<int32_t>{8, 9}));
  EXPECT_EQ(t.encode_ids("abc"), (std::vector<int32_t>{1}));  // no "##c": the whole word is [UNK]
  EXPECT_EQ(t.encode_ids("Hello, CAFÉ!"), (std::vector<int32_t>{10, 11, 13, 12}));
  EXPECT_EQ(t.encode_ids(std::string(100, 'x')).size(), 100u);
  EXPECT_EQ(t.encode_ids(std::string(101, 'x')), (std::vector<int32_t>{1}));
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_TRUE(t.encode(" \t\n\x01").empty());
  const auto toks = t.encode("a中b");  // CJK is a word of its own: "a", "中", "b"→[UNK]
  ASSERT_EQ(toks.size(), 3u);
  EXPECT_EQ(toks[1].id, 14);
  EXPECT_EQ(toks[1].begin, 1);
  EXPECT_EQ(toks[1].end, 2);
  EXPECT_EQ(toks[2].id, 1);
}

TEST(WordPiece, OffsetsAreCodePointsOfTheOriginal) {
  const auto t = tiny();
  // "é" is one code point (2 bytes); "e\u0301" two code points, the accent removed but covered.
  const auto a = t.encode("café hello");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0].begin, 0);
  EXPECT_EQ(a[0].end, 4);
  EXPECT_EQ(a[1].begin, 5);
  EXPECT_EQ(a[1].end, 10);
  const auto b = t.encode("cafe\xCC\x81!");
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].end, 4);  // the stripped combining mark makes no token
  EXPECT_EQ(b[1].begin, 5);
  const auto c = t.encode("unaffable");
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[1].begin, 2);
  EXPECT_EQ(c[1].end, 5);
}

TEST(WordPiece, CasedKeepsCaseAndAccents) {
  WordPieceOptions opt;
  opt.lower_case = false;
  const auto t = tiny(opt);
  EXPECT_EQ(t.encode_ids("Hello hello"), (std::vector<int32_t>{1, 10}));
  opt.strip_accents = 1;
  EXPECT_EQ(tiny(opt).encode_ids("cafè"), (std::vector<int32_t>{13}));
}

TEST(WordPiece, VocabErrorsAreOneSentence) {
  try {
    WordPieceTokenizer::from_tokens({"[PAD]", "[UNK]", "hello"}, {}, "my.txt");
    FAIL() << "no error";
  } catch (const finch::Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("my.txt"), std::string::npos) << m;
    EXPECT_NE(m.find("[CLS] [SEP] [MASK]"), std::string::npos) << m;
  }
  EXPECT_THROW(WordPieceTokenizer::from_tokens({}, {}, "empty"), finch::Error);
  EXPECT_THROW(WordPieceTokenizer::from_file("/nonexistent/vocab.txt"), finch::Error);
  WordPieceOptions bad;
  bad.max_chars_per_word = 0;
  EXPECT_THROW(tiny(bad), finch::Error);
  EXPECT_THROW(tiny().token(17), std::out_of_range);
}

TEST(Unicode, DecodeAndTables) {
  std::vector<uint32_t> at;
  const auto cps = unicode::decode_utf8("a\xC3\xA9\xFF\xE4\xB8\xAD", &at);
  EXPECT_EQ(cps, (std::u32string{U'a', U'é', 0xFFFD, U'中'}));
  EXPECT_EQ(at, (std::vector<uint32_t>{0, 1, 3, 4, 7}));
  EXPECT_EQ(unicode::decode_utf8("\xC0\x80"), (std::u32string{0xFFFD, 0xFFFD}));  // overlong
  EXPECT_EQ(unicode::encode_utf8(U"aé中😀"), "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
  EXPECT_EQ(unicode::lower_utf8("ÀÉÎ İ ΣΑ"), "àéî i\xCC\x87 σα");
  std::u32string s;
  unicode::append_strip_accents(U'한', s);
  EXPECT_EQ(s, (std::u32string{0x1112, 0x1161, 0x11AB}));
  EXPECT_TRUE(unicode::is_bert_punctuation(U'¿'));
  EXPECT_TRUE(unicode::is_bert_punctuation(U'$'));
  EXPECT_FALSE(unicode::is_bert_punctuation(U'a'));
  EXPECT_TRUE(unicode::is_bert_control(0x200B));
  EXPECT_FALSE(unicode::is_bert_control(U'\n'));
  EXPECT_TRUE(unicode::is_bert_whitespace(0x3000));
  EXPECT_TRUE(unicode::is_py_space(0x85));
  EXPECT_TRUE(unicode::is_py_alnum(U'é'));
  EXPECT_FALSE(unicode::is_py_alnum(U'_'));
}

}  // namespace
}  // namespace finch::data
