// infer_squad end to end on the checked-in tiny BERT QA model (tests/golden/data/bert_tiny, vocab
// 120, 64 positions) with a generated vocabulary and SQuAD file: it answers, scores, times and
// writes predictions; bad inputs are one sentence and a non-zero exit.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/apps/app_test_util.h"
#include "tests/golden/golden.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace finch::test;

namespace {

const std::vector<std::string> kWords = {
    "the", "a", "of", "in", "river", "city", "king", "was", "built", "by", "who", "what", "when", "where",
    "is", "name", "year", "north", "south", "bridge", "stone", "old", "new", "castle", "people", "lived",
    "there", "after", "war", "and", "to", "it", "on", "for", "with", "from", "town", "church", "tower"};

// [PAD] [UNK] [CLS] [SEP] [MASK], the words above, digits, lower-case letters and "##" letters,
// punctuation, padded with "[unusedK]" to exactly n tokens.
std::vector<std::string> vocab_tokens(size_t n) {
  std::vector<std::string> v = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  v.insert(v.end(), kWords.begin(), kWords.end());
  for (char c = '0'; c <= '9'; ++c) v.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) v.push_back(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) v.push_back("##" + std::string(1, c));
  for (const char* p : {".", ",", "?", "(", ")", "'"}) v.push_back(p);
  for (size_t k = 0; v.size() < n; ++k) v.push_back("[unused" + std::to_string(k) + "]");
  v.resize(n);
  return v;
}

void write_lines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream f(path);
  for (const auto& l : lines) f << l << "\n";
}

// Contexts long enough for several 64-token windows, with answers found by their text.
nlohmann::json squad_json() {
  const std::vector<std::string> contexts = {
      "The old stone bridge was built in 1204 by the king of the north. People lived there after the war, "
      "and the town grew around the church and the tower. The new castle was built on the river in 1350 "
      "by the people of the south, who named it the river castle. The city of the north was old.",
      "What is the name of the city? It was Zarqwell, a town on the river with a stone tower. The king "
      "lived in the castle after the war. The church was built with stone from the north in 1420."};
  const std::vector<std::vector<std::pair<std::string, std::string>>> qas = {
      {{"When was the old stone bridge built?", "1204"}, {"Who built the new castle?", "the people of the south"},
       {"Where was the new castle built?", "on the river"}},
      {{"What is the name of the city?", "Zarqwell"}, {"When was the church built?", "1420"}}};
  nlohmann::json data = nlohmann::json::array();
  int id = 0;
  for (size_t c = 0; c < contexts.size(); ++c) {
    nlohmann::json q = nlohmann::json::array();
    for (const auto& [question, answer] : qas[c]) {
      const auto start = contexts[c].find(answer);
      q.push_back({{"id", "q" + std::to_string(id++)},
                   {"question", question},
                   {"answers", {{{"text", answer}, {"answer_start", start}}}}});
    }
    data.push_back({{"title", "t" + std::to_string(c)}, {"paragraphs", {{{"context", contexts[c]}, {"qas", q}}}}});
  }
  return {{"version", "1.1"}, {"data", data}};
}

class InferSquad : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = tmp_.file("model");
    fs::create_directories(model_);
    for (const char* f : {"config.json", "model.safetensors"})
      fs::copy_file(golden_path(std::string("bert_tiny/") + f), fs::path(model_) / f);
    write_lines(model_ + "/vocab.txt", vocab_tokens(120));
    squad_ = tmp_.file("squad.json");
    std::ofstream(squad_) << squad_json().dump();
  }
  RunResult infer(const std::string& args) {
    return run_program("infer_squad",
                       "--model " + model_ + " --data " + squad_ +
                           " --max-seq-length 64 --doc-stride 16 --max-query-length 16 --threads 1 " + args,
                       tmp_.path);
  }
  static nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

  TempDir tmp_{"infer_squad"};
  std::string model_, squad_;
};

