// Central-difference gradient checking in f64 with a random output projection.
#include "autograd/gradcheck.h"

#include <cmath>
#include <set>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "framework/random.h"

namespace finch {

namespace {

double project(const std::vector<Tensor>& outs, const std::vector<Tensor>& weights) {
  double l = 0;
  for (size_t k = 0; k < outs.size(); ++k) {
    if (!is_floating(outs[k].dtype())) continue;
    const auto o = outs[k].to_vector<double>();
    const auto w = weights[k].to_vector<double>();
    for (size_t i = 0; i < o.size(); ++i) l += o[i] * w[i];
  }
  return l;
}

void collect_rules(const std::shared_ptr<autograd::Node>& n, std::set<autograd::Node*>& seen,
                   std::set<std::string>& names) {
  if (!n || !seen.insert(n.get()).second) return;
  if (n->name() != "accumulate_grad") names.insert(n->name());
  for (const auto& e : n->next_edges()) collect_rules(e.fn, seen, names);
}

}  // namespace

GradcheckResult gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
  GradcheckResult res;
  EnableGradGuard grad_on;
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad())
      FINCH_CHECK(x.dtype() == DType::f64, "gradcheck: inputs that require grad must be F64, got ",
                  dtype_name(x.dtype()));
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) x.set_grad(Tensor());

  std::vector<Tensor> outs = f(inputs);
  Generator gen(opt.seed + 12345);
  std::vector<Tensor> weights, roots, seeds;
  for (const Tensor& o : outs) {
    weights.push_back(randn(o.shape(), gen, DType::f64));
    if (is_floating(o.dtype()) && o.requires_grad()) {
      roots.push_back(o);
      seeds.push_back(weights.back().to(o.dtype()));
    }
  }
  if (roots.empty()) {
    res.ok = false;
    res.message = "gradcheck: no output requires grad (did the function record its backward?)";
    return res;
  }
  std::set<autograd::Node*> seen;
  std::set<std::string> names;
  for (const Tensor& r : roots) collect_rules(r.grad_fn(), seen, names);
  res.rules.assign(names.begin(), names.end());
  backward(roots, seeds);

  NoGradGuard no_grad;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    const std::vector<double> analytic =
        g.defined() ? g.to_vector<double>() : std::vector<double>(size_t(x.numel()), 0.0);
    // Perturb through a contiguous alias of x's own storage so f sees the change.
    FINCH_CHECK(x.is_contiguous(), "gradcheck: input ", k, " must be contiguous");
    double* p = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      const double orig = p[i];
      p[i] = orig + opt.eps;
      const double lp = project(f(inputs), weights);
      p[i] = orig - opt.eps;
      const double lm = project(f(inputs), weights);
      p[i] = orig;
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic[size_t(i)];
      if (!(std::fabs(a - numeric) <= opt.atol + opt.rtol * std::fabs(numeric))) {
        std::ostringstream os;
        os << "gradcheck: input " << k << " element " << i << ": analytic " << a << " vs numeric "
           << numeric << " (rules: ";
        for (auto& n : res.rules) os << n << " ";
        os << ")";
        res.ok = false;
        res.message = os.str();
        return res;
      }
    }
  }
  return res;
}

}  // namespace finch
