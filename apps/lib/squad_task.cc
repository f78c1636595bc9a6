// SQuAD windows, the QA loss task and the held-out score (squad_task.h).
#include "apps/lib/squad_task.h"

#include <algorithm>
#include <map>

#include "apps/lib/squad_train.h"
#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "ops/reduce.h"
#include "train/distill.h"

namespace finch::apps {

namespace {

// input_ids, token_type_ids, attention_mask [B, S] of the windows `rows`.
std::vector<Tensor> window_batch(const std::vector<const data::SquadFeature*>& rows, int64_t S) {
  std::vector<int64_t> ids, types, mask;
  for (const data::SquadFeature* f : rows) {
    ids.insert(ids.end(), f->input_ids.begin(), f->input_ids.end());
    types.insert(types.end(), f->token_type_ids.begin(), f->token_type_ids.end());
    mask.insert(mask.end(), f->attention_mask.begin(), f->attention_mask.end());
  }
  const int64_t B = int64_t(rows.size());
  return {from_vector(ids, {B, S}), from_vector(types, {B, S}), from_vector(mask, {B, S})};
}

// transformers' BertForQuestionAnswering loss: (CE(start) + CE(end)) / 2 over the windows; an
// answer outside a window points at [CLS] (position 0), as the features already say.
BatchLoss qa_loss(models::BertForQuestionAnswering& model, const std::vector<const data::SquadFeature*>& rows,
                  int64_t S, const QaDistill& distill = {}) {
  const std::vector<Tensor> in = window_batch(rows, S);
  std::vector<int64_t> st, en;
  for (const data::SquadFeature* f : rows) st.push_back(f->start_position), en.push_back(f->end_position);
  const int64_t B = int64_t(rows.size());
  const auto qo = model.forward(in[0], in[2], in[1]);
  BatchLoss out;
  const Tensor start = from_vector(st, {B}), end = from_vector(en, {B});
  if (distill.teacher) {
    const models::BertQAOutputs t = [&] {
      NoGradGuard ng;
      distill.teacher->eval();
      return distill.teacher->forward(in[0], in[2], in[1]);
    }();
    const double T = distill.temperature, a = distill.alpha;
    out.loss = (train::distillation_loss(qo.start_logits, t.start_logits, start, T, a) +
                train::distillation_loss(qo.end_logits, t.end_logits, end, T, a)) * 0.5;
  } else {
    out.loss = (cross_entropy(qo.start_logits, start) + cross_entropy(qo.end_logits, end)) * 0.5;
  }
  const auto ps = ops::argmax(qo.start_logits.detach(), 1).to_vector<int64_t>();
  const auto pe = ops::argmax(qo.end_logits.detach(), 1).to_vector<int64_t>();
  for (int64_t b = 0; b < B; ++b) out.correct += ps[size_t(b)] == st[size_t(b)] && pe[size_t(b)] == en[size_t(b)];
  out.counted = double(B);
  return out;
}

}  // namespace

SquadSplit load_squad_split(const std::string& path, const data::WordPieceTokenizer& tok, const SquadSplitOptions& o) {
  data::validate(o.features);
  SquadSplit s;
  s.features_options = o.features;
  s.examples = data::read_squad(path);
  const std::vector<bool> is_train = split_by_article(s.examples, o.fraction, o.seed);
  for (size_t i = 0; i < s.examples.size(); ++i) (is_train[i] ? s.train : s.heldout).push_back(i);
  if (o.eval_limit > 0 && int64_t(s.heldout.size()) > o.eval_limit) s.heldout.resize(size_t(o.eval_limit));
  for (const auto& ex : s.examples) s.version_2 = s.version_2 || ex.is_impossible;
  s.features.resize(s.examples.size());
  parallel_for(0, int64_t(s.examples.size()), 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      s.features[size_t(i)] = data::make_squad_features(s.examples[size_t(i)], i, tok, o.features);
  });
  for (size_t i : s.train)
    for (size_t f = 0; f < s.features[i].size(); ++f) s.train_windows.emplace_back(i, f);
  if (s.train_windows.empty()) fail(path, ": the training articles give no windows to fine-tune on");
  return s;
}

