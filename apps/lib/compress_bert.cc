// finch compress on a BERT question-answering directory (compress_model.h): structured pruning
// of heads and FFN neurons and low-rank factorization through finch prune / finch lowrank on BERT
// (bert_compress_cmd.h, SQuAD fine-tuning on the training articles), QAT through train_squad --qat,
// programs in fp32, fp16, dynamic int8 and static int8 (calibrated on training windows), each scored by its held-out
// EM/F1 on the articles train_squad holds out (squad_task.h's score_heldout), F1 being seed 004's A.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/lib/bert_compress_cmd.h"
#include "apps/lib/bert_program_build.h"
#include "apps/lib/compress_model.h"
#include "apps/lib/squad_task.h"
#include "apps/lib/squad_train.h"
#include "apps/lib/trainer.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/results.h"
#include "models/bert_io.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace finch::apps {
namespace {

namespace fs = std::filesystem;

Tensor ids_tensor(const std::vector<int32_t>& v) {
  return from_vector(std::vector<int64_t>(v.begin(), v.end()), {1, int64_t(v.size())});
}

class BertModel final : public CompressModel {
 public:
  explicit BertModel(const CompressOptions& o) : o_(o) {
    const TrainOptions& t = o.train;
    if (t.model_given || t.width_given || !t.mean.empty() || !t.std.empty() || t.limit_train > 0 || t.limit_test > 0 ||
        t.dataset != TrainOptions().dataset)
      fail(t.checkpoint, " is a BERT directory: --model, --width, --dataset, --mean, --std, --limit-train and "
           "--limit-test are for image models (BERT takes --data, --eval-limit and --fine-tune-steps)");
    if (t.data_dir.empty())
      fail("finch compress on the BERT directory ", t.checkpoint, " needs --data: a SQuAD JSON file (fine-tuned on "
           "--split-by-article of its articles, scored on the rest)");
    vocab_ = o.bert.vocab.empty() ? (fs::path(t.checkpoint) / "vocab.txt").string() : o.bert.vocab;
    const data::WordPieceTokenizer tok = data::WordPieceTokenizer::from_file(vocab_);
    config_ = models::load_bert_config(t.checkpoint + "/config.json");
    if (config_.vocab_size != tok.size())
      fail(t.checkpoint, " has vocab_size ", config_.vocab_size, " but ", vocab_, " has ", tok.size(),
           " tokens: the vocabulary does not match the checkpoint");
    if (o.bert.max_seq_length > config_.max_position_embeddings)
      fail("--max-seq-length ", o.bert.max_seq_length, " is longer than the model's max_position_embeddings (",
           config_.max_position_embeddings, ")");
    SquadSplitOptions so;
    so.fraction = o.bert.split, so.seed = o.bert.split_seed, so.eval_limit = o.bert.eval_limit;
    so.features.max_seq_length = o.bert.max_seq_length, so.features.doc_stride = o.bert.doc_stride;
    so.features.max_query_length = o.bert.max_query_length;
    squad_ = load_squad_split(t.data_dir, tok, so);
    if (squad_.heldout.empty() || squad_.train_windows.empty())
      fail(t.data_dir, ": the article split (--split-by-article ", o.bert.split, ") left no ",
           squad_.heldout.empty() ? "held-out questions to score" : "training windows to fine-tune and calibrate on");
    decode_.version_2 = squad_.version_2;
  }

  std::string metric_key() const override { return "heldout_f1"; }
  std::string metric_name() const override { return "held-out F1 (SQuAD)"; }
  nlohmann::json header() const override {
    const std::string model = "BertForQuestionAnswering (" + std::to_string(config_.num_hidden_layers) + " layers x " +
                              std::to_string(config_.hidden_size) + ")";
    return {{"model", model},
            {"dataset", fs::path(o_.train.data_dir).filename().string()},
            {"test_questions", int64_t(squad_.heldout.size())},
            {"test_set", std::to_string(squad_.heldout.size()) + " held-out questions (the articles outside "
                             "--split-by-article, as train_squad splits), windows of " +
                             std::to_string(o_.bert.max_seq_length) + " tokens"},
            {"further_metrics", nlohmann::json::object({{"heldout_exact_match", "held-out EM"}})}};
  }
  nlohmann::json settings() const override {
    const BertSquadFlags& f = o_.bert;
    return {{"data", o_.train.data_dir},         {"vocab", vocab_},
            {"split", f.split},                  {"split_seed", f.split_seed},
            {"max_seq_length", f.max_seq_length}, {"doc_stride", f.doc_stride},
            {"max_query_length", f.max_query_length}, {"eval_limit", f.eval_limit},
            {"fine_tune_steps", f.fine_tune_steps}, {"batch_size", f.batch_given ? o_.train.batch_size : 16},
            {"lr", o_.lr_given ? o_.train.lr : 0.0}, {"seed", o_.train.seed}};
  }
  std::string model_in(const std::string& dir) const override { return dir; }

