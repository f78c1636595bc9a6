// train_bert and train_squad: masking rules and statistics, whole-word groups, packing, the
// schedule and AdamW's decay groups, the article split, and both programs end to end on a tiny
// generated vocabulary, corpus and SQuAD file (loss falls, --resume equals an uninterrupted run
// bit for bit, the directories load, bad input is one sentence).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/bert_train.h"
#include "apps/lib/squad_train.h"
#include "autograd/optim/adam.h"
#include "data/mlm.h"
#include "data/wordpiece.h"
#include "framework/safetensors.h"
#include "models/bert_io.h"
#include "tests/apps/app_test_util.h"
#include "tests/apps/bert_test_data.h"
#include "tests/temp_dir.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

TEST(BertMasking, StatisticsAndRules) {
  const data::MlmVocab v = tiny_vocab();
  data::MlmOptions o;
  Generator g(7);
  int64_t candidates = 0, selected = 0, masked = 0, random = 0, kept = 0;
  for (int n = 0; n < 400; ++n) {
    std::vector<int32_t> ids = {v.cls};
    for (int i = 0; i < 100; ++i) ids.push_back(int32_t(5 + g.below(uint64_t(v.size - 5))));
    ids.push_back(v.sep);
    for (int i = 0; i < 10; ++i) ids.push_back(v.pad);
    const auto ex = data::mask_tokens(ids, v, o, g);
    ASSERT_EQ(ex.input_ids.size(), ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const bool special = ids[i] == v.cls || ids[i] == v.sep || ids[i] == v.pad;
      if (special) {
        EXPECT_EQ(ex.labels[i], -100);
        EXPECT_EQ(ex.input_ids[i], ids[i]);
        continue;
      }
      ++candidates;
      if (ex.labels[i] == -100) {
        EXPECT_EQ(ex.input_ids[i], ids[i]);
        continue;
      }
      ++selected;
      EXPECT_EQ(ex.labels[i], ids[i]);
      if (ex.input_ids[i] == v.mask) ++masked;
      else if (ex.input_ids[i] == ids[i]) ++kept;
      else {
        ++random;
        EXPECT_GE(ex.input_ids[i], 5);  // never a special token (ids 0-4 here)
      }
    }
  }
  const double sel = double(selected) / double(candidates);
  EXPECT_NEAR(sel, 0.15, 0.006) << selected << " of " << candidates;  // ~6000 of 40000: sd 0.0018
  // A random draw equal to the original counts as kept (1 in 103 of the random ones).
  EXPECT_NEAR(double(masked) / double(selected), 0.8, 0.015);
  EXPECT_NEAR(double(random) / double(selected), 0.1, 0.012);
  EXPECT_NEAR(double(kept) / double(selected), 0.1, 0.012);
  // Seeded: the same generator state gives the same masks.
  Generator a(3), b(3);
  std::vector<int32_t> ids(50, 10);
  EXPECT_EQ(data::mask_tokens(ids, v, o, a).input_ids, data::mask_tokens(ids, v, o, b).input_ids);
}

TEST(BertMasking, WholeWordGroupsAreSelectedTogether) {
  const auto tok = data::WordPieceTokenizer::from_tokens(vocab_tokens());
  const data::MlmVocab v = data::MlmVocab::from(tok);
  const auto id = [&](const char* t) { return tok.id(t); };
  // [CLS] ##x river z ##a ##b [SEP] ##c k [PAD]: a leading "##" run is a word of its own, a
  // [SEP] ends a word.
  const std::vector<int32_t> ids = {v.cls, id("##x"), id("river"), id("z"), id("##a"), id("##b"),
                                    v.sep, id("##c"),  id("k"),     v.pad};
  EXPECT_EQ(data::word_groups(ids, v), (std::vector<int64_t>{-1, 0, 1, 2, 2, 2, -1, 3, 4, -1}));
  data::MlmOptions o;
  o.whole_word = true;
  o.select_prob = 0.5;
  Generator g(11);
  int64_t words_selected = 0;
  for (int n = 0; n < 300; ++n) {
    const auto ex = data::mask_tokens(ids, v, o, g);
    EXPECT_EQ(ex.labels[3] == -100, ex.labels[4] == -100);
    EXPECT_EQ(ex.labels[4] == -100, ex.labels[5] == -100);
    for (size_t i : {0, 6, 9}) EXPECT_EQ(ex.labels[i], -100);
    words_selected += ex.labels[3] != -100;
  }
  EXPECT_GT(words_selected, 110);
  EXPECT_LT(words_selected, 190);
  EXPECT_THROW(data::mask_tokens({int32_t(v.size)}, v, o, g), Error);
  o.mask_prob = 0.95;
  EXPECT_THROW(o.validate(), Error);
}