data::SquadScore score_questions(const std::vector<data::SquadExample>& examples,
                                 const std::vector<std::vector<data::SquadFeature>>& features,
                                 const std::vector<size_t>& which, int64_t S, const QaLogits& forward,
                                 const data::SquadDecodeOptions& d, int64_t batch,
                                 std::vector<std::pair<std::string, std::string>>* answers) {
  NoGradGuard ng;
  std::map<std::string, std::string> predictions;
  std::vector<data::SquadExample> scored;
  for (size_t i : which) {
    const auto& fs = features[i];
    std::vector<std::vector<float>> starts(fs.size()), ends(fs.size());
    for (size_t b0 = 0; b0 < fs.size(); b0 += size_t(batch)) {
      const size_t b1 = std::min(fs.size(), b0 + size_t(batch));
      std::vector<const data::SquadFeature*> rows;
      for (size_t f = b0; f < b1; ++f) rows.push_back(&fs[f]);
      const std::vector<Tensor> in = window_batch(rows, S);
      const auto [sl, el] = forward(in[0], in[1], in[2]);
      const auto st = sl.contiguous().to_vector<float>(), en = el.contiguous().to_vector<float>();
      for (size_t f = b0; f < b1; ++f) {
        const auto off = ptrdiff_t((f - b0) * size_t(S));
        starts[f].assign(st.begin() + off, st.begin() + off + S);
        ends[f].assign(en.begin() + off, en.begin() + off + S);
      }
    }
    std::vector<data::SquadFeatureLogits> fl;
    for (size_t f = 0; f < fs.size(); ++f) fl.push_back({fs[f].offsets, starts[f], ends[f]});
    std::string answer = data::decode_squad_answer(examples[i].context, fl, d);
    if (answers) answers->emplace_back(examples[i].id, answer);
    predictions[examples[i].id] = std::move(answer);
    scored.push_back(examples[i]);
  }
  return data::evaluate_squad(scored, predictions, d.version_2);
}

data::SquadScore score_heldout(const SquadSplit& s, const QaLogits& forward, const data::SquadDecodeOptions& d,
                               int64_t batch) {
  return score_questions(s.examples, s.features, s.heldout, s.max_seq_length(), forward, d, batch);
}

BertTask squad_qa_task(const SquadSplit& s, models::BertForQuestionAnswering& model, const std::string& program,
                       const QaDistill& distill) {
  BertTask task;
  task.program = program;
  task.model = &model;
  task.dropout_gen = model.bert->dropout_gen.get();
  task.train_size = int64_t(s.train_windows.size());
  task.batch = [&s, &model, distill](const std::vector<int64_t>& samples, const BertTask::Seeds&) {
    std::vector<const data::SquadFeature*> rows;
    for (int64_t k : samples) {
      const auto [e, f] = s.train_windows[size_t(k)];
      rows.push_back(&s.features[e][f]);
    }
    return qa_loss(model, rows, s.max_seq_length(), distill);
  };
  task.tags = {{"format_run", program}};
  return task;
}

void accumulate_squad_gradients(const SquadSplit& s, models::BertForQuestionAnswering& model, int64_t windows,
                                int64_t batch) {
  const int64_t n = std::min<int64_t>(windows, int64_t(s.train_windows.size()));
  for (int64_t b0 = 0; b0 < n; b0 += batch) {
    std::vector<const data::SquadFeature*> rows;
    for (int64_t k = b0; k < std::min(n, b0 + batch); ++k) {
      const auto [e, f] = s.train_windows[size_t(k)];
      rows.push_back(&s.features[e][f]);
    }
    backward(qa_loss(model, rows, s.max_seq_length()).loss);
  }
}

}  // namespace finch::apps
