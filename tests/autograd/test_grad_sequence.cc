// Finite-difference gradient checks for the sequence primitives: lstm_cell and
// scaled_dot_product_attention (small F64 shapes; gradcheck is O(numel) forward calls).
#include "autograd/functional.h"
#include "gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;

std::vector<Tensor> lstm_inputs(int64_t B, int64_t IN, int64_t H, bool b_ih, bool b_hh, uint64_t s) {
  return {leaf({B, IN}, s), leaf({B, H}, s + 1), leaf({B, H}, s + 2), leaf({4 * H, IN}, s + 3, 0.5),
          leaf({4 * H, H}, s + 4, 0.5), b_ih ? leaf({4 * H}, s + 5) : Tensor(),
          b_hh ? leaf({4 * H}, s + 6) : Tensor()};
}

std::vector<Tensor> lstm_both(const std::vector<Tensor>& in) {
  auto [h, c] = lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5], in[6]);
  return {h, c};
}

// gradcheck only accepts defined inputs, so undefined biases are dropped from the list and
// re-inserted inside the function.
std::vector<Tensor> defined_only(const std::vector<Tensor>& in) {
  std::vector<Tensor> out;
  for (const Tensor& t : in)
    if (t.defined()) out.push_back(t);
  return out;
}

GRADCHECK_TEST(lstm_cell, BothBiases) {
  check_grad("lstm_cell", lstm_both, lstm_inputs(2, 3, 2, true, true, 10));
}

GRADCHECK_TEST(lstm_cell, NoBias) {
  check_grad("lstm_cell",
             [](const std::vector<Tensor>& in) {
               auto [h, c] = lstm_cell(in[0], in[1], in[2], in[3], in[4]);
               return std::vector<Tensor>{h, c};
             },
             defined_only(lstm_inputs(3, 2, 3, false, false, 20)));
}

GRADCHECK_TEST(lstm_cell, OnlyHiddenBiasAndOnlyHOutput) {
  // c' gets no gradient: the rule receives zeros for it.
  check_grad("lstm_cell",
             [](const std::vector<Tensor>& in) {
               return std::vector<Tensor>{lstm_cell(in[0], in[1], in[2], in[3], in[4], Tensor(), in[5]).first};
             },
             defined_only(lstm_inputs(1, 4, 3, false, true, 30)));
}

GRADCHECK_TEST(lstm_cell, OnlyCellOutputTwoSteps) {
  // Two chained steps sharing weights: gradients flow through h and c of the first step.
  check_grad("lstm_cell",
             [](const std::vector<Tensor>& in) {
               auto [h1, c1] = lstm_cell(in[0], in[1], in[2], in[3], in[4], in[5]);
               auto [h2, c2] = lstm_cell(in[0], h1, c1, in[3], in[4], in[5]);
               return std::vector<Tensor>{c2};
             },
             defined_only(lstm_inputs(2, 2, 2, true, false, 40)));
}

GRADCHECK_TEST(scaled_dot_product_attention, NoMask) {
  check_grad("scaled_dot_product_attention",
             [](const std::vector<Tensor>& in) {
               return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2])};
             },
             {leaf({2, 3, 2}, 1), leaf({2, 4, 2}, 2), leaf({2, 4, 3}, 3)});
}

GRADCHECK_TEST(scaled_dot_product_attention, CausalWithScale) {
  check_grad("scaled_dot_product_attention",
             [](const std::vector<Tensor>& in) {
               return std::vector<Tensor>{
                   scaled_dot_product_attention(in[0], in[1], in[2], Tensor(), true, 0.7)};
             },
             {leaf({1, 4, 3}, 4), leaf({1, 4, 3}, 5), leaf({1, 4, 2}, 6)});
}

GRADCHECK_TEST(scaled_dot_product_attention, KeyPaddingMaskWithFullyMaskedRow) {
  // [B=2, heads=2] with a [B, 1, 1, Lk] padding mask; item 1 has no valid key at all (its output
  // is the documented zero row, whose gradient is zero both ways).
  Tensor mask = zeros({2, 1, 1, 3}, DType::b8);
  mask.set({0, 0, 0, 0}, 1.0);
  mask.set({0, 0, 0, 1}, 1.0);
  check_grad("scaled_dot_product_attention",
             [mask](const std::vector<Tensor>& in) {
               return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2], mask)};
             },
             {leaf({2, 2, 2, 2}, 7), leaf({2, 2, 3, 2}, 8), leaf({2, 2, 3, 2}, 9)});
}

GRADCHECK_TEST(scaled_dot_product_attention, FloatMaskGetsGradient) {
  // An additive [Lq, Lk] bias broadcast over the batch (like a learned relative-position bias).
  check_grad("scaled_dot_product_attention",
             [](const std::vector<Tensor>& in) {
               return std::vector<Tensor>{scaled_dot_product_attention(in[0], in[1], in[2], in[3])};
             },
             {leaf({2, 3, 2}, 10), leaf({2, 2, 2}, 11), leaf({2, 2, 2}, 12), leaf({3, 2}, 13)});
}

}  // namespace
}  // namespace finch