TEST(BertMasking, PacksDocumentsIntoSequences) {
  const data::MlmVocab v = tiny_vocab();
  const auto seqs = data::pack_sequences({{10, 11, 12}, {}, {13, 14}}, 5, v);
  // 10 11 12 [SEP] 13 14 in runs of 3.
  ASSERT_EQ(seqs.size(), 2u);
  EXPECT_EQ(seqs[0], (std::vector<int32_t>{v.cls, 10, 11, 12, v.sep}));
  EXPECT_EQ(seqs[1], (std::vector<int32_t>{v.cls, v.sep, 13, 14, v.sep}));
  EXPECT_EQ(data::pack_sequences({{10}}, 5, v)[0], (std::vector<int32_t>{v.cls, 10, v.sep, v.pad, v.pad}));
  EXPECT_THROW(data::pack_sequences({{10}}, 2, v), Error);
}

TEST(BertTrainLoop, ScheduleAndDecayGroups) {
  using apps::linear_warmup_decay;
  EXPECT_DOUBLE_EQ(linear_warmup_decay(1.0, 0, 10, 110), 0.0);  // transformers: lr 0 at step 0
  EXPECT_DOUBLE_EQ(linear_warmup_decay(1.0, 5, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(1.0, 10, 10, 110), 1.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(1.0, 60, 10, 110), 0.5);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(1.0, 110, 10, 110), 0.0);
  EXPECT_DOUBLE_EQ(linear_warmup_decay(2.0, 0, 0, 4), 2.0);
  EXPECT_TRUE(apps::decays("bert.encoder.layer.0.attention.self.query.weight"));
  EXPECT_TRUE(apps::decays("bert.embeddings.word_embeddings.weight"));
  EXPECT_FALSE(apps::decays("bert.encoder.layer.0.attention.self.query.bias"));
  EXPECT_FALSE(apps::decays("bert.embeddings.LayerNorm.weight"));
  EXPECT_FALSE(apps::decays("cls.predictions.bias"));
}

TEST(BertTrainLoop, GroupDecayEqualsAdamWBitForBit) {
  // decay_parameters + AdamW(wd 0) is AdamW(wd) for the decayed group, over three steps.
  Generator g(5);
  Tensor p1 = randn({37}, g), p2 = p1.clone();
  p1.set_requires_grad(true);
  p2.set_requires_grad(true);
  optim::AdamOptions with, without;
  with.lr = without.lr = 1e-3;
  with.weight_decay = 0.01;
  optim::AdamW a({p1}, with), b({p2}, without);
  for (int s = 0; s < 3; ++s) {
    Tensor grad = randn({37}, g);
    p1.set_grad(grad.clone());
    p2.set_grad(grad.clone());
    a.step();
    apps::decay_parameters({p2}, b.lr(), 0.01);
    b.step();
  }
  EXPECT_EQ(p1.to_vector<float>(), p2.to_vector<float>());
}

TEST(SquadSplit, ByArticleIsDeterministicAndDisjoint) {
  const auto ex = data::parse_squad(squad_json().dump(), "tiny");
  const auto a = apps::split_by_article(ex, 0.5, 3), b = apps::split_by_article(ex, 0.5, 3);
  EXPECT_EQ(a, b);
  std::set<std::string> train, test;
  for (size_t i = 0; i < ex.size(); ++i) (a[i] ? train : test).insert(ex[i].title);
  EXPECT_EQ(train.size(), 3u);
  EXPECT_EQ(test.size(), 3u);
  for (const auto& t : train) EXPECT_EQ(test.count(t), 0u) << t;
  bool differs = false;  // another seed gives another split
  for (uint64_t s = 4; s < 10 && !differs; ++s) differs = apps::split_by_article(ex, 0.5, s) != a;
  EXPECT_TRUE(differs);
  EXPECT_THROW(apps::split_by_article(ex, 1.0, 0), Error);
  const auto one = data::parse_squad(
      nlohmann::json{{"version", "1.1"}, {"data", {squad_json()["data"][0]}}}.dump(), "one");
  EXPECT_THROW(apps::split_by_article(one, 0.8, 0), Error);
}

