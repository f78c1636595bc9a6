// train_bert: corpus, masked-LM batches and the pretraining run (bert_pretrain.h).
#include "apps/lib/bert_pretrain.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>

#include "apps/lib/distributed.h"
#include "apps/lib/train_options.h"
#include "autograd/functional.h"
#include "data/squad.h"
#include "data/wordpiece.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/results.h"
#include "models/bert.h"
#include "models/bert_io.h"
#include "ops/reduce.h"
#include "train/fingerprint.h"

namespace finch::apps {

namespace fs = std::filesystem;

void add_bert_pretrain_options(CLI::App& app, BertPretrainOptions& o) {
  add_bert_train_options(app, o.train, 1e-4);
  app.add_option("--text", o.texts, "a text file (one document) or a folder of .txt files; repeatable");
  app.add_option("--squad-contexts", o.squad_contexts, "a SQuAD JSON file whose contexts are documents; repeatable");
  app.add_option("--vocab", o.vocab_path, "WordPiece vocab.txt (bert-base-uncased's)")->required();
  app.add_option("--seq-len", o.seq_len, "tokens per packed sequence, [CLS] and [SEP] included")
      ->check(CLI::Range(int64_t(3), int64_t(1) << 20));
  app.add_flag("--whole-word", o.mlm.whole_word, "select whole words (a token and its ## pieces) for masking");
  app.add_option("--mask-prob", o.mlm.select_prob, "fraction of tokens (or words) predicted")
      ->check(number_in(0, 1, "in [0, 1]"));
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, ": cannot be read (", std::strerror(errno), ")");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

}  // namespace

std::vector<std::string> read_pretraining_documents(const std::vector<std::string>& texts,
                                                    const std::vector<std::string>& squad_contexts) {
  if (texts.empty() && squad_contexts.empty())
    fail("no text to pretrain on: give --text FILE|DIR or --squad-contexts FILE (each repeatable)");
  std::vector<std::string> docs;
  for (const std::string& t : texts) {
    std::error_code ec;
    if (fs::is_directory(t, ec)) {
      std::vector<std::string> files;
      for (const auto& e : fs::recursive_directory_iterator(t, ec))
        if (e.is_regular_file() && e.path().extension() == ".txt") files.push_back(e.path().string());
      if (ec) fail("--text ", t, ": the folder cannot be listed (", ec.message(), ")");
      if (files.empty()) fail("--text ", t, ": the folder holds no .txt file");
      std::sort(files.begin(), files.end());
      std::vector<std::string> read(files.size());
      parallel_for(0, int64_t(files.size()), 16, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) read[size_t(i)] = read_file(files[size_t(i)]);
      });
      for (auto& s : read)
        if (!blank(s)) docs.push_back(std::move(s));
    } else if (fs::exists(t, ec)) {
      std::string s = read_file(t);
      if (blank(s)) fail("--text ", t, ": the file is empty (no text to pretrain on)");
      docs.push_back(std::move(s));
    } else {
      fail("--text ", t, ": no such file or folder");
    }
  }
  for (const std::string& path : squad_contexts) {
    std::set<std::string> seen;
    for (const data::SquadExample& ex : data::read_squad(path))
      if (seen.insert(ex.context).second && !blank(ex.context)) docs.push_back(ex.context);
  }
  if (docs.empty()) fail("the texts given hold no words to pretrain on");
  return docs;
}