  std::string run_step(const RecipeStep& st, const StepEnv& e) override {
    if (const auto* p = std::get_if<PruneStep>(&st.spec)) {
      PruneOptions po;
      po.train = step_options(e, p->lr, po.lr_given);
      po.structured = true;
      po.amount = p->amount;
      po.score = p->criterion;
      po.global = p->global;
      po.fine_tune_epochs = p->fine_tune_epochs;
      po.distill = p->distill.on, po.temperature = p->distill.temperature, po.alpha = p->distill.alpha;
      po.teacher = e.teacher;  // the uncut directory
      run_bert_prune(po, o_.bert, e.command_line);
      return e.dir;
    }
    if (const auto* l = std::get_if<LowRankStep>(&st.spec)) {
      LowRankCmdOptions lo;
      lo.train = step_options(e, l->lr, lo.lr_given);
      lo.rank_fraction = l->rank, lo.energy = l->energy, lo.compression = l->compression;
      lo.global = l->global;
      lo.skip = l->skip;
      lo.fine_tune_epochs = l->fine_tune_epochs;
      lo.distill = l->distill.on, lo.temperature = l->distill.temperature, lo.alpha = l->distill.alpha;
      lo.teacher = e.teacher;
      run_bert_lowrank(lo, o_.bert, e.command_line);
      return e.dir;
    }
    if (const auto* d = std::get_if<DistillStep>(&st.spec)) {
      BertDistillOptions bo;
      bo.train = step_options(e, d->lr, bo.lr_given);
      bo.teacher = e.teacher;  // the uncut directory
      bo.temperature = d->temperature, bo.alpha = d->alpha, bo.epochs = d->epochs;
      run_bert_distill(bo, o_.bert, e.command_line);
      return e.dir;
    }
    if (const auto* q = std::get_if<QatStep>(&st.spec)) return qat(*q, e);
    if (const auto* q = std::get_if<PtqStep>(&st.spec)) {
      create_out_dir(e.dir);
      write(q->mode == "dynamic" ? program(e.input, BertPrecision::int8_dynamic)
                                 : static_program(e.input, q->observer, q->calib_batches),
            e.dir + "/model.finch");
      write_json_file(e.dir + "/summary.json", {{"mode", q->mode}, {"observer", q->observer},
                                                {"calibration_windows", q->mode == "dynamic" ? 0 : calib_count(q->calib_batches)},
                                                {"model", e.input}});
      return e.input;
    }
    fail("finch compress: step ", st.kind, " does not apply to BERT directories");  // check_recipe_applies refused it
  }

  void compile(const CompileStep& c, const StepEnv& e, const std::string& quantized,
               const std::string& out) override {
    create_out_dir(e.dir);
    if (c.precision == "int8" && !quantized.empty()) {
      fs::copy_file(quantized, out, fs::copy_options::overwrite_existing);
      return;
    }
    write(c.precision == "fp32"   ? program(e.input, BertPrecision::fp32)
          : c.precision == "fp16" ? program(e.input, BertPrecision::fp16)
                                  : static_program(e.input, "minmax", 32),
          out);
  }

  void keep_model(const std::string& input, const std::string& dir) const override {
    for (const char* f : {"config.json", "model.safetensors"})
      fs::copy_file(fs::path(input) / f, fs::path(dir) / f, fs::copy_options::overwrite_existing);
    const fs::path v = fs::exists(fs::path(input) / "vocab.txt") ? fs::path(input) / "vocab.txt" : fs::path(vocab_);
    fs::copy_file(v, fs::path(dir) / "vocab.txt", fs::copy_options::overwrite_existing);
  }

  void measure(const std::string& dir, VariantRow& row) override {
    row.parameters = models::load_bert_for_question_answering(dir)->num_parameters();
    row.checkpoint_bytes = int64_t(fs::file_size(dir + "/model.safetensors"));
    const std::string path = dir + "/model.finch";
    runtime::Program p(read_bert_program(path), path);
    const data::SquadScore s = score_heldout(
        squad_,
        [&p](const Tensor& ids, const Tensor& types, const Tensor& mask) {
          const std::vector<Tensor> out = p.run({ids, types, mask});
          return std::pair{out[0], out[1]};
        },
        decode_, o_.bert.eval_batch_size);
    row.accuracy = s.f1 / 100;
    row.metrics["heldout_exact_match"] = s.exact / 100;
  }

