// Printing tensors the way PyTorch's repr does: tensor([[1., 2.], [3., 4.]]), with summarization
// of big tensors (first and last 3 per dim) so debugging output stays readable.
#include <cmath>
#include <iomanip>
#include <ostream>
#include <sstream>

#include "framework/tensor.h"

namespace finch {

namespace {

constexpr int64_t kEdge = 3;       // items kept at each end of a summarized dim
constexpr int64_t kSummarize = 1000;  // torch's default threshold

std::string fmt_value(double v, DType t, int precision) {
  std::ostringstream os;
  if (t == DType::b8) return v != 0 ? "True" : "False";
  if (!is_floating(t)) {
    os << int64_t(v);
    return os.str();
  }
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e8) {
    os << int64_t(v) << ".";
  } else if (std::fabs(v) >= 1e8 || std::fabs(v) < 1e-4) {
    os << std::scientific << std::setprecision(precision) << v;
  } else {
    os << std::fixed << std::setprecision(precision) << v;
  }
  return os.str();
}

void print_dim(std::ostream& os, const Tensor& t, Shape& idx, size_t d, bool summarize, int indent) {
  const int64_t n = t.shape()[d];
  os << "[";
  for (int64_t i = 0; i < n; ++i) {
    if (summarize && n > 2 * kEdge && i == kEdge) {
      os << "...";
      i = n - kEdge - 1;
      os << (d + 1 == t.shape().size() ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
      continue;
    }
    idx[d] = i;
    if (d + 1 == t.shape().size()) {
      os << fmt_value(t.get(idx), t.dtype(), 4);
    } else {
      print_dim(os, t, idx, d + 1, summarize, indent + 1);
    }
    if (i + 1 < n) os << (d + 1 == t.shape().size() ? ", " : ",\n" + std::string(size_t(indent + 1), ' '));
  }
  os << "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::ostringstream os;
  os << "tensor(";
  if (dim() == 0) {
    os << fmt_value(item(), dtype(), 4);
  } else {
    Shape idx(size_t(dim()), 0);
    print_dim(os, *this, idx, 0, numel() > kSummarize, 7);
  }
  if (dtype() != DType::f32) os << ", dtype=" << dtype_name(dtype());
  if (dim() > 0 && numel() > kSummarize) os << ", shape=" << shape_str(shape());
  if (grad_fn()) os << ", grad_fn";
  else if (requires_grad()) os << ", requires_grad=True";
  os << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace finch
