// The op schema of the recurrent models' ops (op_schema.h): lstm and gru (one layer, one or two
// directions, optional lengths), embedding, and the indexing ops their graphs need (permute,
// select). Hidden sizes and directions are not attributes: they are read off the weights, and
// every weight's shape is checked against the others here, so a hostile file's sizes give one
// sentence before any kernel runs.
#include <algorithm>

#include "framework/checked_math.h"
#include "framework/error.h"
#include "ops/op_attrs_rnn.h"
#include "ops/op_schema.h"

namespace finch::ops {

namespace {

using json = nlohmann::json;
using Types = std::vector<ValueType>;

bool present(const Types& in, size_t i) { return i < in.size() && !in[i].absent; }

void want_shape(const Types& in, size_t i, const Shape& s, const char* what, const std::string& where) {
  if (in[i].shape != s) fail(where, ": expected ", what, " of shape ", shape_str(s), ", found ", shape_str(in[i].shape));
}

// Inputs of lstm (gates 4, with w_hr) and gru (gates 3): x, lengths?, then the forward
// direction's w_ih, w_hh, b_ih?, b_hh? [, w_hr?], then the same for the reverse direction.
// dq_lstm keeps its four inputs per direction and puts the projections last (w_hr? at 10,
// w_hr_reverse? at 11), so programs written before it had them read unchanged.
struct RnnLayout {
  int64_t gates;
  bool proj;
  bool int8 = false;  // dq_lstm / dq_gru: w_ih, w_hh (and w_hr) int8 codes (biases f32)
  size_t per_dir() const { return proj && !int8 ? 5 : 4; }
  size_t hr(size_t d) const { return int8 ? 10 + d : 2 + d * 5 + 4; }  // w_hr's index, direction d
};

// Shape inference of lstm / gru: y [B, T, D·P] (batch_first) or [T, B, D·P], h_n [D, B, P] and
// for the LSTM c_n [D, B, H].
Types rnn_infer(const Types& in, const json& a, const std::string& where, const RnnLayout& L) {
  const bool batch_first = read_bool(a, attr::batch_first, where, false);
  if (in[0].shape.size() != 3)
    fail(where, ": expected an input ", batch_first ? "[B, T, IN]" : "[T, B, IN]", ", found shape ",
         shape_str(in[0].shape));
  if (in[0].dtype && *in[0].dtype != DType::f32)
    fail(where, ": expected an f32 input, found ", dtype_name(*in[0].dtype));
  const int64_t B = batch_first ? in[0].shape[0] : in[0].shape[1], T = batch_first ? in[0].shape[1] : in[0].shape[0];
  const int64_t IN = in[0].shape[2];
  if (B < 1 || T < 1 || IN < 1) fail(where, ": expected a non-empty input, found shape ", shape_str(in[0].shape));
  if (present(in, 1)) {
    want_shape(in, 1, {B}, "lengths (one per sample)", where);
    if (in[1].dtype && *in[1].dtype != DType::i64)
      fail(where, ": expected lengths of dtype i64, found ", dtype_name(*in[1].dtype));
  }
  const Shape& w_ih = in[2].shape;
  if (w_ih.size() != 2 || w_ih[0] < L.gates || w_ih[0] % L.gates != 0 || w_ih[1] != IN)
    fail(where, ": expected w_ih of shape [", L.gates, "·H, ", IN, "] (H >= 1), found ", shape_str(w_ih));
  const int64_t G = w_ih[0], H = G / L.gates;
  const size_t wr = L.hr(0);
  int64_t P = H;
  if (L.proj && present(in, wr)) {
    const Shape& s = in[wr].shape;
    if (s.size() != 2 || s[1] != H || s[0] < 1 || s[0] >= H)
      fail(where, ": expected w_hr of shape [P, ", H, "] with 1 <= P < ", H, ", found ", shape_str(s));
    P = s[0];
  }
  const size_t n = L.per_dir();
  const bool two = present(in, 2 + n);
  for (size_t k = 2 + n; !two && k < 2 + 2 * n; ++k)
    if (present(in, k)) fail(where, ": input ", k, " of the reverse direction is present but its w_ih_reverse is absent");
  if (L.proj && L.int8 && present(in, L.hr(1)) != (two && present(in, L.hr(0))))
    fail(where, ": expected input ", L.hr(1), " (w_hr_reverse) ",
         two && present(in, L.hr(0)) ? "present, as w_hr is in a two-direction layer"
                                     : "absent: it needs w_hr and a reverse direction");
  for (size_t d = 0; d < (two ? 2u : 1u); ++d) {
    const size_t o = 2 + d * n;
    const char* dir = d ? " (reverse)" : "";
    for (size_t k = 0; k < n; ++k) {
      // Each reverse weight is present exactly when its forward twin is: one layer's two
      // directions have the same parameters.
      if (d == 1 && present(in, o + k) != present(in, 2 + k))
        fail(where, ": expected input ", o + k, " (the reverse direction's twin of input ", 2 + k, ") to be ",
             present(in, 2 + k) ? "present" : "absent", " as its twin is");
      if (!present(in, o + k)) continue;
      const DType want = L.int8 && k < 2 ? DType::i8 : DType::f32;
      if (in[o + k].dtype && *in[o + k].dtype != want)
        fail(where, ": expected input ", o + k, " of dtype ", dtype_name(want), ", found ", dtype_name(*in[o + k].dtype));
    }
    if (!present(in, o) || !present(in, o + 1)) fail(where, ": expected the weights w_ih and w_hh", dir);
    want_shape(in, o, {G, IN}, d ? "w_ih_reverse" : "w_ih", where);
    want_shape(in, o + 1, {G, P}, d ? "w_hh_reverse" : "w_hh", where);
    if (present(in, o + 2)) want_shape(in, o + 2, {G}, d ? "b_ih_reverse" : "b_ih", where);
    if (present(in, o + 3)) want_shape(in, o + 3, {G}, d ? "b_hh_reverse" : "b_hh", where);
    if (L.proj && present(in, L.hr(d))) {
      want_shape(in, L.hr(d), {P, H}, d ? "w_hr_reverse" : "w_hr", where);
      const DType want = L.int8 ? DType::i8 : DType::f32;
      if (in[L.hr(d)].dtype && *in[L.hr(d)].dtype != want)
        fail(where, ": expected input ", L.hr(d), " (", d ? "w_hr_reverse" : "w_hr", ") of dtype ", dtype_name(want),
             ", found ", dtype_name(*in[L.hr(d)].dtype));
    }
  }
  const int64_t D = two ? 2 : 1;
  const int64_t DP = checked_mul(D, P, (where + ": the output width").c_str());
  Types out = {{batch_first ? Shape{B, T, DP} : Shape{T, B, DP}, DType::f32}, {{D, B, P}, DType::f32}};
  if (L.gates == 4) out.push_back({{D, B, H}, DType::f32});
  return out;
}

Types lstm_infer(const Types& in, const json& a, const std::string& w) { return rnn_infer(in, a, w, {4, true}); }
Types gru_infer(const Types& in, const json& a, const std::string& w) { return rnn_infer(in, a, w, {3, false}); }

Types dq_lstm_infer(const Types& in, const json& a, const std::string& w) { return rnn_infer(in, a, w, {4, true, true}); }
Types dq_gru_infer(const Types& in, const json& a, const std::string& w) { return rnn_infer(in, a, w, {3, false, true}); }

// qlstm: x i8 codes [B, T, IN] / [T, B, IN], lengths?, w_ih i8 [4H, IN], w_hh i8 [4H, HO], b_ih?,
// b_hh? i32 [4H], w_hr? i8 [P, H] (a projection: HO = P, and m_scale/m_zero_point are required;
// HO = H without) -> y codes [B, T, HO] / [T, B, HO] and h_n codes [1, B, HO] (one direction:
// what kernels::QLstm runs).
// qgru: the same with w_ih i8 [3H, IN], w_hh i8 [3H, H], b_ih?, b_hh? i32 [3H] and no k_cell
// (kernels::QGru). `gates`: 4 (LSTM) or 3 (GRU).
Types qrnn_infer(int64_t gates, const Types& in, const json& a, const std::string& where) {
  const bool batch_first = read_bool(a, attr::batch_first, where, false);
  if (gates == 4) read_int(a, attr::k_cell, where);
  const Shape& x = in[0].shape;
  if (x.size() != 3 || x[0] < 1 || x[1] < 1 || x[2] < 1)
    fail(where, ": expected an input ", batch_first ? "[B, T, IN]" : "[T, B, IN]", ", found shape ", shape_str(x));
  if (in[0].dtype && *in[0].dtype != DType::i8) fail(where, ": expected i8 input codes, found ", dtype_name(*in[0].dtype));
  const int64_t B = batch_first ? x[0] : x[1], T = batch_first ? x[1] : x[0], IN = x[2];
  if (present(in, 1)) {
    want_shape(in, 1, {B}, "lengths (one per sample)", where);
    if (in[1].dtype && *in[1].dtype != DType::i64) fail(where, ": expected lengths of dtype i64, found ", dtype_name(*in[1].dtype));
  }
  const Shape& w = in[2].shape;
  if (w.size() != 2 || w[0] < gates || w[0] % gates != 0 || w[1] != IN)
    fail(where, ": expected w_ih of shape [", gates, "·H, ", IN, "] (H >= 1), found ", shape_str(w));
  const int64_t G = w[0], H = G / gates;
  int64_t HO = H;
  if (gates == 4 && present(in, 6)) {
    const Shape& wr = in[6].shape;
    if (wr.size() != 2 || wr[0] < 1 || wr[0] >= H || wr[1] != H)
      fail(where, ": expected w_hr of shape [P, ", H, "] with 1 <= P < ", H, ", found ", shape_str(wr));
    if (in[6].dtype && *in[6].dtype != DType::i8)
      fail(where, ": expected w_hr of dtype i8, found ", dtype_name(*in[6].dtype));
    if (!a.contains(attr::m_scale.name) || !a.contains(attr::m_zero_point.name))
      fail(where, ": expected the attributes m_scale and m_zero_point with the projection w_hr");
    if (!(read_number(a, attr::m_scale, where) > 0)) fail(where, ": expected a positive m_scale");
    read_int(a, attr::m_zero_point, where);
    HO = wr[0];
  }
  want_shape(in, 3, {G, HO}, "w_hh", where);
  for (size_t k = 2; k < 6; ++k) {
    if (!present(in, k)) continue;
    const DType want = k < 4 ? DType::i8 : DType::i32;
    if (in[k].dtype && *in[k].dtype != want)
      fail(where, ": expected input ", k, " of dtype ", dtype_name(want), ", found ", dtype_name(*in[k].dtype));
    if (k >= 4) want_shape(in, k, {G}, k == 4 ? "b_ih" : "b_hh", where);
  }
  const Shape y = batch_first ? Shape{B, T, HO} : Shape{T, B, HO};
  return {{y, std::nullopt}, {{1, B, HO}, std::nullopt}};
}
Types qlstm_infer(const Types& in, const json& a, const std::string& where) { return qrnn_infer(4, in, a, where); }
Types qgru_infer(const Types& in, const json& a, const std::string& where) { return qrnn_infer(3, in, a, where); }

Types embedding_rule(const Types& in, const std::string& where, DType weight) {
  if (in[1].dtype && *in[1].dtype != weight)
    fail(where, ": expected a weight of dtype ", dtype_name(weight), ", found ", dtype_name(*in[1].dtype));
  if (in[0].dtype && *in[0].dtype != DType::i64 && *in[0].dtype != DType::i32)
    fail(where, ": expected token ids of dtype i64 or i32, found ", dtype_name(*in[0].dtype));
  const Shape& w = in[1].shape;
  if (w.size() != 2 || w[0] < 1 || w[1] < 1) fail(where, ": expected a weight [V, E], found ", shape_str(w));
  if (in[0].shape.size() + 1 > size_t(kMaxDims))
    fail(where, ": expected ids of at most ", kMaxDims - 1, " dims, found ", in[0].shape.size());
  Shape y = in[0].shape;
  y.push_back(w[1]);
  checked_numel(y, (where + ": the output").c_str());
  return {{y, DType::f32}};
}
Types embedding_infer(const Types& in, const json&, const std::string& w) { return embedding_rule(in, w, DType::f32); }
Types qembedding_infer(const Types& in, const json&, const std::string& w) { return embedding_rule(in, w, DType::i8); }

Types permute_infer(const Types& in, const json& a, const std::string& where) {
  const std::vector<int64_t> d = read_ints(a, attr::dims, where);
  const Shape& x = in[0].shape;
  std::vector<bool> seen(x.size(), false);
  bool ok = d.size() == x.size();
  for (size_t i = 0; ok && i < d.size(); ++i) {
    ok = d[i] >= 0 && d[i] < int64_t(x.size()) && !seen[size_t(d[i])];
    if (ok) seen[size_t(d[i])] = true;
  }
  if (!ok) fail(where, ": attribute 'dims' is ", shape_str(d), "; expected a permutation of the ", x.size(), " dims of the input");
  Shape y(x.size());
  for (size_t i = 0; i < d.size(); ++i) y[i] = x[size_t(d[i])];
  return {{y, in[0].dtype}};
}

Types select_infer(const Types& in, const json& a, const std::string& where) {
  const Shape& x = in[0].shape;
  const int64_t r = int64_t(x.size()), d = read_int(a, attr::dim, where), i = read_int(a, attr::index, where);
  if (d < 0 || d >= r) fail(where, ": attribute 'dim' is ", d, "; expected a dim of the ", r, "-d input");
  if (i < -x[size_t(d)] || i >= x[size_t(d)])
    fail(where, ": attribute 'index' is ", i, "; expected an index into dim ", d, " of size ", x[size_t(d)]);
  Shape y = x;
  y.erase(y.begin() + d);
  return {{y, in[0].dtype}};
}

// mask_steps / mean_steps: x [B, ..., T] and lengths i64 [B] (one per sample).
void step_lengths_rule(const Types& in, const std::string& where) {
  if (in[0].shape.size() < 2 || in[0].shape[0] < 1 || in[0].shape.back() < 1)
    fail(where, ": expected an input [B, ..., T] with B, T >= 1, found shape ", shape_str(in[0].shape));
  if (!present(in, 1)) return;  // mean_steps without lengths: every sample has all T steps
  want_shape(in, 1, {in[0].shape[0]}, "lengths (one per sample)", where);
  if (in[1].dtype && *in[1].dtype != DType::i64)
    fail(where, ": expected lengths of dtype i64, found ", dtype_name(*in[1].dtype));
}
Types mask_steps_infer(const Types& in, const json&, const std::string& where) {
  step_lengths_rule(in, where);
  return {{in[0].shape, in[0].dtype}};
}
Types mean_steps_infer(const Types& in, const json&, const std::string& where) {
  step_lengths_rule(in, where);
  if (in[0].shape.size() != 3) fail(where, ": expected an input [B, C, T], found shape ", shape_str(in[0].shape));
  if (in[0].dtype && *in[0].dtype != DType::f32)
    fail(where, ": expected an f32 input, found ", dtype_name(*in[0].dtype));
  return {{{in[0].shape[0], in[0].shape[1]}, DType::f32}};
}

}  // namespace

std::vector<OpSchema> rnn_op_schemas() {
  const std::vector<InputSpec> lstm_in = {
      {"x"},         {"lengths", true},   {"w_ih"},          {"w_hh"},          {"b_ih", true},          {"b_hh", true},
      {"w_hr", true}, {"w_ih_reverse", true}, {"w_hh_reverse", true}, {"b_ih_reverse", true}, {"b_hh_reverse", true},
      {"w_hr_reverse", true}};
  const std::vector<InputSpec> gru_in = {
      {"x"},          {"lengths", true},      {"w_ih"},       {"w_hh"}, {"b_ih", true}, {"b_hh", true},
      {"w_ih_reverse", true}, {"w_hh_reverse", true}, {"b_ih_reverse", true}, {"b_hh_reverse", true}};
  const std::vector<InputSpec> dq_in = {
      {"x"},          {"lengths", true},      {"w_ih"},       {"w_hh"}, {"b_ih", true}, {"b_hh", true},
      {"w_ih_reverse", true}, {"w_hh_reverse", true}, {"b_ih_reverse", true}, {"b_hh_reverse", true}};
  std::vector<InputSpec> dq_lstm_in = dq_in;
  dq_lstm_in.push_back({"w_hr", true});
  dq_lstm_in.push_back({"w_hr_reverse", true});
  return {
      {"qlstm", {{"x"}, {"lengths", true}, {"w_ih"}, {"w_hh"}, {"b_ih", true}, {"b_hh", true}, {"w_hr", true}}, 4,
       false, {attr::batch_first, attr::k_cell, attr::reverse, attr::m_scale, attr::m_zero_point}, qlstm_infer},
      {"qgru", {{"x"}, {"lengths", true}, {"w_ih"}, {"w_hh"}, {"b_ih", true}, {"b_hh", true}}, 4, false,
       {attr::batch_first, attr::reverse}, qgru_infer},
      {"dq_lstm", dq_lstm_in, 4, false, {attr::batch_first}, dq_lstm_infer},
      {"dq_gru", dq_in, 4, false, {attr::batch_first}, dq_gru_infer},
      {"qembedding", {{"ids"}, {"weight"}}, 2, false, {}, qembedding_infer},
      {"lstm", lstm_in, 4, false, {attr::batch_first}, lstm_infer},
      {"gru", gru_in, 4, false, {attr::batch_first}, gru_infer},
      {"embedding", {{"ids"}, {"weight"}}, 2, false, {}, embedding_infer},
      {"permute", {{"x"}}, 1, false, {attr::dims}, permute_infer},
      {"select", {{"x"}}, 1, false, {attr::dim, attr::index}, select_infer},
      {"mask_steps", {{"x"}, {"lengths"}}, 2, false, {}, mask_steps_infer},
      {"mean_steps", {{"x"}, {"lengths", true}}, 1, false, {}, mean_steps_infer},
  };
}

}  // namespace finch::ops
