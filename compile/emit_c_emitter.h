// Internals of `finch emit-c` (compile/emit_c.h): the emitter class, whose methods are split over
// compile/emit_c.cc (the CNN ops, the files' text) and compile/emit_c_rnn.cc (the static int8
// recurrent ops and the shape ops of series programs).
#pragma once

#include <cstdint>
#include <algorithm>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "compile/emit_c.h"
#include "compile/emit_c_detail.h"
#include "framework/error.h"
#include "runtime/executor.h"
#include "runtime/op_table.h"

namespace finch::quant::kernels {
struct QMatrix;
}

namespace finch::compile::emit_c_detail {

using runtime::Graph;
using runtime::Node;
using runtime::Value;

constexpr int64_t kMaxElements = (int64_t(1) << 31) - 1;  // sizes and indices are int32_t in C

// Text from the program (names, metadata) made safe inside a /* */ comment.
std::string comment_safe(const std::string& s);

class Emitter {
 public:
  Emitter(const Graph& g, std::string name, std::string what)
      : g_(g), name_(std::move(name)), what_(std::move(what)), plan_(runtime::plan_memory(g)), emitted_(g.values.size()) {}

  EmittedC run();

 private:
  const Graph& g_;
  std::string name_, what_;
  runtime::MemoryPlan plan_;
  std::vector<bool> emitted_;                 // constants already written
  std::set<std::string> kernel_set_;
  std::vector<std::string> kernel_order_;
  std::string kernels_;                       // their text, dependencies first
  std::ostringstream consts_, body_;
  int64_t const_bytes_ = 0;
  int tables_ = 0;
  int64_t int_scratch_ = 0, float_scratch_ = 0;  // accumulator planes of the convolutions (OH·OW)

  // The entry point's parameter for program input i: "input", then "input1", "input2", ...
  static std::string input_name(size_t i) { return i == 0 ? "input" : "input" + std::to_string(i); }
  [[noreturn]] void refuse(const Node& n, const std::string& why) const {
    fail(what_, ": node '", n.name, "' (", n.op, ") ", why);
  }
  const Value& val(int32_t v) const { return g_.values[size_t(v)]; }
  std::string dt(const Node& n, int32_t v) const {
    switch (val(v).dtype) {
      case DType::i8: return "i8";
      case DType::u8: return "u8";
      case DType::f32: return "f32";
      case DType::i64: if (!val(v).is_constant()) return "i64";  // sequence lengths
                       [[fallthrough]];
      case DType::f16: if (val(v).is_constant()) return "f32";  // widened at emit time
                       [[fallthrough]];
      default: refuse(n, "reads or writes '" + val(v).name + "' as " + dtype_name(val(v).dtype) +
                             "; emit-c covers I8, U8 and F32 values, I64 lengths (F16 weights)");
    }
  }
  void use(const std::string& key) {
    if (kernel_set_.count(key)) return;
    std::vector<std::string> deps;
    const std::string text = kernel_text(key, deps);
    for (const std::string& d : deps) use(d);
    kernel_set_.insert(key);
    kernel_order_.push_back(key);
    kernels_ += text;
  }
  // The C expression of value v's data: the entry point's input, a constant array or the arena.
  std::string ptr(const Node& n, int32_t v) {
    if (v < 0) return "0";
    if (val(v).is_constant()) return constant(n, v);
    const std::string t = c_type(dt(n, v));
    const auto in = std::find(g_.inputs.begin(), g_.inputs.end(), v);
    if (in != g_.inputs.end()) return input_name(size_t(in - g_.inputs.begin()));
    FINCH_CHECK(plan_.offset[size_t(v)] >= 0, "emit-c: value ", val(v).name, " has no arena offset");
    return "((" + t + "*)FINCH_AT(" + std::to_string(plan_.offset[size_t(v)]) + "))";
  }
  std::string constant(const Node& n, int32_t v);
  std::string constant_input(const Node& n, size_t i, bool optional = false) {
    if (i >= n.inputs.size() || n.inputs[i] < 0) {
      if (optional) return "0";
      refuse(n, "lacks input " + std::to_string(i));
    }
    if (!val(n.inputs[i]).is_constant())
      refuse(n, "reads '" + val(n.inputs[i]).name + "' computed at run time; emit-c needs it to be a constant");
    return ptr(n, n.inputs[i]);
  }
  std::string table(const char* type, const std::vector<std::string>& items, const std::string& what) {
    const std::string id = name_ + "_t" + std::to_string(tables_++);
    consts_ << "/* " << comment_safe(what) << " */\nstatic const " << type << " " << id << "[" << std::max<size_t>(1, items.size()) << "] = {";
    for (size_t i = 0; i < items.size(); ++i) consts_ << (i % 16 == 0 ? "\n  " : " ") << items[i] << ",";
    if (items.empty()) consts_ << "0";
    consts_ << "\n};\n";
    const_bytes_ += int64_t(items.size()) * 4;
    return id;
  }
  std::string ints(const std::vector<int64_t>& v, const std::string& what) {
    std::vector<std::string> s;
    for (int64_t x : v) s.push_back(int_literal(x));
    return table("int32_t", s, what);
  }
  std::string floats(const std::vector<float>& v, const std::string& what) {
    std::vector<std::string> s;
    for (float x : v) s.push_back(float_literal(x));
    return table("float", s, what);
  }
  int64_t numel(int32_t v) const { return shape_numel(val(v).shape); }
  struct Act {
    float s;
    int32_t z;
    int64_t qmin, qmax;
  };
  Act act(const Node& n, int32_t v) const {
    const auto& q = val(v).quant;
    if (!q) refuse(n, "reads or writes '" + val(v).name + "' without quantization parameters");
    if (q->scale.size() != 1 || q->zero_point.size() != 1)
      refuse(n, "reads or writes '" + val(v).name + "' quantized per channel; emit-c needs per-tensor activations");
    return {q->scale[0], q->zero_point[0], q->qmin, q->qmax};
  }
  std::string where(const Node& n) const { return runtime::node_where(n); }
  void call(const std::string& key, const std::string& args) { body_ << "  finch_" << key << "(" << args << ");\n"; }

