// squad_task.h's distillation of the QA head (finch compress / prune / lowrank --distill on BERT):
// with α = 0 it is the plain start/end cross-entropy bit for bit, a teacher equal to the student
// with α = 1 costs nothing, and the mixed loss equals (D(start) + D(end)) / 2 computed here by hand
// from both models' logits, D = α·T²·mean KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·mean CE.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <vector>

#include "apps/lib/squad_task.h"
#include "framework/grad_mode.h"
#include "models/bert_config.h"
#include "tests/apps/bert_test_data.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::apps;

namespace {

// log softmax of row r of a [B, S] tensor's values, divided by T first.
std::vector<double> log_softmax_row(const std::vector<float>& v, int64_t S, int64_t r, double T) {
  std::vector<double> x(static_cast<size_t>(S), 0.0);
  double m = -1e300;
  for (int64_t j = 0; j < S; ++j) m = std::max(m, x[size_t(j)] = double(v[size_t(r * S + j)]) / T);
  double z = 0;
  for (double a : x) z += std::exp(a - m);
  for (double& a : x) a = a - m - std::log(z);
  return x;
}

// D for one head: α·T²·mean_b KL(p_t ‖ p_s) + (1 − α)·mean_b CE(s, label).
double head_loss(const Tensor& s, const Tensor& t, const std::vector<int64_t>& labels, double T, double a) {
  const int64_t B = s.size(0), S = s.size(1);
  const std::vector<float> sv = s.contiguous().to_vector<float>(), tv = t.contiguous().to_vector<float>();
  double kl = 0, ce = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto ls = log_softmax_row(sv, S, b, T), lt = log_softmax_row(tv, S, b, T), l1 = log_softmax_row(sv, S, b, 1);
    for (int64_t j = 0; j < S; ++j) kl += std::exp(lt[size_t(j)]) * (lt[size_t(j)] - ls[size_t(j)]);
    ce -= l1[size_t(labels[size_t(b)])];
  }
  return a * T * T * kl / double(B) + (1 - a) * ce / double(B);
}

}  // namespace

TEST(SquadDistill, LossIsTheMixOfBothHeadsTermsAndItsLimits) {
  finch::test::TempDir tmp("squad_distill");
  std::ofstream(tmp.file("squad.json")) << finch::test::squad_json().dump();
  const auto tok = data::WordPieceTokenizer::from_tokens(finch::test::vocab_tokens());
  SquadSplitOptions so;
  so.fraction = 0.5, so.seed = 1;
  so.features.max_seq_length = 48, so.features.doc_stride = 16, so.features.max_query_length = 12;
  const SquadSplit s = load_squad_split(tmp.file("squad.json"), tok, so);
  ASSERT_GE(s.train_windows.size(), 3u);
  const models::BertConfig c = models::parse_bert_config(finch::test::kTinyConfig, "tiny config");
  models::BertForQuestionAnswering student(c, false, 1), teacher(c, false, 2);
  student.eval(), teacher.eval();  // no dropout: the same logits in every call
  const std::vector<int64_t> samples = {0, 1, 2};
  const BertTask::Seeds seeds(samples.size(), 0);
  auto loss = [&](const QaDistill& d) { return squad_qa_task(s, student, "t", d).batch(samples, seeds).loss.item(); };

  const double plain = loss({});
  EXPECT_EQ(loss({&teacher, 2.0, 0.0}), plain);  // α = 0: the labels alone, bit for bit
  EXPECT_NEAR(loss({&student, 3.0, 1.0}), 0.0, 1e-6);  // the student as its own teacher

  // By hand from both models' logits of the same windows.
  std::vector<int64_t> ids, types, mask, st, en;
  for (int64_t k : samples) {
    const auto [e, w] = s.train_windows[size_t(k)];
    const data::SquadFeature& f = s.features[e][w];
    ids.insert(ids.end(), f.input_ids.begin(), f.input_ids.end());
    types.insert(types.end(), f.token_type_ids.begin(), f.token_type_ids.end());
    mask.insert(mask.end(), f.attention_mask.begin(), f.attention_mask.end());
    st.push_back(f.start_position), en.push_back(f.end_position);
  }
  const int64_t B = int64_t(samples.size()), S = 48;
  NoGradGuard ng;
  const auto so_ = student.forward(from_vector(ids, {B, S}), from_vector(mask, {B, S}), from_vector(types, {B, S}));
  const auto to_ = teacher.forward(from_vector(ids, {B, S}), from_vector(mask, {B, S}), from_vector(types, {B, S}));
  const double T = 2, a = 0.7;
  const double expected = (head_loss(so_.start_logits, to_.start_logits, st, T, a) +
                           head_loss(so_.end_logits, to_.end_logits, en, T, a)) / 2;
  const double got = loss({&teacher, T, a});
  EXPECT_NEAR(got, expected, 1e-5 * std::max(1.0, std::abs(expected)));
  EXPECT_GT(std::abs(got - plain), 1e-3);  // the teacher term matters
}
