// The word tokenizer, the top-N vocabulary (OOV, padding, truncation both sides, save/load), an
// IMDB-style folder, and the sentencepiece model when this machine has it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/sentencepiece_text.h"
#include "data/text_folder.h"
#include "data/word_vocab.h"
#include "tests/error_text.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::data;
using finch::test::TempDir;

namespace {

using Words = std::vector<std::string>;
using Ids = std::vector<int64_t>;

void write(const std::string& p, const std::string& body) {
  std::filesystem::create_directories(std::filesystem::path(p).parent_path());
  std::ofstream(p) << body;
}

}  // namespace

TEST(WordTokenizer, LowercaseBreaksAndApostrophes) {
  EXPECT_EQ(tokenize_words("This movie<br /><br />was GREAT!"), (Words{"this", "movie", "was", "great"}));
  EXPECT_EQ(tokenize_words("I don't 'like' it's rock'n'roll"), (Words{"i", "don't", "like", "it's", "rock'n'roll"}));
  EXPECT_EQ(tokenize_words("a<BR>b<br/>c <br  /> d<b>e"), (Words{"a", "b", "c", "d", "b", "e"}));
  EXPECT_EQ(tokenize_words("10/10, 3.5 stars -- caf\xc3\xa9"), (Words{"10", "10", "3", "5", "stars", "caf\xc3\xa9"}));
  EXPECT_EQ(tokenize_words("  ''  ...  "), Words{});
}

TEST(WordVocab, TopNByCountTiesByWordOovAndTruncation) {
  // Counts: the 4, a 3, b 2, c 2, z 1 → ids the=2, a=3, b=4, c=5 (b before c: the tie goes to
  // the smaller word); max_words 3 drops c and z.
  const std::vector<Words> docs = {{"the", "c", "a", "the"}, {"b", "a", "the", "c"}, {"z", "b", "a", "the"}};
  const WordVocab v = WordVocab::build(docs, 3);
  EXPECT_EQ(v.size(), 5);
  EXPECT_EQ(v.id("the"), 2);
  EXPECT_EQ(v.id("a"), 3);
  EXPECT_EQ(v.id("b"), 4);
  EXPECT_EQ(v.id("c"), WordVocab::kOov);
  EXPECT_EQ(v.word(0), "<pad>");
  EXPECT_EQ(v.word(1), "<oov>");
  EXPECT_EQ(v.count(2), 4);
  EXPECT_EQ(WordVocab::build(docs, 0).id("c"), 5);  // 0 keeps every word
  EXPECT_EQ(WordVocab::build(docs, 0, 2).size(), 6);  // min_count 2 drops z
  const Words doc = {"z", "the", "b", "a", "c"};
  EXPECT_EQ(v.encode(doc), (Ids{1, 2, 4, 3, 1}));
  EXPECT_EQ(v.encode(doc, 3, Side::pre), (Ids{4, 3, 1}));   // keeps the end
  EXPECT_EQ(v.encode(doc, 3, Side::post), (Ids{1, 2, 4}));  // keeps the start
  EXPECT_EQ(v.encode({}), (Ids{1}));
  EXPECT_EQ(pad_sequence({5, 6, 7}, 5), (Ids{0, 0, 5, 6, 7}));
  EXPECT_EQ(pad_sequence({5, 6, 7}, 5, Side::post), (Ids{5, 6, 7, 0, 0}));
  EXPECT_EQ(pad_sequence({5, 6, 7}, 2, Side::pre, Side::pre), (Ids{6, 7}));
  EXPECT_EQ(pad_sequence({5, 6, 7}, 2, Side::pre, Side::post), (Ids{5, 6}));
  EXPECT_ERROR_HAS(WordVocab::build(docs, -1), "expected max_words >= 0");
  EXPECT_ERROR_HAS(v.word(5), "id 5 is outside [0, 5)");
  EXPECT_ERROR_HAS(side_from_name("middle"), "expected pre or post, found 'middle'");
}

TEST(WordVocab, SaveLoadRoundTripAndBadFiles) {
  TempDir dir("vocab");
  const WordVocab v = WordVocab::build({{"b", "a", "a", "don't"}}, 0);
  v.save(dir / "vocab.txt");
  const WordVocab w = WordVocab::load(dir / "vocab.txt");
  ASSERT_EQ(w.size(), v.size());
  for (int64_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(w.word(i), v.word(i));
    EXPECT_EQ(w.count(i), v.count(i));
  }
  EXPECT_EQ(w.id("don't"), v.id("don't"));
  auto bad = [&](const std::string& body) {
    write(dir / "bad.txt", body);
    return finch::test::error_of([&] { WordVocab::load(dir / "bad.txt"); });
  };
  EXPECT_NE(bad("words 1 1\na\t1\n").find("bad.txt line 1: expected the header 'finch-word-vocab 1 <n>'"), std::string::npos);
  EXPECT_NE(bad("finch-word-vocab 1 3\na\t1\n").find("the header promises 3 words but 1 lines follow"), std::string::npos);
  EXPECT_NE(bad("finch-word-vocab 1 2\na\t1\na\t2\n").find("bad.txt line 3: the word 'a' appears twice"), std::string::npos);
  EXPECT_NE(bad("finch-word-vocab 1 1\na 1\n").find("bad.txt line 2: expected 'word<TAB>count'"), std::string::npos);
  EXPECT_NE(bad("finch-word-vocab 1 1\na\t-3\n").find("line 2: expected 'word<TAB>count'"), std::string::npos);
  EXPECT_NE(bad("finch-word-vocab 1 1\nA,\t3\n").find("which the tokenizer never keeps"), std::string::npos);
  EXPECT_ERROR_HAS(WordVocab::load(dir / "absent.txt"), "cannot open");
}

