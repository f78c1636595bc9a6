// Truncated-SVD factorization over a module tree: candidates, rank rules, the global search and
// the in-place replacement.
#include "compress/lowrank.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_set>

#include "autograd/nn/container.h"
#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "compress/lowrank_edit.h"
#include "compress/svd.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::compress {

namespace {

struct Candidate {
  LayerDecision d;
  nn::Module* module = nullptr;
  Tensor weight, bias;
  Svd svd;
  std::vector<double> cum;  // cum[r] = Σ_{i<r} s_i²
};

bool has_module(nn::Module& model, const std::string& path) {
  for (auto& [name, m] : model.named_modules())
    if (name == path) return true;
  return false;
}

bool skipped_path(const std::string& path, const std::vector<std::string>& skip) {
  for (const auto& s : skip)
    if (path == s || (path.size() > s.size() && path.compare(0, s.size(), s) == 0 && path[s.size()] == '.'))
      return true;
  return false;
}

int64_t saving_limit(const LayerDecision& d) {  // the largest rank that still saves parameters
  return (d.out * d.fan_in - 1) / (d.out + d.fan_in);
}

int64_t energy_rank(const Candidate& c, double e) {
  const double total = c.cum.back();
  if (total <= 0) return 1;
  for (int64_t r = 1; r <= c.d.full_rank; ++r)
    if (c.cum[size_t(r)] >= e * total * (1 - 1e-12)) return r;
  return c.d.full_rank;
}

int64_t choose_rank(const Candidate& c, const LowRankOptions& o) {
  if (o.rank_fraction > 0) return std::max<int64_t>(1, std::llround(o.rank_fraction * double(c.d.full_rank)));
  if (o.energy > 0) return energy_rank(c, o.energy);
  // Per-layer compression: r·(fan_in + out) ≤ fan_in·out / c.
  return std::max<int64_t>(1, int64_t(double(c.d.out * c.d.fan_in) / (o.compression * double(c.d.out + c.d.fan_in))));
}

// The layer's parameters after factorizing at rank r (0 = left dense).
int64_t params_at(const Candidate& c, int64_t r) {
  const int64_t b = c.bias.defined() ? c.d.out : 0;
  return r == 0 ? c.d.out * c.d.fan_in + b : r * (c.d.out + c.d.fan_in) + b;
}

void check_options(const LowRankOptions& o) {
  const int rules = (o.rank_fraction != 0) + (o.energy != 0) + (o.compression != 0);
  if (rules != 1)
    fail("low-rank: expected exactly one of rank fraction, energy and compression, found ", rules);
  if (o.rank_fraction != 0 && !(o.rank_fraction > 0 && o.rank_fraction <= 1))
    fail("low-rank: expected a rank fraction in (0, 1], found ", o.rank_fraction);
  if (o.energy != 0 && !(o.energy > 0 && o.energy <= 1))
    fail("low-rank: expected a kept energy in (0, 1], found ", o.energy);
  if (o.compression != 0 && !(o.compression >= 1 && std::isfinite(o.compression)))
    fail("low-rank: expected a compression ≥ 1 (a finite number), found ", o.compression);
  if (o.global && o.compression == 0) fail("low-rank: a global target needs a compression");
}

// The candidate for module m at path (layer "" when m is neither a Linear nor a Conv2d).
Candidate describe(const std::string& path, nn::Module* m, bool linear, bool conv) {
  Candidate c;
  c.d.path = path;
  c.module = m;
  if (auto* l = dynamic_cast<nn::Linear*>(m); l && linear) {
    c.d.layer = "linear", c.d.out = l->out_features, c.d.fan_in = l->in_features;
    c.weight = l->weight, c.bias = l->bias;
  } else if (auto* cv = dynamic_cast<nn::Conv2d*>(m); cv && conv) {
    c.d.layer = "conv", c.d.out = cv->out_channels;
    c.d.fan_in = cv->in_channels / cv->options.groups * cv->kernel_size.first * cv->kernel_size.second;
    c.weight = cv->weight, c.bias = cv->bias;
    if (cv->options.groups != 1) c.d.skipped = "grouped or depthwise conv: each group is its own small matrix";
  } else {
    return c;
  }
  c.d.full_rank = std::min(c.d.out, c.d.fan_in);
  c.d.params_before = c.d.params_after = params_at(c, 0);
  return c;
}

// The weight as a matrix [out, fan_in] in f64, its SVD and the running sums of s².
void decompose(Candidate& c) {
  std::vector<double> w = c.weight.detach().to(DType::f64).contiguous().to_vector<double>();
  c.svd = svd(w, c.d.out, c.d.fan_in);
  c.cum.assign(size_t(c.d.full_rank + 1), 0.0);
  for (int64_t i = 0; i < c.d.full_rank; ++i)
    c.cum[size_t(i + 1)] = c.cum[size_t(i)] + c.svd.s[size_t(i)] * c.svd.s[size_t(i)];
}

std::vector<Candidate> candidates(nn::Module& model, const LowRankOptions& o, std::vector<LayerDecision>& left) {
  std::vector<Candidate> out;
  std::unordered_set<nn::Module*> seen, shared;
  for (auto& [path, m] : model.named_modules())
    if (!seen.insert(m).second) shared.insert(m);
  for (auto& [path, m] : model.named_modules()) {
    Candidate c = describe(path, m, o.linear, o.conv);
    if (c.d.layer.empty()) continue;
    if (c.d.skipped.empty() && skipped_path(path, o.skip)) c.d.skipped = "left dense by request";
    if (c.d.skipped.empty() && shared.count(m)) c.d.skipped = "the module is used at two places in the tree";
    if (c.d.skipped.empty() && saving_limit(c.d) < 1)
      c.d.skipped = "no rank saves parameters (fan_in·out ≤ fan_in + out)";
    if (!c.d.skipped.empty()) {
      left.push_back(c.d);
      continue;
    }
    decompose(c);
    out.push_back(std::move(c));
  }
  return out;
}

// The global rule: one kept-energy threshold e for all layers, the largest whose model size is
// within the target (size falls as e falls, so bisection finds it).
double global_energy(const std::vector<Candidate>& cs, int64_t model_params, double compression) {
  const double target = double(model_params) / compression;
  auto size_at = [&](double e) {
    int64_t p = model_params;
    for (const auto& c : cs) {
      const int64_t r = energy_rank(c, e);
      if (r <= saving_limit(c.d)) p -= params_at(c, 0) - params_at(c, r);
    }
    return double(p);
  };
  if (size_at(1e-12) > target)
    fail("low-rank: a ", compression, "× smaller model is out of reach: with every factorizable layer at rank 1 "
         "it keeps ", int64_t(size_at(1e-12)), " of ", model_params, " parameters");
  double lo = 1e-12, hi = 1;
  for (int i = 0; i < 60; ++i) {
    const double mid = 0.5 * (lo + hi);
    (size_at(mid) <= target ? lo : hi) = mid;
  }
  return lo;
}

// Fills the factorized module's two weights from the SVD: A = √S_r V_rᵀ, B = U_r √S_r.
void fill(nn::Module& factorized, const Candidate& c, int64_t r) {
  NoGradGuard no_grad;
  auto& seq = dynamic_cast<nn::Sequential&>(factorized);
  const Svd& d = c.svd;
  Tensor a = seq[0]->named_parameters(false)[0].second;  // [r, fan_in] or [r, C, KH, KW]
  Tensor b = seq[1]->named_parameters(false)[0].second;  // [out, r] or [out, r, 1, 1]
  std::vector<double> av(size_t(r * d.n)), bv(size_t(d.m * r));
  for (int64_t j = 0; j < r; ++j) {
    const double rs = std::sqrt(d.s[size_t(j)]);
    for (int64_t k = 0; k < d.n; ++k) av[size_t(j * d.n + k)] = rs * d.vt[size_t(j * d.n + k)];
    for (int64_t i = 0; i < d.m; ++i) bv[size_t(i * r + j)] = d.u[size_t(i * d.k + j)] * rs;
  }
  a.copy_(from_vector(av, a.shape()));
  b.copy_(from_vector(bv, b.shape()));
  if (c.bias.defined()) seq[1]->named_parameters(false)[1].second.copy_(c.bias.detach());
}

// Builds the rank-r module from c's SVD and puts it at c's path.
void replace_at(nn::Module& model, Candidate& c, int64_t r) {
  nn::ModulePtr f = make_factorized(*c.module, r);
  fill(*f, c, r);
  f->train(c.module->is_training());
  replace_module(model, c.d.path, f);
  c.d.rank = r;
  c.d.params_after = params_at(c, r);
  c.d.kept_energy = c.cum.back() > 0 ? c.cum[size_t(r)] / c.cum.back() : 1.0;
  c.d.discarded = std::sqrt(std::max(0.0, c.cum.back() - c.cum[size_t(r)]));
}

}  // namespace