class TrainBert : public ::testing::Test {
 protected:
  void SetUp() override {
    vocab_ = tmp_.file("vocab.txt");
    write_lines(vocab_, vocab_tokens());
    config_ = tmp_.file("config.json");
    std::ofstream(config_) << kTinyConfig;
    fs::create_directories(tmp_.file("texts/sub"));
    std::ofstream(tmp_.file("texts/a.txt")) << corpus(150, 1);
    std::ofstream(tmp_.file("texts/sub/b.txt")) << corpus(150, 2);
    std::ofstream(tmp_.file("texts/skip.md")) << "not read";
    squad_ = tmp_.file("squad.json");
    std::ofstream(squad_) << squad_json().dump();
  }
  RunResult bert(const std::string& out, const std::string& args) {
    return run_program("train_bert",
                       "--vocab " + vocab_ + " --config " + config_ + " --text " + tmp_.file("texts") +
                           " --squad-contexts " + squad_ + " --seq-len 32 --batch-size 8 --threads 1 --quiet --out " +
                           tmp_.file(out) + " " + args,
                       tmp_.path);
  }
  RunResult squad(const std::string& out, const std::string& args) {
    return run_program("train_squad",
                       "--data " + squad_ + " --split-by-article 0.5 --split-seed 1 --max-seq-length 48 "
                       "--doc-stride 16 --max-query-length 12 --batch-size 4 --threads 1 --quiet --out " +
                           tmp_.file(out) + " " + args,
                       tmp_.path);
  }
  TempDir tmp_{"train_bert"};
  std::string vocab_, config_, squad_;
};