int run_bert_pretraining(BertPretrainOptions o, const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  validate(o.train);
  o.mlm.validate();
  set_num_threads(o.train.threads);
  const data::WordPieceTokenizer tok = data::WordPieceTokenizer::from_file(o.vocab_path);
  const data::MlmVocab vocab = data::MlmVocab::from(tok);
  const models::BertConfig config = bert_config_from(o.train, tok.size(), "mini");
  // Under mpirun: the options, model size and vocabulary compared before the corpus is read.
  Fingerprint launch = bert_train_fingerprint(o.train);
  uint64_t vocab_hash = train::kFingerprintSeed;
  for (int32_t i = 0; i < int32_t(tok.size()); ++i) vocab_hash = train::fingerprint_hash(tok.token(i) + "\n", vocab_hash);
  launch.insert(launch.end(), {{"the model's config", models::bert_config_json(config)},
                               {"--vocab (hash of its tokens)", train::fingerprint_hex(vocab_hash)},
                               {"--seq-len", std::to_string(o.seq_len)},
                               {"--whole-word", o.mlm.whole_word ? "on" : "off"},
                               {"--mask-prob", std::to_string(o.mlm.select_prob)}});
  check_launch(launch, o.train.dist_timeout);
  if (o.seq_len > config.max_position_embeddings)
    fail("--seq-len ", o.seq_len, " is longer than the model's max_position_embeddings (", config.max_position_embeddings,
         ")");

  const std::vector<std::string> texts = read_pretraining_documents(o.texts, o.squad_contexts);
  std::vector<std::vector<int32_t>> docs(texts.size());
  parallel_for(0, int64_t(texts.size()), 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) docs[size_t(i)] = tok.encode_ids(texts[size_t(i)]);
  });
  int64_t tokens = 0;
  for (const auto& d : docs) tokens += int64_t(d.size());
  if (tokens == 0) fail("the texts given hold no words to pretrain on");
  std::vector<std::vector<int32_t>> seqs = data::pack_sequences(docs, o.seq_len, vocab);
  docs.clear();

  // Held out: a fixed draw (independent of --seed, so runs with different seeds score the same
  // sequences) of up to --eval-samples sequences, never more than a tenth of them.
  std::vector<int64_t> order(seqs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int64_t(i);
  Generator split_gen(0x5917);
  for (int64_t i = int64_t(order.size()) - 1; i > 0; --i)
    std::swap(order[size_t(i)], order[size_t(split_gen.below(uint64_t(i + 1)))]);
  const int64_t n_eval = std::min<int64_t>(o.train.eval_samples, int64_t(seqs.size()) / 10);
  std::vector<std::vector<int32_t>> train_seqs, eval_seqs;
  for (size_t i = 0; i < order.size(); ++i)
    (int64_t(i) < n_eval ? eval_seqs : train_seqs).push_back(std::move(seqs[size_t(order[i])]));
  std::sort(order.begin(), order.end());
  seqs.clear();

  models::BertForMaskedLM model(config, mix_seed(o.train.seed, 0xB3));
  const int64_t S = o.seq_len, H = config.hidden_size;

  // Masked-LM loss over the selected positions only (as Google's BERT gathers
  // masked_lm_positions): the vocabulary projection runs on ~15 % of the tokens.
  auto mlm_loss = [&](const std::vector<const std::vector<int32_t>*>& rows, const std::vector<uint64_t>& seeds,
                      BatchLoss& out) {
    const int64_t B = int64_t(rows.size());
    std::vector<int64_t> ids(size_t(B * S)), mask(size_t(B * S)), positions, labels;
    for (int64_t b = 0; b < B; ++b) {
      Generator g(seeds[size_t(b)]);
      const data::MlmExample ex = data::mask_tokens(*rows[size_t(b)], vocab, o.mlm, g);
      for (int64_t s = 0; s < S; ++s) {
        ids[size_t(b * S + s)] = ex.input_ids[size_t(s)];
        mask[size_t(b * S + s)] = (*rows[size_t(b)])[size_t(s)] != vocab.pad;
        if (ex.labels[size_t(s)] >= 0) {
          positions.push_back(b * S + s);
          labels.push_back(ex.labels[size_t(s)]);
        }
      }
    }
    const bool none = positions.empty();  // a batch with nothing selected still needs a graph
    if (none) positions.push_back(0), labels.push_back(0);
    const models::BertOutputs bo =
        model.bert->forward(from_vector(ids, {B, S}), from_vector(mask, {B, S}), Tensor());
    const int64_t M = int64_t(positions.size());
    Tensor h = index_select(reshape(bo.sequence_output, {B * S, H}), 0, from_vector(positions, {M}));
    h = models::bert_activation((*model.transform_dense)(h), config.hidden_act);
    h = (*model.transform_LayerNorm)(h);
    const Tensor logits = linear(h, model.bert->embeddings->word_embeddings->weight, model.bias);  // [M, V]
    const Tensor y = from_vector(labels, {M});
    out.loss = cross_entropy(logits, y);
    if (none) {
      out.loss = out.loss * 0.0;
      return;
    }
    const auto pred = ops::argmax(logits.detach(), 1).to_vector<int64_t>();
    for (int64_t i = 0; i < M; ++i) out.correct += pred[size_t(i)] == labels[size_t(i)];
    out.counted += double(M);
  };

  BertTask task;
  task.program = "train_bert";
  task.model = &model;
  task.dropout_gen = model.bert->dropout_gen.get();
  task.train_size = int64_t(train_seqs.size());
  task.batch = [&](const std::vector<int64_t>& samples, const BertTask::Seeds& seeds) {
    std::vector<const std::vector<int32_t>*> rows;
    for (int64_t i : samples) rows.push_back(&train_seqs[size_t(i)]);
    BatchLoss bl;
    mlm_loss(rows, seeds, bl);
    return bl;
  };
  // The loss is a mean over the selected tokens, whose count varies by sample: data-parallel
  // ranks weight their means by it (bert_train.h). The masks are a function of the seeds, so
  // every rank counts any rank's samples without communicating.
  task.loss_terms = [&](const std::vector<int64_t>& samples, const BertTask::Seeds& seeds) {
    double n = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      Generator g(seeds[i]);
      for (int64_t label : data::mask_tokens(train_seqs[size_t(samples[i])], vocab, o.mlm, g).labels) n += label >= 0;
    }
    return n;
  };
  if (!eval_seqs.empty())
    task.evaluate = [&] {
      double loss_sum = 0, correct = 0, counted = 0;
      const int64_t bs = o.train.batch_size;
      for (size_t b0 = 0; b0 < eval_seqs.size(); b0 += size_t(bs)) {
        std::vector<const std::vector<int32_t>*> rows;
        std::vector<uint64_t> seeds;
        for (size_t i = b0; i < std::min(eval_seqs.size(), b0 + size_t(bs)); ++i) {
          rows.push_back(&eval_seqs[i]);
          seeds.push_back(mix_seed(0xE7A1, i));  // the same masks at every evaluation
        }
        BatchLoss bl;
        mlm_loss(rows, seeds, bl);
        loss_sum += bl.loss.item() * bl.counted;  // token-weighted, as one big batch would be
        correct += bl.correct;
        counted += bl.counted;
      }
      train::EvalResult r;
      r.count = int64_t(eval_seqs.size());
      r.loss = counted > 0 ? loss_sum / counted : NAN;
      r.accuracy = counted > 0 ? correct / counted : NAN;
      return r;
    };
  task.tags = {{"format_run", "train_bert"},
               {"config", models::bert_config_json(config)},
               {"seq_len", std::to_string(o.seq_len)},
               {"whole_word", o.mlm.whole_word ? "1" : "0"},
               {"mask_prob", std::to_string(o.mlm.select_prob)},
               {"train_sequences", std::to_string(train_seqs.size())}};

  // Under mpirun: the training data (every token of every sequence) and the model compared, then
  // the reducer.
  uint64_t data_hash = train::kFingerprintSeed;
  for (const auto& q : train_seqs) data_hash = train::fingerprint_hash(q.data(), q.size() * sizeof(int32_t), data_hash);
  const std::unique_ptr<train::DataParallel> dp = start_data_parallel(
      model,
      {{"the training sequences", std::to_string(train_seqs.size()) + " of " + std::to_string(o.seq_len) + " tokens"},
       {"the training sequences' content (hash of every token)", train::fingerprint_hex(data_hash)},
       {"the held-out sequences", std::to_string(eval_seqs.size())}},
      o.train.bucket_mb, false, o.train.dist_timeout);
  task.parallel = dp.get();
  const int64_t ranks = dp ? dp->size() : 1;
  if (!o.train.quiet && writes_files())
    std::cerr << "train_bert: BERT " << config.num_hidden_layers << " x " << config.hidden_size << " ("
              << model.num_parameters() << " parameters), " << texts.size() << " documents, " << tokens
              << " tokens, " << train_seqs.size() << " training / " << eval_seqs.size() << " held-out sequences of "
              << o.seq_len << ", batch " << o.train.batch_size << " x " << o.train.accum << ", lr " << o.train.lr
              << ", " << get_num_threads() << " threads"
              << (dp ? ", " + std::to_string(ranks) + " processes (" + dist::world().backend() +
                           "), effective batch " + std::to_string(o.train.batch_size * ranks) + " x " +
                           std::to_string(o.train.accum)
                     : "")
              << "\n";
  const BertTrainResult r = run_bert_training(task, o.train);
  // Rank 0 alone writes the results.
  if (!writes_files()) return 0;

  nlohmann::json s = bert_train_summary(r, o.train);
  s["model"] = "BertForMaskedLM";
  s["dataset"] = "masked-LM pretraining";
  s["parameters"] = model.num_parameters();
  s["documents"] = int64_t(texts.size());
  s["tokens"] = tokens;
  s["seq_len"] = o.seq_len;
  s["train_samples"] = int64_t(train_seqs.size());
  s["test_samples"] = int64_t(eval_seqs.size());
  s["whole_word"] = o.mlm.whole_word;
  s["mask_prob"] = o.mlm.select_prob;
  s["distributed"] = bert_distributed_summary(dp.get(), o.train, r);
  s["test_loss"] = s.value("last_test_loss", nlohmann::json(nullptr));
  s["test_accuracy"] = s.value("last_test_acc", nlohmann::json(nullptr));
  finish_bert_run(o.train, config, model, o.vocab_path, s, r, command_line, t0);
  std::printf("train_bert: %lld of %lld steps, held-out MLM loss %.4f accuracy %.4f; model: %s (report.html)\n",
              static_cast<long long>(r.steps_done), static_cast<long long>(r.total_steps),
              s["test_loss"].is_number() ? s["test_loss"].get<double>() : NAN,
              s["test_accuracy"].is_number() ? s["test_accuracy"].get<double>() : NAN, o.train.out_dir.c_str());
  return 0;
}

}  // namespace finch::apps