TEST(TextFolder, ReadsClassesInOrderAndEncodes) {
  TempDir dir("imdb");
  write(dir / "train/pos/1_9.txt", "Great film.<br />Great cast!");
  write(dir / "train/pos/0_10.txt", "great great");
  write(dir / "train/neg/0_1.txt", "Awful film");
  write(dir / "train/neg/notes.md", "ignored");
  std::filesystem::create_directories(dir.path / "train/empty");
  const TextFolder f = read_text_folder(dir / "train");
  EXPECT_EQ(f.classes, (Words{"neg", "pos"}));  // empty folder skipped, sorted
  ASSERT_EQ(f.size(), 3);
  EXPECT_EQ(f.labels, (Ids{0, 1, 1}));
  EXPECT_EQ(f.texts[1], "great great");  // 0_10.txt sorts before 1_9.txt
  const auto tokens = tokenize_all(f.texts);
  const WordVocab v = WordVocab::build(tokens, 2);  // great 4, film 2
  const auto ds = make_token_dataset(f, tokens, v, 3, Side::post);
  Generator g(0);
  EXPECT_EQ(ds->get(2, g).image.to_vector<int64_t>(), (Ids{2, 3, 2}));  // great film great (cast cut)
  EXPECT_EQ(ds->get(0, g).image.dtype(), DType::i64);
  EXPECT_EQ(ds->get(0, g).image.to_vector<int64_t>(), (Ids{1, 3}));  // awful = OOV
  EXPECT_EQ(ds->label(2), 1);
  // Named classes: any order, each must exist.
  EXPECT_EQ(read_text_folder(dir / "train", {"pos", "neg"}).labels, (Ids{0, 0, 1}));
  EXPECT_ERROR_HAS(read_text_folder(dir / "train", {"pos", "unsup"}), "unsup does not exist");
  EXPECT_ERROR_HAS(read_text_folder(dir / "train", {"empty"}), "has no .txt files");
  EXPECT_ERROR_HAS(read_text_folder(dir / "nowhere"), "does not exist");
  EXPECT_ERROR_HAS(read_text_folder(dir / "train/empty"), "has no class subfolder with .txt files");
}

TEST(SentencePiece, BotchanModelWhenPresent) {
  const std::string p = "/work/shared/data/text/botchan-unigram.model";
  if (!SentencePieceTokenizer::available()) {
    EXPECT_ERROR_HAS(SentencePieceTokenizer{p}, "built without libsentencepiece");
    GTEST_SKIP() << "finch was built without libsentencepiece";
  }
  EXPECT_ERROR_HAS(SentencePieceTokenizer{"/nonexistent/x.model"}, "cannot load the sentencepiece model /nonexistent/x.model");
  if (!std::filesystem::exists(p)) GTEST_SKIP() << p << " is not on this machine";
  const SentencePieceTokenizer sp(p);
  EXPECT_GT(sp.size(), 100);
  const auto ids = sp.encode("I am a cat.<br />The master");
  ASSERT_FALSE(ids.empty());
  for (int64_t id : ids) {
    EXPECT_GT(id, 0);  // 0 is padding, never a piece
    EXPECT_LT(id, sp.size());
  }
  EXPECT_EQ(sp.pieces("I am a cat.<br />The master").size(), ids.size());
  EXPECT_EQ(sp.piece(0), "<pad>");
  EXPECT_EQ(sp.piece(ids[0]), sp.pieces("I am a cat.")[0]);
  EXPECT_EQ(sp.encode("I am a cat. The master"), ids);  // <br /> is a space
  const auto cut = sp.encode("I am a cat.<br />The master", 2, Side::post);
  EXPECT_EQ(cut, (Ids{ids[0], ids[1]}));
  EXPECT_EQ(sp.encode(""), (Ids{1}));  // an empty text is one <unk> (model id 0 + 1)
}

// A sentencepiece-encoded folder (needs no model file: skipped without one).
TEST(SentencePiece, FolderDatasetWhenPresent) {
  const std::string p = "/work/shared/data/text/botchan-unigram.model";
  if (!SentencePieceTokenizer::available() || !std::filesystem::exists(p)) GTEST_SKIP() << "no sentencepiece model";
  TempDir dir("spf");
  write(dir / "pos/a.txt", "a fine day");
  write(dir / "neg/b.txt", "a bad day");
  const SentencePieceTokenizer sp(p);
  const auto ds = make_token_dataset(read_text_folder(dir.str()), sp, 0);
  Generator g(0);
  EXPECT_EQ(ds->get(0, g).image.to_vector<int64_t>(), sp.encode("a bad day"));
  EXPECT_EQ(ds->label(1), 1);
}
