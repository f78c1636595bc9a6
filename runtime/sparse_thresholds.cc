// The crossover table of runtime/sparse_choice.h, written by bench/bench_sparse.cc (do not edit by
// hand; rerun it): the least sparsity from which the sparse kernel beat the dense one on every
// measured shape of that kind, batch 1, 1 thread, best of 41 alternating rounds.
#include "runtime/sparse_choice.h"

namespace finch::runtime {

double sparse_crossover(bool int8, SparseShape s) {
  if (!int8) {
    // conv1x1 16->96 32x32 0.70; conv1x1 144->24 16x16 0.70; conv1x1 192->64 8x8 0.50; conv1x1 320->1280 4x4 0.70
    if (s == SparseShape::conv1x1) return 0.70;
    // conv3x3 16->16 32x32 0.70; conv3x3 32->32 16x16 0.70; conv3x3 64->64 8x8 0.80; conv3x3 64->64 7x7 0.70
    if (s == SparseShape::conv) return 0.80;
    // ffn 768->3072 128 rows 0.80; ffn 3072->768 128 rows 0.85
    if (s == SparseShape::linear) return 0.85;
    // fc 64->10 1 row 0.80; ffn 768->3072 1 row 0.95
    if (s == SparseShape::linear_row) return 0.95;
  }
  if (int8) {
    // conv1x1 16->96 32x32 never; conv1x1 144->24 16x16 0.90; conv1x1 192->64 8x8 0.90; conv1x1 320->1280 4x4 0.95
    if (s == SparseShape::conv1x1) return 2.0;  // never
    // conv3x3 16->16 32x32 0.95; conv3x3 32->32 16x16 0.95; conv3x3 64->64 8x8 0.95; conv3x3 64->64 7x7 0.90
    if (s == SparseShape::conv) return 0.95;
    // ffn 768->3072 128 rows 0.90; ffn 3072->768 128 rows 0.95
    if (s == SparseShape::linear) return 0.95;
    // fc 64->10 1 row 0.98; ffn 768->3072 1 row never
    if (s == SparseShape::linear_row) return 2.0;  // never
  }
  return 2.0;
}

}  // namespace finch::runtime
