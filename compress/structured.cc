// Structured pruning (see structured.h): per-channel scores from the layers a class touches, the
// selection per group or global, and the physical removal through module_surgery.h.
#include "compress/structured.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "autograd/nn/norm.h"
#include "autograd/nn/rnn.h"
#include "compress/module_surgery.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compress {
namespace {

std::map<std::string, nn::Module*> modules_by_path(nn::Module& model) {
  std::map<std::string, nn::Module*> m;
  for (auto& [path, mod] : model.named_modules()) m[path] = mod;
  return m;
}

// The tensors whose rows (dim 0) carry the channels of a producing axis or a BatchNorm. For an
// LSTM/GRU's units these are its gate rows: row g·H + j belongs to unit j (rows fold modulo H).
std::vector<Tensor> row_tensors(nn::Module* m, const LayerAxis& ax, bool with_bias) {
  const Role r = ax.role;
  std::vector<Tensor> ts;
  if (r == Role::rnn_unit) {
    const auto& w = dynamic_cast<nn::RNNBase*>(m)->weights[size_t(ax.index)];
    ts = {w.w_ih, w.w_hh};
    for (const Tensor* b : {&w.b_ih, &w.b_hh})
      if (with_bias && b->defined()) ts.push_back(*b);
    return ts;
  }
  if (r == Role::conv_out || r == Role::depthwise) {
    auto* c = dynamic_cast<nn::Conv2d*>(m);
    ts = {c->weight};
    if (with_bias && c->bias.defined()) ts.push_back(c->bias);
  } else if (r == Role::linear_out) {
    auto* l = dynamic_cast<nn::Linear*>(m);
    ts = {l->weight};
    if (with_bias && l->bias.defined()) ts.push_back(l->bias);
  } else if (r == Role::batch_norm) {
    auto* b = dynamic_cast<nn::BatchNorm*>(m);
    if (b->weight.defined()) ts.push_back(b->weight);
    if (with_bias && b->bias.defined()) ts.push_back(b->bias);
  }
  return ts;
}

// Per-channel sums of f(w, g) over the rows of `t` (g = 0 without a gradient); row r is channel
// r mod acc.size() (gate rows of a recurrent layer), otherwise channel r.
template <typename F>
void add_rows(const Tensor& t, std::vector<double>& acc, F f) {
  const std::vector<double> w = t.to_vector<double>();
  const Tensor gt = t.grad();
  const std::vector<double> g = gt.defined() ? gt.to_vector<double>() : std::vector<double>(w.size(), 0.0);
  const size_t rows = size_t(t.size(0)), per = w.size() / rows;
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < per; ++k) acc[r % acc.size()] += f(w[r * per + k], g[r * per + k]);
}

bool consumes(Role r) { return r == Role::conv_in || r == Role::linear_in || r == Role::rnn_in; }

// A recurrent module keeps one hidden_size for all its layers and directions, so it must lose
// the same number of units from each: k = (its units `removed` chose) / (its layer-directions),
// at most what every layer-direction can give (prunable, and leaving min_keep), the k weakest of
// each. Units of different layer-directions are unrelated, so the choice stays per layer-direction.
void balance_recurrent_units(const ChannelGroups& groups, const std::vector<double>& scores,
                             std::vector<int32_t>& removed) {
  // module -> layer-direction -> its prunable unit classes
  std::map<std::string, std::map<int64_t, std::vector<int32_t>>> units;
  std::map<std::string, int64_t> layer_dirs, room;
  for (const LayerAxis& a : groups.axes)
    if (a.role == Role::rnn_unit) {
      ++layer_dirs[a.module];
      const int64_t r = a.size - a.min_keep;
      room[a.module] = room.count(a.module) ? std::min(room[a.module], r) : r;
    }
  std::vector<std::string> module_of(groups.classes.size());
  for (size_t c = 0; c < groups.classes.size(); ++c) {
    if (groups.classes[c].frozen) continue;
    for (const auto& [a, ch] : groups.classes[c].members)
      if (groups.axes[size_t(a)].role == Role::rnn_unit) {
        units[groups.axes[size_t(a)].module][groups.axes[size_t(a)].index].push_back(int32_t(c));
        module_of[c] = groups.axes[size_t(a)].module;
      }
  }
  std::vector<int32_t> kept_choice;
  std::map<std::string, int64_t> taken;
  for (int32_t c : removed)
    if (module_of[size_t(c)].empty()) kept_choice.push_back(c);
    else ++taken[module_of[size_t(c)]];
  for (const auto& [module, per_dir] : units) {
    int64_t k = taken[module] / layer_dirs[module];
    k = std::min(k, room[module]);
    if (int64_t(per_dir.size()) < layer_dirs[module]) k = 0;  // a layer-direction with every unit frozen
    for (const auto& [index, cls] : per_dir) k = std::min(k, int64_t(cls.size()));
    for (const auto& [index, cls] : per_dir) {
      std::vector<int32_t> c = cls;
      std::sort(c.begin(), c.end(), [&](int32_t a, int32_t b) {
        return scores[size_t(a)] != scores[size_t(b)] ? scores[size_t(a)] < scores[size_t(b)] : a < b;
      });
      kept_choice.insert(kept_choice.end(), c.begin(), c.begin() + k);
    }
  }
  removed = std::move(kept_choice);
}