  // The first held-out question's first window, all max_seq_length tokens.
  std::vector<Tensor> latency_input(const runtime::Graph&) override {
    const data::SquadFeature& f = squad_.features[squad_.heldout.front()].front();
    return {ids_tensor(f.input_ids), ids_tensor(f.token_type_ids), ids_tensor(f.attention_mask)};
  }

 private:
  // train_squad --qat on the input directory, with the split, windows and fine-tuning options of the
  // other steps: its static int8 program (checked equal to the simulation it trained, logit for
  // logit and code for code, on the first 4 held-out batches, else the step fails) becomes
  // DIR/model.finch, its QAT-trained weights DIR/qat_model.safetensors. The variant's float model
  // stays the input, as for image QAT.
  std::string qat(const QatStep& q, const StepEnv& e) {
    const BertSquadFlags& f = o_.bert;
    const TrainOptions& t = o_.train;
    SquadTrainOptions so;
    so.data_path = t.data_dir;
    so.init_dir = e.input;
    so.vocab_path = vocab_;
    so.split_fraction = f.split, so.split_seed = f.split_seed;
    so.max_seq_length = f.max_seq_length, so.doc_stride = f.doc_stride, so.max_query_length = f.max_query_length;
    so.eval_limit = f.eval_limit;
    so.eval_batch_size = f.eval_batch_size;
    so.qat = true;  // observers on for the first half of the steps, then frozen
    BertTrainOptions& b = so.train;
    b.out_dir = e.dir;
    b.seed = t.seed;
    b.threads = t.threads;
    b.batch_size = f.batch_given ? t.batch_size : 16;
    b.steps = f.fine_tune_steps;
    b.epochs = double(q.epochs);
    b.lr = q.lr > 0 ? q.lr : o_.lr_given ? t.lr : 5e-5;  // train_squad's default
    b.log_every = f.log_every;
    b.eval_samples = 4 * f.eval_batch_size;  // the windows the program is checked on
    create_out_dir(e.dir);
    run_squad_training(so, e.command_line);
    const fs::path d(e.dir);
    std::error_code ec;
    fs::remove(d / "checkpoint.safetensors", ec);  // train_squad's resume state, 3x the model
    fs::rename(d / "model-int8-static.finch", d / "model.finch");
    fs::copy_file(d / "model.safetensors", d / "qat_model.safetensors", fs::copy_options::overwrite_existing);
    return e.input;
  }

  TrainOptions step_options(const StepEnv& e, double lr, bool& lr_given) const {
    TrainOptions t = o_.train;
    t.checkpoint = e.input;
    t.out_dir = e.dir;
    lr_given = lr > 0 || o_.lr_given;
    if (lr > 0) t.lr = lr;
    return t;
  }

  // The program takes 1..max_position_embeddings tokens, as finch compile writes it.
  runtime::Graph program(const std::string& dir, BertPrecision precision) const {
    return bert_program_from_dir(dir, models::load_bert_config(dir + "/config.json").max_position_embeddings, precision);
  }

  int64_t calib_count(int64_t n) const { return std::min<int64_t>(n, int64_t(squad_.train_windows.size())); }

  // Static int8 calibrated on the first `windows` training windows (never the held-out articles).
  runtime::Graph static_program(const std::string& dir, const std::string& observer, int64_t windows) const {
    std::vector<std::vector<Tensor>> samples;
    for (int64_t i = 0; i < calib_count(windows); ++i) {
      const auto [ex, w] = squad_.train_windows[size_t(i)];
      const data::SquadFeature& f = squad_.features[ex][w];
      samples.push_back({ids_tensor(f.input_ids), ids_tensor(f.token_type_ids), ids_tensor(f.attention_mask)});
    }
    quant::BertStaticOptions so;
    so.observer = observer;
    return bert_static_program_from_dir(dir, models::load_bert_config(dir + "/config.json").max_position_embeddings,
                                        samples, so);
  }

  static void write(const runtime::Graph& g, const std::string& path) {
    runtime::Program check(g, path);  // validate before writing
    runtime::write_program(g, path);
  }

  const CompressOptions& o_;
  std::string vocab_;
  models::BertConfig config_;
  SquadSplit squad_;
  data::SquadDecodeOptions decode_;
};

}  // namespace

std::unique_ptr<CompressModel> make_bert_compress_model(const CompressOptions& o) { return std::make_unique<BertModel>(o); }

}  // namespace finch::apps
