// Course example 01 (docs/course/01-tensors.md): tensors, views that share storage, and
// broadcasting — what a shape, a stride and an offset are, printed.
#include <cstdio>
#include <string>

#include "autograd/functional.h"
#include "framework/parallel.h"
#include "framework/tensor.h"

using namespace finch;

namespace {
// "[3, 4] strides [4, 1] offset 0 contiguous": the four numbers that place every element.
void describe(const char* what, const Tensor& t) {
  std::printf("%-14s shape %s strides %s offset %lld %s\n", what, shape_str(t.shape()).c_str(),
              shape_str(t.strides()).c_str(), static_cast<long long>(t.offset()),
              t.is_contiguous() ? "contiguous" : "strided");
}
}  // namespace

int main() {
  set_num_threads(1);  // the course's numbers are printed with one thread (deterministic)

  // 1. A tensor is storage + shape + strides + offset. Element (i, j) lives at
  //    offset + i*stride[0] + j*stride[1] in the storage.
  Tensor a = arange(12).reshape({3, 4});
  describe("a", a);
  std::printf("a =\n%s\n", a.str().c_str());

  // 2. Views never copy: transpose swaps strides, narrow moves the offset, expand uses stride 0.
  Tensor at = a.t();
  describe("a.t()", at);
  Tensor row1 = a.select(0, 1);
  describe("a.select(0,1)", row1);
  Tensor col2 = a.narrow(1, 2, 1);
  describe("a.narrow(1,2,1)", col2);
  std::printf("a.t() shares a's storage: %s\n", at.storage() == a.storage() ? "yes" : "no");

  // Writing through a view writes the original: that is what "no copy" means.
  row1.fill_(-1.0);
  std::printf("after a.select(0,1).fill_(-1):\n%s\n", a.str().c_str());

  // contiguous() is the one call that copies a strided view into row-major order.
  Tensor atc = at.contiguous();
  describe("a.t().contig", atc);
  std::printf("copy shares storage: %s\n", atc.storage() == a.storage() ? "yes" : "no");

  // 3. Broadcasting (NumPy rules): align shapes at the right; a dim of size 1 stretches.
  //    [3, 1] + [1, 4] -> [3, 4]: out[i][j] = col[i][0] + row[0][j].
  Tensor col = from_vector<float>({10, 20, 30}, {3, 1});
  Tensor row = from_vector<float>({1, 2, 3, 4}, {1, 4});
  Tensor sum_table = col + row;
  std::printf("[3,1] + [1,4] =\n%s\n", sum_table.str().c_str());
  // The stretch is a view with stride 0: no memory is spent on the repeated values.
  describe("row.expand", row.expand({3, 4}));

  // 4. Reductions collapse dims; keepdim keeps a size-1 dim so the result broadcasts back.
  Tensor x = arange(6).reshape({2, 3});
  Tensor m = mean(x, {1}, /*keepdim=*/true);
  std::printf("x =\n%s\nmean over dim 1 (keepdim) = %s\n", x.str().c_str(), m.str().c_str());
  Tensor centered = x - m;  // [2,3] - [2,1]: each row minus its own mean
  std::printf("x - mean =\n%s\n", centered.str().c_str());

  // 5. matmul: [2,3] @ [3,2]; the transpose view goes in without a copy.
  Tensor y = matmul(x, x.t());
  std::printf("x @ x.t() =\n%s\n", y.str().c_str());

  // 6. Bad shapes are a sentence, not a crash.
  try {
    Tensor bad = from_vector<float>({1, 2, 3}, {3}) + from_vector<float>({1, 2}, {2});
    std::printf("unexpected: %s\n", bad.str().c_str());
    return 1;
  } catch (const Error& e) {
    std::printf("[3] + [2] fails: %s\n", e.what());
  }
  return 0;
}