void check_amount(double amount) {
  if (!(amount >= 0.0 && amount < 1.0))
    fail("structured pruning: the amount is the fraction of channels to remove, in [0, 1); got ", amount);
}

}  // namespace

Score parse_score(const std::string& s) {
  if (s == "l1") return Score::l1;
  if (s == "l2") return Score::l2;
  if (s == "bn") return Score::bn;
  if (s == "taylor") return Score::taylor;
  fail("pruning score: expected l1, l2, bn or taylor, found '", s, "'");
}

std::vector<double> channel_scores(nn::Module& model, const ChannelGroups& groups, Score score) {
  NoGradGuard ng;
  const auto mods = modules_by_path(model);
  // Per axis and channel: Σ|w|, Σw², Σg·w of its producing rows, and |γ| of a BatchNorm.
  struct Stats {
    std::vector<double> l1, l2, gw, gamma;
  };
  std::vector<Stats> st(groups.axes.size());
  bool any_grad = false;
  for (size_t a = 0; a < groups.axes.size(); ++a) {
    const LayerAxis& ax = groups.axes[a];
    const size_t n = size_t(ax.size);
    st[a] = {std::vector<double>(n), std::vector<double>(n), std::vector<double>(n), std::vector<double>(n)};
    nn::Module* m = mods.at(ax.module);
    if (consumes(ax.role)) continue;
    for (const Tensor& t : row_tensors(m, ax, /*with_bias=*/true)) {
      any_grad = any_grad || t.grad().defined();
      add_rows(t, st[a].gw, [](double w, double g) { return g * w; });
    }
    for (const Tensor& t : row_tensors(m, ax, /*with_bias=*/false)) {
      if (ax.role == Role::batch_norm) {
        add_rows(t, st[a].gamma, [](double w, double) { return std::fabs(w); });
        continue;
      }
      add_rows(t, st[a].l1, [](double w, double) { return std::fabs(w); });
      add_rows(t, st[a].l2, [](double w, double) { return w * w; });
    }
  }
  if (score == Score::taylor && !any_grad)
    fail("taylor pruning scores need gradients: run forward and backward on a few batches first");
  std::vector<double> out(groups.classes.size(), 0.0);
  for (size_t c = 0; c < groups.classes.size(); ++c) {
    const ChannelClass& cl = groups.classes[c];
    if (cl.frozen) continue;
    double l1 = 0, l2 = 0, gw = 0, gamma = 0;
    int bns = 0;
    for (const auto& [a, ch] : cl.members) {
      l1 += st[size_t(a)].l1[size_t(ch)];
      l2 += st[size_t(a)].l2[size_t(ch)];
      gw += st[size_t(a)].gw[size_t(ch)];
      gamma += st[size_t(a)].gamma[size_t(ch)];
      bns += groups.axes[size_t(a)].role == Role::batch_norm;
    }
    switch (score) {
      case Score::l1: out[c] = l1; break;
      case Score::l2: out[c] = std::sqrt(l2); break;
      case Score::bn: out[c] = bns ? gamma : l1; break;
      case Score::taylor: out[c] = gw * gw; break;
    }
  }
  return out;
}

std::vector<double> taylor_scores(nn::Module& model, const ChannelGroups& groups,
                                  const std::function<void(nn::Module&)>& accumulate) {
  if (!accumulate) fail("taylor pruning scores need a pass over data: give the batches to score on");
  model.zero_grad();
  accumulate(model);
  std::vector<double> s = channel_scores(model, groups, Score::taylor);
  model.zero_grad();
  return s;
}