// One sentence on stderr, nothing that looks like a library's internal text.
TEST_F(InferSquad, AnswersScoresAndWritesPredictions) {
  const auto r = infer("--predictions " + tmp_.file("preds.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* s : {"5 questions", "exact_match", "f1", "p50", "p90", "questions/s", "peak memory"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s << "\n" << r.out;
  const auto preds = read_json(tmp_.file("preds.json"));
  ASSERT_TRUE(preds.is_object());
  ASSERT_EQ(preds.size(), 5u);
  const auto sq = squad_json();
  for (const auto& art : sq["data"])
    for (const auto& p : art["paragraphs"]) {
      const std::string ctx = p["context"];
      for (const auto& q : p["qas"]) {
        ASSERT_TRUE(preds.contains(q["id"])) << q["id"];
        const std::string a = preds[q["id"].get<std::string>()];
        // A decoded answer is a span of its own context (or "empty" when no span is valid).
        EXPECT_TRUE(a == "empty" || (!a.empty() && ctx.find(a) != std::string::npos)) << a;
      }
    }
  // No temporary left beside the predictions.
  int files = 0;
  for (const auto& e : fs::directory_iterator(tmp_.path)) files += e.path().string().find(".tmp.") != std::string::npos;
  EXPECT_EQ(files, 0);
}

TEST_F(InferSquad, BatchingAndLimitDoNotChangeAnswers) {
  ASSERT_EQ(infer("--batch-size 1 --predictions " + tmp_.file("b1.json") + " --logits " + tmp_.file("l1.json")).code, 0);
  ASSERT_EQ(infer("--batch-size 4 --predictions " + tmp_.file("b4.json") + " --logits " + tmp_.file("l4.json")).code, 0);
  ASSERT_EQ(infer("--limit 2 --predictions " + tmp_.file("lim.json")).code, 0);
  const auto b1 = read_json(tmp_.file("b1.json")), b4 = read_json(tmp_.file("b4.json"));
  EXPECT_EQ(b1, b4);
  const auto l1 = read_json(tmp_.file("l1.json")), l4 = read_json(tmp_.file("l4.json"));
  ASSERT_EQ(l1.size(), 5u);
  size_t windows = 0;
  for (const auto& [id, feats] : l1.items()) {
    windows += feats.size();
    ASSERT_EQ(feats.size(), l4[id].size());
    for (size_t f = 0; f < feats.size(); ++f) {
      ASSERT_LE(feats[f]["start"].size(), 64u);
      ASSERT_EQ(feats[f]["start"].size(), l4[id][f]["start"].size());
      for (size_t k = 0; k < feats[f]["start"].size(); ++k)
        EXPECT_NEAR(feats[f]["start"][k].get<double>(), l4[id][f]["start"][k].get<double>(), 1e-5);
    }
  }
  EXPECT_GT(windows, 5u);  // the first context needs more than one 64-token window
  const auto lim = read_json(tmp_.file("lim.json"));
  ASSERT_EQ(lim.size(), 2u);
  EXPECT_EQ(lim["q0"], b1["q0"]);
  EXPECT_EQ(lim["q1"], b1["q1"]);
}

// A window runs at its real length (the default) or padded to --max-seq-length (--pad): the
// attention mask hides the padding, so the real tokens' logits are the same bits either way for
// the fp32, dynamic int8, static int8 and fp16 programs; batches of 4 mix full and short windows when
// padded. The nn model's Linears are OpenBLAS's sgemm, which may sum a row in another order in a
// matrix of another row count: equal to float rounding there.
TEST_F(InferSquad, TrimmedWindowsGiveThePaddedLogitsBitForBit) {
  const std::vector<std::string> modes = {"--save-program " + tmp_.file("f.finch"), "--int8",
                                          "--int8-static --calibration-questions 2", "--fp16", ""};
  for (const std::string& mode : modes) {
    const bool exact = !mode.empty();
    const auto p = infer(mode + " --pad --batch-size 4 --logits " + tmp_.file("p.json"));
    ASSERT_EQ(p.code, 0) << mode << ": " << p.err;
    EXPECT_NE(p.out.find("padded: 64.0 tokens per feature"), std::string::npos) << p.out;
    const auto t = infer(mode + " --batch-size 4 --logits " + tmp_.file("t.json"));
    ASSERT_EQ(t.code, 0) << mode << ": " << t.err;
    EXPECT_NE(t.out.find("trimmed: "), std::string::npos) << t.out;
    const auto padded = read_json(tmp_.file("p.json")), trimmed = read_json(tmp_.file("t.json"));
    ASSERT_EQ(padded.size(), 5u);
    size_t shorter = 0, compared = 0;
    for (const auto& [id, feats] : padded.items()) {
      ASSERT_EQ(feats.size(), trimmed[id].size()) << id;
      for (size_t f = 0; f < feats.size(); ++f)
        for (const char* k : {"start", "end"}) {
          const auto& a = feats[f][k];
          const auto& b = trimmed[id][f][k];
          ASSERT_EQ(a.size(), 64u);
          ASSERT_LE(b.size(), a.size());
          shorter += b.size() < a.size();
          for (size_t j = 0; j < b.size(); ++j, ++compared) {
            const double x = a[j].get<double>(), y = b[j].get<double>();
            if (exact) ASSERT_EQ(x, y) << mode << ": " << id << " window " << f << " " << k << " " << j;
            else ASSERT_NEAR(x, y, 1e-5 * std::max(1.0, std::fabs(x))) << id << " window " << f << " " << k << " " << j;
          }
        }
    }
    EXPECT_GT(shorter, 0u) << mode;  // some windows were trimmed
    EXPECT_GT(compared, 300u) << mode;
  }
}

TEST_F(InferSquad, Version2FileIsScoredWithNullAnswers) {
  auto sq = squad_json();
  sq["version"] = "v2.0";
  auto& q = sq["data"][1]["paragraphs"][0]["qas"];
  q.push_back({{"id", "q_null"}, {"question", "Who was the king of the south?"}, {"answers", nlohmann::json::array()},
               {"is_impossible", true}});
  std::ofstream(squad_) << sq.dump();
  const auto r = infer("--predictions " + tmp_.file("preds.json"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("v2.0 evaluation"), std::string::npos) << r.out;
  const auto preds = read_json(tmp_.file("preds.json"));
  ASSERT_EQ(preds.size(), 6u);
  EXPECT_TRUE(preds.contains("q_null"));
}

TEST_F(InferSquad, VocabularyOfTheWrongSizeIsOneSentence) {
  write_lines(model_ + "/vocab.txt", vocab_tokens(119));
  expect_one_sentence(infer(""), "vocab.txt: expected 120 tokens");
  write_lines(tmp_.file("other_vocab.txt"), vocab_tokens(200));
  expect_one_sentence(infer("--vocab " + tmp_.file("other_vocab.txt")), "found 200");
}

TEST_F(InferSquad, BadInputsAreOneSentence) {
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("nope") + " --data " + squad_, tmp_.path),
                      "is not a directory");
  std::ofstream(tmp_.file("bad.json")) << "{\"version\": \"1.1\", \"data\": [{\"title\": 3";
  expect_one_sentence(run_program("infer_squad", "--model " + model_ + " --data " + tmp_.file("bad.json") +
                                                     " --max-seq-length 64 --doc-stride 16 --max-query-length 16",
                                  tmp_.path),
                      "bad.json");
  // 384 positions do not fit a model with 64.
  expect_one_sentence(run_program("infer_squad", "--model " + model_ + " --data " + squad_, tmp_.path),
                      "max_position_embeddings");
  expect_one_sentence(infer("--batch-size 0"), "--batch-size");
  expect_one_sentence(infer("--threads -2"), "--threads");
  expect_one_sentence(infer("--predictions " + tmp_.file("no/such/dir/p.json")), "no/such/dir");
  fs::remove(fs::path(model_) / "model.safetensors");
  expect_one_sentence(infer(""), "model.safetensors");
}

// --int8-static calibrates on the last questions of the file and answers with the static int8
// program; the program it saves answers the same through --model X.finch, and finch bench runs it.
TEST_F(InferSquad, StaticInt8ProgramRunsAgainFromItsFile) {
  const auto s = infer("--int8-static --calibration-questions 2 --save-program " + tmp_.file("static.finch") +
                       " --predictions " + tmp_.file("s.json"));
  ASSERT_EQ(s.code, 0) << s.err;
  for (const char* w : {"int8-static program", "exact_match", "p50"})
    EXPECT_NE(s.out.find(w), std::string::npos) << w << "\n" << s.out;
  const auto sp = run_program("infer_squad",
                              "--model " + tmp_.file("static.finch") + " --vocab " + model_ + "/vocab.txt --data " +
                                  squad_ + " --max-seq-length 64 --doc-stride 16 --max-query-length 16 --threads 2 " +
                                  "--predictions " + tmp_.file("sp.json"),
                              tmp_.path);
  ASSERT_EQ(sp.code, 0) << sp.err;
  EXPECT_EQ(read_json(tmp_.file("s.json")), read_json(tmp_.file("sp.json")));
  const auto ins = run_program("finch", "inspect " + tmp_.file("static.finch"), tmp_.path);
  EXPECT_NE(ins.out.find("qattention"), std::string::npos) << ins.out;
  const auto be = run_program("finch", "bench " + tmp_.file("static.finch") + " --iters 2 --warmup 1", tmp_.path);
  EXPECT_EQ(be.code, 0) << be.err;
  expect_one_sentence(infer("--int8 --int8-static"), "exclude each other");
  expect_one_sentence(infer("--int8-static --calibration-questions 0"), "--calibration-questions");
  expect_one_sentence(infer("--int8-static --observer median"), "median");
}

// --verify runs the static int8 program beside its simulated model (quant/bert_sim.h) on every
// window it answers: every logit and int8 code equal; for a saved program the float weights come
// from --weights. Without a static program there is nothing to verify: one sentence.
TEST_F(InferSquad, VerifyStaticProgramEqualsItsSimulation) {
  const auto s = infer("--int8-static --calibration-questions 2 --verify --save-program " + tmp_.file("static.finch"));
  ASSERT_EQ(s.code, 0) << s.out << s.err;
  EXPECT_NE(s.out.find("logits (0 differ,"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("values (0 differ)"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("-> AGREE"), std::string::npos) << s.out;
  const auto sp = run_program("infer_squad",
                              "--model " + tmp_.file("static.finch") + " --vocab " + model_ + "/vocab.txt --weights " +
                                  model_ + " --verify --data " + squad_ +
                                  " --max-seq-length 64 --doc-stride 16 --max-query-length 16 --threads 2",
                              tmp_.path);
  ASSERT_EQ(sp.code, 0) << sp.out << sp.err;
  EXPECT_NE(sp.out.find("-> AGREE"), std::string::npos) << sp.out;
  expect_one_sentence(infer("--verify"), "--verify compares an int8 program");
  expect_one_sentence(infer("--weights " + model_), "--weights");
}

// The same for dynamic int8 programs (quant::bert_dynamic_sim_forward: every logit and every f32
// value the simulation names), compiled on the fly and saved; an fp32 program has no simulation.
TEST_F(InferSquad, VerifyDynamicProgramEqualsItsSimulation) {
  const auto d = infer("--int8 --verify --save-program " + tmp_.file("dyn.finch"));
  ASSERT_EQ(d.code, 0) << d.out << d.err;
  EXPECT_NE(d.out.find("logits (0 differ,"), std::string::npos) << d.out;
  EXPECT_NE(d.out.find("-> AGREE"), std::string::npos) << d.out;
  const std::string saved = " --vocab " + model_ + "/vocab.txt --weights " + model_ + " --verify --data " + squad_ +
                            " --max-seq-length 64 --doc-stride 16 --max-query-length 16 --threads 2";
  const auto dp = run_program("infer_squad", "--model " + tmp_.file("dyn.finch") + saved, tmp_.path);
  ASSERT_EQ(dp.code, 0) << dp.out << dp.err;
  EXPECT_NE(dp.out.find("-> AGREE"), std::string::npos) << dp.out;
  ASSERT_EQ(infer("--save-program " + tmp_.file("f32.finch")).code, 0);
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("f32.finch") + saved, tmp_.path),
                      "only int8 ones");
}

// --fp16 stores the Linear weights and embedding tables as f16: a smaller file whose logits are
// the fp32 program's within fp16 weight rounding (and not equal to them: the weights really are
// rounded), and which runs again from its file with the same answers.
TEST_F(InferSquad, Fp16ProgramIsSmallerAndCloseToFp32) {
  const auto f = infer("--save-program " + tmp_.file("fp32.finch") + " --logits " + tmp_.file("f.json"));
  ASSERT_EQ(f.code, 0) << f.err;
  const auto h = infer("--fp16 --save-program " + tmp_.file("fp16.finch") + " --logits " + tmp_.file("h.json") +
                       " --predictions " + tmp_.file("hp.json"));
  ASSERT_EQ(h.code, 0) << h.err;
  EXPECT_NE(h.out.find("fp16 program"), std::string::npos) << h.out;
  EXPECT_LT(double(fs::file_size(tmp_.file("fp16.finch"))), 0.6 * double(fs::file_size(tmp_.file("fp32.finch"))));
  const nlohmann::json a = read_json(tmp_.file("f.json")), b = read_json(tmp_.file("h.json"));
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, largest = 0;
  int64_t compared = 0;
  for (const auto& [id, feats] : a.items()) {
    ASSERT_TRUE(b.contains(id)) << id;
    ASSERT_EQ(feats.size(), b[id].size()) << id;
    for (size_t i = 0; i < feats.size(); ++i)
      for (const char* k : {"start", "end"}) {
        const auto& x = feats[i][k];
        const auto& y = b[id][i][k];
        ASSERT_EQ(x.size(), y.size()) << id;
        for (size_t j = 0; j < x.size(); ++j, ++compared) {
          worst = std::max(worst, std::fabs(x[j].get<double>() - y[j].get<double>()));
          largest = std::max(largest, std::fabs(x[j].get<double>()));
        }
      }
  }
  EXPECT_GT(compared, 0);
  EXPECT_GT(worst, 0.0) << "the fp16 program computed exactly the fp32 logits: were its weights rounded?";
  EXPECT_LT(worst, 1e-2 * std::max(1.0, largest)) << "largest |logit| " << largest;
  const auto again = run_program("infer_squad",
                                 "--model " + tmp_.file("fp16.finch") + " --vocab " + model_ + "/vocab.txt --data " +
                                     squad_ + " --max-seq-length 64 --doc-stride 16 --max-query-length 16 --threads 1 " +
                                     "--predictions " + tmp_.file("hp2.json"),
                                 tmp_.path);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(read_json(tmp_.file("hp.json")), read_json(tmp_.file("hp2.json")));
  expect_one_sentence(infer("--fp16 --int8"), "exclude each other");
}

// --int8 compiles the directory to a dynamic int8 program and answers with it; the fp32 and
// int8 programs it saves run again through --model X.finch with the same answers, and the fp32
// program's answers are the nn model's.
TEST_F(InferSquad, ProgramsFp32AndInt8) {
  const auto nn = infer("--predictions " + tmp_.file("nn.json"));
  ASSERT_EQ(nn.code, 0) << nn.err;
  const auto f = infer("--save-program " + tmp_.file("fp32.finch") + " --predictions " + tmp_.file("f.json"));
  ASSERT_EQ(f.code, 0) << f.err;
  EXPECT_NE(f.out.find("fp32 program"), std::string::npos) << f.out;
  const auto q = infer("--int8 --save-program " + tmp_.file("int8.finch") + " --predictions " + tmp_.file("q.json"));
  ASSERT_EQ(q.code, 0) << q.err;
  for (const char* s : {"int8-dynamic program", "exact_match", "p50", "questions/s", "peak memory"})
    EXPECT_NE(q.out.find(s), std::string::npos) << s << "\n" << q.out;
  EXPECT_EQ(read_json(tmp_.file("nn.json")), read_json(tmp_.file("f.json")));
  EXPECT_LT(fs::file_size(tmp_.file("int8.finch")), fs::file_size(tmp_.file("fp32.finch")));
  const auto qp = run_program("infer_squad",
                              "--model " + tmp_.file("int8.finch") + " --vocab " + model_ + "/vocab.txt --data " + squad_ +
                                  " --max-seq-length 64 --doc-stride 16 --max-query-length 16 --threads 1 --predictions " +
                                  tmp_.file("qp.json"),
                              tmp_.path);
  ASSERT_EQ(qp.code, 0) << qp.err;
  EXPECT_EQ(read_json(tmp_.file("q.json")), read_json(tmp_.file("qp.json")));
  // finch inspect and bench take a BERT program (bench feeds token ids and an all-ones mask).
  const auto ins = run_program("finch", "inspect " + tmp_.file("int8.finch"), tmp_.path);
  EXPECT_EQ(ins.code, 0) << ins.err;
  EXPECT_NE(ins.out.find("dq_linear"), std::string::npos) << ins.out;
  EXPECT_NE(ins.out.find("attention"), std::string::npos) << ins.out;
  const auto be = run_program("finch", "bench " + tmp_.file("int8.finch") + " --iters 2 --warmup 1", tmp_.path);
  EXPECT_EQ(be.code, 0) << be.err;
  EXPECT_NE(be.out.find("median"), std::string::npos) << be.out;
  // A program needs --vocab, and is not compiled again.
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("int8.finch") + " --data " + squad_, tmp_.path),
                      "--vocab");
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("int8.finch") + " --int8 --vocab " + model_ +
                                                     "/vocab.txt --data " + squad_, tmp_.path),
                      "already a program");
  // A longer sequence than the program takes, a vocabulary of another size, a file that is not a BERT program.
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("fp32.finch") + " --vocab " + model_ +
                                                     "/vocab.txt --data " + squad_ + " --max-seq-length 65 --doc-stride 16 --max-query-length 16",
                                  tmp_.path),
                      "longest sequence");
  write_lines(tmp_.file("v200.txt"), vocab_tokens(200));
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("fp32.finch") + " --vocab " +
                                                     tmp_.file("v200.txt") + " --data " + squad_ +
                                                     " --max-seq-length 64 --doc-stride 16 --max-query-length 16",
                                  tmp_.path),
                      "found 200");
  std::ofstream(tmp_.file("junk.finch")) << "not a program";
  expect_one_sentence(run_program("infer_squad", "--model " + tmp_.file("junk.finch") + " --vocab " + model_ +
                                                     "/vocab.txt --data " + squad_, tmp_.path),
                      "junk.finch");
  const auto h = run_program("infer_squad", "--help", tmp_.path);
  EXPECT_EQ(h.code, 0);
  EXPECT_NE(h.out.find("--int8"), std::string::npos);
}

}  // namespace
