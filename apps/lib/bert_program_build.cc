// bert_program_build.h: models/ (the checkpoint) -> compile/ (the graph, dynamic int8) -> a program.
#include "apps/lib/bert_program_build.h"

#include "compile/bert_program.h"
#include "compile/dynamic_rnn.h"
#include "framework/error.h"
#include "models/bert_io.h"
#include "runtime/program_file.h"

namespace finch::apps {

runtime::Graph bert_program_from_dir(const std::string& dir, int64_t max_seq_length, BertPrecision precision) {
  auto model = models::load_bert_for_question_answering(dir);
  model->eval();
  const models::BertConfig c = model->bert->config;  // a copy: the model is freed below
  compile::BertProgramSpec spec;
  spec.layers = c.num_hidden_layers;
  spec.heads = c.num_attention_heads;
  spec.layer_norm_eps = c.layer_norm_eps;
  spec.hidden_act = c.hidden_act;
  spec.max_seq_length = max_seq_length;
  runtime::Graph g = compile::bert_qa_program(*model, spec);
  model.reset();  // the graph holds its own copy of the weights: free the model's before quantizing
  g.meta["vocab_size"] = c.vocab_size;
  // 6 per layer and the QA head, plus one for every low-rank factorized Linear (two nodes).
  int64_t linears = 0;
  for (const runtime::Node& n : g.nodes) linears += n.op == "linear";
  if (precision == BertPrecision::int8_dynamic) {
    compile::DynamicQuantOptions o;
    o.per_row_activations = true;
    const compile::DynamicQuantReport r = compile::quantize_dynamic_graph(g, o);
    if (r.skipped != 0 || r.linear != linears)
      fail(dir, ": expected every one of the ", linears, " Linear layers in int8, found ", r.linear,
           " (", r.skipped, " left in float)");
    g.meta["precision"] = "int8-dynamic";
  }
  if (precision == BertPrecision::fp16) {
    // The weights of the Linears (input 1) and the embedding tables (input 1 of embedding): the
    // bulk of the bytes. Biases and LayerNorm parameters stay f32 (small, and read as f32).
    int64_t halved = 0;
    for (const runtime::Node& n : g.nodes) {
      if ((n.op != "linear" && n.op != "embedding") || n.inputs.size() < 2 || n.inputs[1] < 0) continue;
      runtime::Value& w = g.values[size_t(n.inputs[1])];
      if (!w.is_constant() || w.dtype != DType::f32) continue;
      w.data = w.data.to(DType::f16);
      w.dtype = DType::f16;
      ++halved;
    }
    if (halved < linears)
      fail(dir, ": expected at least the ", linears, " Linear weights in fp16, found ", halved);
    g.meta["precision"] = "fp16";
  }
  return g;
}

runtime::Graph bert_static_program_from_dir(const std::string& dir, int64_t max_seq_length,
                                            const std::vector<std::vector<Tensor>>& samples,
                                            const quant::BertStaticOptions& options) {
  const runtime::Graph fp32 = bert_program_from_dir(dir, max_seq_length, BertPrecision::fp32);
  return quant::quantize_bert_static(fp32, samples, options);
}

int64_t bert_program_max_seq(const runtime::Graph& g) { return g.values[size_t(g.inputs.at(0))].shape.at(1); }

int64_t bert_program_vocab_size(const runtime::Graph& g) { return g.meta.at("vocab_size").get<int64_t>(); }

runtime::Graph read_bert_program(const std::string& path) {
  runtime::Graph g = runtime::read_program(path);
  const auto model = g.meta.is_object() ? g.meta.find("model") : g.meta.end();
  if (model == g.meta.end() || !model->is_string() || model->get<std::string>() != "bert_qa")
    fail(path, ": expected a BERT question-answering program (meta.model \"bert_qa\", as infer_squad --save-program "
         "writes), found meta.model ", g.meta.is_object() && g.meta.contains("model") ? g.meta["model"].dump() : "absent");
  bool ok = g.inputs.size() == 3 && g.outputs.size() == 2;
  for (size_t i = 0; ok && i < 3; ++i) {
    const runtime::Value& v = g.values[size_t(g.inputs[i])];
    ok = v.dtype == DType::i64 && v.shape.size() == 2 && v.shape[1] >= 1;
  }
  for (size_t i = 0; ok && i < 2; ++i) {
    const runtime::Value& v = g.values[size_t(g.outputs[i])];
    ok = v.dtype == DType::f32 && v.shape.size() == 2;
  }
  if (!ok)
    fail(path, ": expected three I64 [B, S] inputs (input_ids, token_type_ids, attention_mask) and two f32 [B, S] "
         "outputs (start and end logits), found ", g.inputs.size(), " inputs and ", g.outputs.size(), " outputs of "
         "other types");
  const auto it = g.meta.find("vocab_size");
  if (it == g.meta.end() || !it->is_number_integer() || it->get<int64_t>() < 1)
    fail(path, ": expected meta.vocab_size, a count >= 1, found ", it == g.meta.end() ? "none" : it->dump());
  return g;
}

}  // namespace finch::apps