  void node(const Node& n);
  // compile/emit_c_rnn.cc: the static int8 recurrent ops and the shape ops around them.
  void qlstm(const Node& n);
  void qgru(const Node& n);
  void permute(const Node& n);
  void cat(const Node& n);
  void select(const Node& n);
  void add_scalar(const Node& n);
  std::string q16_tables();               // the sigmoid/tanh tables' struct fields, emitted once
  std::string rnn_common(const Node& n, int64_t& T, int64_t& B);  // x, lengths, y, h_n pointers
  // One gate matrix's C initializers: its weight (input wi), bias (input bi; "0" when absent),
  // per-row multipliers and total shifts.
  struct GateRows {
    std::string w, b, m, s;
  };
  GateRows gate_rows(const Node& n, const quant::kernels::QMatrix& q, size_t wi, size_t bi, const std::string& tag);
  std::string sig_table_, tanh_table_;
  int64_t rnn16_ = 0, rnn8_ = 0;          // the recurrent ops' static scratch (int16, int8 elements)
  // compile/emit_c_dq.cc: text programs' qembedding and the dynamic int8 ops.
  void qembedding(const Node& n);
  void dq_linear(const Node& n);
  void dq_rnn(const Node& n);  // dq_lstm, dq_gru
  std::string row_scales(const Node& n, size_t i, int64_t rows);  // a table of one scale per row
  std::vector<float> bias_of(const Node& n, size_t i, int64_t rows);
  int64_t dqf_ = 0, dq8_ = 0;             // the dynamic ops' static scratch (f32, int8 elements)
  int refusals_ = 0;                      // NAME_run's nonzero returns: 1 lengths, 2 token ids, 4 non-finite
  void quantize(const Node& n);
  void dequantize(const Node& n);
  void qconv_or_linear(const Node& n);
  void qadd(const Node& n);
  void qclamp(const Node& n);
  void pool(const Node& n);
  void copy(const Node& n);
  void conv_or_linear(const Node& n);
  void add(const Node& n);
  void batch_norm(const Node& n);
  void softmax(const Node& n);
  std::vector<int64_t> multipliers(const Node& n, const Act& x, const Act& y, std::vector<int64_t>& shifts);
  std::string conv_struct(const Node& n, const Act& x, const Act& y, int64_t qmin, int64_t qmax);
};

}  // namespace finch::compile::emit_c_detail
