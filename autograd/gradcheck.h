// gradcheck: compares a function's backward with central finite differences in f64.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace finch {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 0;  // for the random projection of the outputs
};

struct GradcheckResult {
  bool ok = true;
  std::string message;          // the first mismatch: input, element, analytic vs numeric
  std::vector<std::string> rules;  // names of the backward rules the check went through
};

// `inputs` must be F64 tensors; those with requires_grad are checked. f returns one or more
// outputs; the check projects them onto fixed random weights R (L = Σ <out_k, R_k>) and
// compares dL/dx from backward with (L(x+eps) - L(x-eps)) / 2eps for every input element.
GradcheckResult gradcheck(const std::function<std::vector<Tensor>(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& opt = {});

}  // namespace finch