std::vector<int32_t> select_channels(const ChannelGroups& groups, const std::vector<double>& scores,
                                     const StructuredOptions& o) {
  check_amount(o.amount);
  FINCH_CHECK(scores.size() == groups.classes.size(), "select_channels: ", scores.size(), " scores for ",
              groups.classes.size(), " classes");
  for (double s : scores)
    if (!std::isfinite(s)) fail("structured pruning: a channel score is ", s, " (weights or gradients hold NaN/inf)");
  std::vector<int32_t> removed;
  // Ascending score, ties by class index, so equal scores prune the same channels every run.
  auto by_score = [&](const std::vector<double>& key) {
    return [&key](int32_t a, int32_t b) { return key[size_t(a)] != key[size_t(b)] ? key[size_t(a)] < key[size_t(b)] : a < b; };
  };
  if (!o.global) {
    for (const ChannelGroup& g : groups.groups) {
      std::vector<int32_t> c = g.classes;
      const auto n = int64_t(c.size());
      const int64_t r = std::min(int64_t(std::floor(o.amount * double(n) + 1e-9)), n - 1);
      std::sort(c.begin(), c.end(), by_score(scores));
      removed.insert(removed.end(), c.begin(), c.begin() + r);
    }
  } else {
    std::vector<double> norm(scores.size(), 0.0);
    std::vector<int32_t> all, group_of(scores.size(), -1);
    for (size_t gi = 0; gi < groups.groups.size(); ++gi) {
      const auto& g = groups.groups[gi];
      double mean = 0;
      for (int32_t c : g.classes) mean += scores[size_t(c)];
      mean /= double(g.classes.size());
      for (int32_t c : g.classes) {
        norm[size_t(c)] = mean > 0 ? scores[size_t(c)] / mean : 1.0;
        group_of[size_t(c)] = int32_t(gi);
        all.push_back(c);
      }
    }
    std::sort(all.begin(), all.end(), by_score(norm));
    const auto target = int64_t(std::floor(o.amount * double(all.size()) + 1e-9));
    std::vector<int64_t> taken(groups.groups.size(), 0);
    for (int32_t c : all) {
      if (int64_t(removed.size()) >= target) break;
      const auto gi = size_t(group_of[size_t(c)]);
      if (taken[gi] + 1 >= int64_t(groups.groups[gi].classes.size())) continue;  // never a whole group
      ++taken[gi];
      removed.push_back(c);
    }
  }
  balance_recurrent_units(groups, scores, removed);
  std::sort(removed.begin(), removed.end());
  return removed;
}