LayerDecision factorize_module(nn::Module& model, const std::string& path, int64_t rank) {
  Candidate c = describe(path, &module_at(model, path), true, true);
  if (c.d.layer.empty())
    fail("low-rank: the module at '", path, "' is a ", c.module->type_name(), ", not a Linear or Conv2d");
  if (!c.d.skipped.empty()) fail("low-rank: the module at '", path, "' is left dense: ", c.d.skipped);
  if (rank < 1 || rank > c.d.full_rank)
    fail("low-rank: rank ", rank, " for '", path, "' is outside 1..", c.d.full_rank);
  decompose(c);
  replace_at(model, c, rank);
  return c.d;
}

LowRankResult factorize(nn::Module& model, const LowRankOptions& options) {
  check_options(options);
  for (const auto& path : options.skip)  // a typo in a skip list would silently factorize the layer
    if (path.empty() || !has_module(model, path))
      fail("low-rank: a path to leave dense, '", path, "', names no module of the model");
  LowRankResult res;
  res.params_before = model.num_parameters();
  std::vector<LayerDecision> left;
  std::vector<Candidate> cs = candidates(model, options, left);
  LowRankOptions o = options;
  if (o.global) {
    o.energy = global_energy(cs, res.params_before, o.compression);
    o.compression = 0;
  }
  for (auto& c : cs) {
    const int64_t r = std::min(choose_rank(c, o), c.d.full_rank);
    if (r > saving_limit(c.d)) {
      c.d.skipped = detail::cat("rank ", r, " of ", c.d.full_rank, " would not save parameters (r·(fan_in + out) ≥ fan_in·out)");
      left.push_back(c.d);
      continue;
    }
    replace_at(model, c, r);
    res.edits.push_back(lowrank_edit(c.d.path, r, c.d.layer));
    res.layers.push_back(c.d);
  }
  res.layers.insert(res.layers.end(), left.begin(), left.end());
  res.params_after = model.num_parameters();
  return res;
}

}  // namespace finch::compress