TEST_F(TrainBert, LossFallsAndWritesAHuggingFaceDirectory) {
  const auto r = bert("run", "--steps 60 --log-every 20 --lr 2e-3 --warmup-ratio 0.1 --eval-samples 8");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string out = tmp_.file("run");
  for (const char* f : {"config.json", "vocab.txt", "model.safetensors", "checkpoint.safetensors", "metrics.csv",
                        "summary.json", "report.html"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  const auto loss = csv_column(out + "/metrics.csv", "train_loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_LT(loss.back(), loss.front() - 1.0) << loss.front() << " -> " << loss.back();
  const auto s = nlohmann::json::parse(slurp(out + "/summary.json"));
  EXPECT_EQ(s["steps_done"], 60);
  EXPECT_GT(s["train_sequences_per_second"].get<double>(), 0);
  EXPECT_GT(s["test_accuracy"].get<double>(), 0.05);  // a random guess over 108 tokens is ~0.01
  const auto m = models::load_bert_for_masked_lm(out);
  EXPECT_EQ(m->bert->config.hidden_size, 32);
}

TEST_F(TrainBert, ResumeEqualsAnUninterruptedRunBitForBit) {
  const std::string args = "--steps 12 --log-every 3 --accum 2 --whole-word --eval-samples 4";
  ASSERT_EQ(bert("full", args).code, 0);
  const auto first = bert("split", args + " --stop-after 2");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(tmp_.file("split/summary.json")))["steps_done"], 6);
  const auto second = bert("split", args + " --resume " + tmp_.file("split/checkpoint.safetensors"));
  ASSERT_EQ(second.code, 0) << second.err;
  const SafetensorsFile a = load_safetensors(tmp_.file("full/model.safetensors"));
  const SafetensorsFile b = load_safetensors(tmp_.file("split/model.safetensors"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (const auto& [name, t] : a.tensors)
    EXPECT_EQ(t.contiguous().to_vector<float>(), b.at(name).contiguous().to_vector<float>()) << name;
  EXPECT_EQ(csv_column(tmp_.file("full/metrics.csv"), "train_loss"), csv_column(tmp_.file("split/metrics.csv"), "train_loss"));
  // A resume with other settings is refused.
  expect_one_sentence(bert("split", "--steps 15 --log-every 3 --accum 2 --whole-word --resume " +
                                        tmp_.file("split/checkpoint.safetensors")),
                      "was written by another run");
}

// train_squad --qat --resume: the observers' ranges travel in checkpoint.safetensors, so 8 steps
// at once equal 2 + 2 + 4 over two resumes — one while the observers still run (step 2 of 3
// observed steps), one after they froze — in every weight, every range and every loss.
TEST_F(TrainBert, SquadQatResumeEqualsAnUninterruptedRunBitForBit) {
  ASSERT_EQ(bert("pre", "--steps 3 --log-every 3 --eval-samples 4").code, 0);
  const std::string common = "--init " + tmp_.file("pre") +
                             " --qat --steps 8 --log-every 2 --accum 2 --lr 1e-3 --eval-samples 4 --eval-limit 2 "
                             "--eval-batch-size 2";
  const std::string args = common + " --qat-observer-steps 3";
  const auto full = squad("full", args);
  ASSERT_EQ(full.code, 0) << full.err;
  ASSERT_EQ(squad("split", args + " --stop-after 1").code, 0);
  const std::string ck = tmp_.file("split/checkpoint.safetensors");
  const auto mid = squad("split", args + " --stop-after 1 --resume " + ck);
  ASSERT_EQ(mid.code, 0) << mid.err;
  EXPECT_EQ(nlohmann::json::parse(slurp(tmp_.file("split/summary.json")))["steps_done"], 4);
  const auto last = squad("split", args + " --resume " + ck);
  ASSERT_EQ(last.code, 0) << last.err;
  for (const char* f : {"model.safetensors", "checkpoint.safetensors"}) {
    const SafetensorsFile a = load_safetensors(tmp_.file(std::string("full/") + f));
    const SafetensorsFile b = load_safetensors(tmp_.file(std::string("split/") + f));
    ASSERT_EQ(a.tensors.size(), b.tensors.size()) << f;
    size_t ranges = 0;
    for (const auto& [name, t] : a.tensors) {
      ASSERT_TRUE(b.contains(name)) << f << ": " << name;
      ranges += name.rfind("extra.qat_range.", 0) == 0;
      if (t.dtype() == DType::f32) {
        EXPECT_EQ(t.contiguous().to_vector<float>(), b.at(name).contiguous().to_vector<float>()) << f << ": " << name;
      }
    }
    // 2 layers: embeddings' LayerNorm, then per layer q, k, v, context, attention output and
    // LayerNorm, intermediate, GELU, output and LayerNorm.
    if (std::string(f) == "checkpoint.safetensors") {
      EXPECT_GT(ranges, 10u);
    }
  }
  EXPECT_EQ(csv_column(tmp_.file("full/metrics.csv"), "train_loss"), csv_column(tmp_.file("split/metrics.csv"), "train_loss"));
  EXPECT_EQ(csv_column(tmp_.file("full/metrics.csv"), "test_loss"), csv_column(tmp_.file("split/metrics.csv"), "test_loss"));
  EXPECT_EQ(slurp(tmp_.file("full/model-int8-static.finch")), slurp(tmp_.file("split/model-int8-static.finch")));
  EXPECT_NE(last.out.find("AGREE"), std::string::npos) << last.out;
  // The ranges are needed: a run without --qat, or with other observer settings, is refused.
  const std::string plain = "--init " + tmp_.file("pre") + " --steps 8 --log-every 2 --accum 2 --lr 1e-3 --resume " + ck;
  expect_one_sentence(squad("other", plain), "extra.qat_range.");
  expect_one_sentence(squad("other", common + " --qat-observer-steps 2 --resume " + ck), "was written by another run");
  expect_one_sentence(squad("other", common + " --qat-observer-steps 0"), "--qat-observer-steps 0");
}

TEST_F(TrainBert, SquadFineTunesFromPretrainedAndFromScratch) {
  ASSERT_EQ(bert("pre", "--steps 6 --log-every 3 --eval-samples 4").code, 0);
  const auto r = squad("qa", "--init " + tmp_.file("pre") + " --steps 8 --log-every 4 --lr 1e-3 --eval-samples 6");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("held-out 9 questions"), std::string::npos) << r.out;
  const std::string out = tmp_.file("qa");
  const auto s = nlohmann::json::parse(slurp(out + "/summary.json"));
  EXPECT_EQ(s["train_questions"], 9);
  EXPECT_EQ(s["test_questions"], 9);
  EXPECT_GE(s["f1"].get<double>(), 0);
  const auto preds = nlohmann::json::parse(slurp(out + "/predictions.json"));
  EXPECT_EQ(preds.size(), 9u);
  // The held-out questions are exactly those of the held-out articles.
  const auto ex = data::parse_squad(squad_json().dump(), "tiny");
  const auto split = apps::split_by_article(ex, 0.5, 1);
  for (size_t i = 0; i < ex.size(); ++i) EXPECT_EQ(preds.contains(ex[i].id), !split[i]) << ex[i].id;
  const auto qa = models::load_bert_for_question_answering(out);
  EXPECT_EQ(qa->bert->config.num_hidden_layers, 2);
  const auto inf = run_program("infer_squad", "--model " + out + " --data " + squad_ +
                                                  " --max-seq-length 48 --doc-stride 16 --max-query-length 12 --threads 1",
                               tmp_.path);
  EXPECT_EQ(inf.code, 0) << inf.err;
  // From a pretraining checkpoint (a run stopped early): the same encoder as the directory's.
  const auto ck = squad("from_ckpt", "--init " + tmp_.file("pre/checkpoint.safetensors") + " --vocab " + vocab_ +
                                         " --steps 1 --lr 1e-12 --warmup-ratio 1 --eval-limit 1");
  ASSERT_EQ(ck.code, 0) << ck.err;
  const SafetensorsFile pre = load_safetensors(tmp_.file("pre/model.safetensors"));
  const SafetensorsFile from_ck = load_safetensors(tmp_.file("from_ckpt/model.safetensors"));
  // Step 0 of a warm-up has lr 0, so the encoder is exactly the checkpoint's.
  EXPECT_EQ(pre.at("bert.encoder.layer.1.output.dense.weight").to_vector<float>(),
            from_ck.at("bert.encoder.layer.1.output.dense.weight").to_vector<float>());
  expect_one_sentence(squad("z", "--init " + squad_ + " --vocab " + vocab_ + " --steps 1"), "squad.json");
  // From random initialisation (a vocabulary and a size instead of --init).
  const auto scratch = squad("scratch", "--vocab " + vocab_ + " --config " + config_ + " --steps 4 --log-every 2");
  ASSERT_EQ(scratch.code, 0) << scratch.err;
  EXPECT_TRUE(fs::exists(tmp_.file("scratch/model.safetensors")));
}

TEST_F(TrainBert, BadInputIsOneSentence) {
  expect_one_sentence(bert("x", "--text " + tmp_.file("missing.txt") + " --steps 1"), "no such file or folder");
  std::ofstream(tmp_.file("empty.txt")) << "  \n";
  expect_one_sentence(run_program("train_bert", "--vocab " + vocab_ + " --text " + tmp_.file("empty.txt") +
                                                    " --steps 1 --quiet --out " + tmp_.file("y"),
                                  tmp_.path),
                      "the file is empty");
  expect_one_sentence(run_program("train_bert", "--vocab " + vocab_ + " --steps 1 --out " + tmp_.file("y"), tmp_.path),
                      "no text to pretrain on");
  std::ofstream(tmp_.file("bad.json")) << R"({"vocab_size": 108, "hidden_size": 30, "num_attention_heads": 4})";
  expect_one_sentence(run_program("train_bert", "--vocab " + vocab_ + " --config " + tmp_.file("bad.json") + " --text " +
                                                    tmp_.file("texts") + " --steps 1 --out " + tmp_.file("y"),
                                  tmp_.path),
                      "bad.json");
  std::ofstream(tmp_.file("v.json")) << R"({"vocab_size": 30522, "hidden_size": 32, "num_attention_heads": 2})";
  expect_one_sentence(run_program("train_bert", "--vocab " + vocab_ + " --config " + tmp_.file("v.json") + " --text " +
                                                    tmp_.file("texts") + " --steps 1 --out " + tmp_.file("y"),
                                  tmp_.path),
                      "vocab_size is 30522");
  expect_one_sentence(run_program("train_squad", "--data " + squad_ + " --vocab " + vocab_ + " --config " + config_ +
                                                     " --max-seq-length 100 --steps 1 --out " + tmp_.file("z"),
                                  tmp_.path),
                      "max_position_embeddings");
  expect_one_sentence(squad("z", "--steps 1"), "--vocab is required without --init");
  std::ofstream(tmp_.file("broken.json")) << "{\"version\": \"1.1\", \"data\": [";
  expect_one_sentence(run_program("train_squad", "--data " + tmp_.file("broken.json") + " --vocab " + vocab_ +
                                                     " --config " + config_ + " --max-seq-length 48 --doc-stride 16 --max-query-length 12 --out " + tmp_.file("z"),
                                  tmp_.path),
                      "broken.json");
}