nlohmann::json remove_channels(nn::Module& model, const ChannelGroups& groups, const std::vector<int32_t>& removed) {
  const auto mods = modules_by_path(model);
  // Which (axis, channel) go.
  std::vector<std::vector<char>> gone(groups.axes.size());
  for (size_t a = 0; a < groups.axes.size(); ++a) gone[a].assign(size_t(groups.axes[a].size), 0);
  for (int32_t c : removed) {
    FINCH_CHECK(c >= 0 && size_t(c) < groups.classes.size() && !groups.classes[size_t(c)].frozen,
                "remove_channels: class ", c);
    for (const auto& [a, ch] : groups.classes[size_t(c)].members) gone[size_t(a)][size_t(ch)] = 1;
  }
  // Per module: its axes' kept channels.
  struct Plan {
    const LayerAxis* out = nullptr;
    const LayerAxis* in = nullptr;
    Keep keep_out, keep_in;
  };
  std::map<std::string, Plan> plans;
  // Per recurrent module: every layer-direction's kept units, layer 0's kept inputs.
  struct RnnPlan {
    std::map<int64_t, Keep> units;
    Keep in;
    bool changed = false;
  };
  std::map<std::string, RnnPlan> rnn_plans;
  for (size_t a = 0; a < groups.axes.size(); ++a) {
    Keep k;
    for (int64_t i = 0; i < groups.axes[a].size; ++i)
      if (!gone[a][size_t(i)]) k.push_back(i);
    const Role r = groups.axes[a].role;
    if (r == Role::rnn_unit || r == Role::rnn_in) {
      RnnPlan& p = rnn_plans[groups.axes[a].module];
      p.changed = p.changed || int64_t(k.size()) != groups.axes[a].size;
      if (r == Role::rnn_unit) p.units[groups.axes[a].index] = std::move(k);
      else if (groups.axes[a].index == 0) p.in = std::move(k);
      continue;  // layer l >= 1's inputs follow layer l − 1's units (resize_rnn)
    }
    if (int64_t(k.size()) == groups.axes[a].size) continue;
    Plan& p = plans[groups.axes[a].module];
    if (r == Role::conv_in || r == Role::linear_in) {
      p.in = &groups.axes[a];
      p.keep_in = std::move(k);
    } else {
      p.out = &groups.axes[a];
      p.keep_out = std::move(k);
    }
  }
  nlohmann::json modules = nlohmann::json::object();
  for (auto& [path, p] : plans) {
    nn::Module* m = mods.at(path);
    if (auto* c = dynamic_cast<nn::Conv2d*>(m)) {
      const bool dw = c->options.groups != 1;
      if (!p.out) p.keep_out = keep_first(c->out_channels);
      if (dw) p.keep_in = p.keep_out;
      else if (!p.in) p.keep_in = keep_first(c->in_channels);
      resize_conv2d(*c, p.keep_out, p.keep_in);
      modules[path] = {{"type", "Conv2d"}, {"in_channels", c->in_channels}, {"out_channels", c->out_channels},
                       {"groups", c->options.groups}};
    } else if (auto* b = dynamic_cast<nn::BatchNorm*>(m)) {
      resize_batch_norm(*b, p.keep_out);
      modules[path] = {{"type", b->type_name()}, {"num_features", b->num_features}};
    } else if (auto* l = dynamic_cast<nn::Linear*>(m)) {
      const int64_t block = p.in ? p.in->block : 1;
      if (!p.out) p.keep_out = keep_first(l->out_features);
      if (!p.in) p.keep_in = keep_first(l->in_features);
      resize_linear(*l, p.keep_out, p.keep_in, block);
      modules[path] = {{"type", "Linear"}, {"in_features", l->in_features}, {"out_features", l->out_features}};
    } else {
      FINCH_CHECK(false, "remove_channels: module '", path, "' is a ", m->type_name());
    }
  }
  for (auto& [path, p] : rnn_plans) {
    if (!p.changed) continue;
    auto* r = dynamic_cast<nn::RNNBase*>(mods.at(path));
    FINCH_CHECK(r, "remove_channels: module '", path, "' is not recurrent");
    const int64_t D = r->bidirectional ? 2 : 1;
    std::vector<Keep> units;
    for (int64_t i = 0; i < r->num_layers * D; ++i)
      units.push_back(p.units.count(i) ? p.units[i] : keep_first(r->hidden_size));
    if (p.in.empty()) p.in = keep_first(r->input_size);
    resize_rnn(*r, units, p.in);
    modules[path] = {{"type", r->type_name()}, {"input_size", r->input_size}, {"hidden_size", r->hidden_size}};
  }
  model.zero_grad();
  return {{"kind", "prune_channels"}, {"modules", modules}};
}

void zero_channels(nn::Module& model, const ChannelGroups& groups, const std::vector<int32_t>& removed) {
  NoGradGuard ng;
  const auto mods = modules_by_path(model);
  for (int32_t c : removed)
    for (const auto& [a, ch] : groups.classes[size_t(c)].members) {
      const LayerAxis& ax = groups.axes[size_t(a)];
      if (consumes(ax.role)) continue;
      for (const Tensor& t : row_tensors(mods.at(ax.module), ax, /*with_bias=*/true)) {
        FINCH_CHECK(t.is_contiguous() && t.dtype() == DType::f32, "zero_channels: ", ax.module);
        const int64_t per = t.numel() / t.size(0);
        for (int64_t row = ch; row < t.size(0); row += ax.size) {  // every gate's row of a unit
          float* p = t.data<float>() + row * per;
          std::fill(p, p + per, 0.0f);
        }
      }
    }
}

StructuredResult prune_structured(nn::Module& model, const Tensor& example, const StructuredOptions& o,
                                  const std::function<void(nn::Module&)>& accumulate) {
  check_amount(o.amount);
  StructuredResult r;
  const ChannelGroups groups = analyze_channels(model, example);
  r.parameters_before = model.num_parameters();
  r.prunable_channels = groups.prunable_channels();
  const std::vector<double> scores =
      o.score == Score::taylor ? taylor_scores(model, groups, accumulate) : channel_scores(model, groups, o.score);
  const std::vector<int32_t> removed = select_channels(groups, scores, o);
  r.removed_channels = int64_t(removed.size());
  r.edit = remove_channels(model, groups, removed);
  r.parameters_after = model.num_parameters();
  return r;
}

}  // namespace finch::compress
