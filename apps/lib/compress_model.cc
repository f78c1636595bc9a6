// Which model kind finch compress has and which recipe steps apply to it (compress_model.h).
#include "apps/lib/compress_model.h"

#include "apps/lib/bert_compress_cmd.h"
#include "apps/lib/series_quantize_cmd.h"
#include "framework/error.h"

namespace finch::apps {

ModelKind model_kind_of(const std::string& checkpoint) {
  if (is_bert_directory(checkpoint)) return ModelKind::bert;
  if (is_sequence_checkpoint(checkpoint)) return ModelKind::series;
  return ModelKind::image;
}

const char* kind_words(ModelKind k) {
  switch (k) {
    case ModelKind::bert: return "BERT directories";
    case ModelKind::series: return "series and text models";
    default: return "image models";
  }
}

namespace {

std::string refusal(const PruneStep& p, ModelKind k) {
  if (k == ModelKind::image) return "";
  const std::string units = k == ModelKind::bert ? "attention heads and FFN neurons" : "LSTM/GRU hidden units and channels";
  if (!p.structured)
    return "field 'method' must be structured for " + std::string(kind_words(k)) + " (whole " + units +
           " go); unstructured masks are for image models";
  if (k == ModelKind::bert && p.criterion == "bn")
    return "field 'criterion' bn needs BatchNorm, and BERT has LayerNorm: use l1, l2 or taylor";
  return "";
}

std::string refusal(const LowRankStep&, ModelKind k) {
  if (k == ModelKind::series)
    return "lowrank does not apply to series and text models (their Conv1d and LSTM/GRU weights are not factorized; "
           "docs/lowrank.md)";
  return "";
}

std::string refusal(const DistillStep&, ModelKind) { return ""; }

std::string refusal(const QatStep& q, ModelKind k) {
  if (k == ModelKind::bert && q.qconfig != "int8")
    return "field 'qconfig' must be int8 for BERT (train_squad --qat trains the encoder's own static int8 scheme), "
           "found " + q.qconfig;
  if (k == ModelKind::series && q.qconfig != "int8")
    return "field 'qconfig' must be int8 for series and text models (train_series --qat trains their LSTM/GRU layers "
           "int8 per row and keeps the head float), found " + q.qconfig;
  return "";
}

std::string refusal(const PtqStep& p, ModelKind k) {
  if (k == ModelKind::bert && p.qconfig != "int8")
    return "field 'qconfig' must be int8 for BERT (the encoder's own static or dynamic int8 scheme), found " + p.qconfig;
  return "";
}

std::string refusal(const CompileStep& c, ModelKind k) {
  if (k == ModelKind::series && c.precision == "fp16")
    return "field 'precision' fp16 is for image models and BERT; series and text models compile to fp32 or int8";
  return "";
}

}  // namespace

std::string step_refusal(ModelKind k, const RecipeStep& st) {
  return std::visit([k](const auto& spec) { return refusal(spec, k); }, st.spec);
}

std::string variant_refusal(const Recipe& r, const RecipeVariant& v, const CompressModel& m, int64_t& step) {
  for (size_t i = 0; i < v.steps.size(); ++i)
    if (const std::string why = m.structure_refusal(v.steps[i]); !why.empty()) {
      step = int64_t(i + 1);
      return r.source + ": variant '" + v.name + "', step " + std::to_string(i + 1) + " (" + v.steps[i].kind +
             ") does not apply to this model: " + why;
    }
  return "";
}

void check_recipe_applies(const Recipe& r, ModelKind k) {
  for (const auto& v : r.variants)
    for (size_t i = 0; i < v.steps.size(); ++i)
      if (const std::string why = step_refusal(k, v.steps[i]); !why.empty())
        fail(r.source, ": variant '", v.name, "', step ", i + 1, " (", v.steps[i].kind, ") does not apply to the ",
             k == ModelKind::bert ? "BERT directory" : "series/text model", " given: ", why);
}

}  // namespace finch::apps
