// The attributes of the deployable ops and their JSON form in graphs and .finch programs: each
// attribute declared once (AttrSpec: name, kind, bounds), one to_json/from_json pair per
// attributes struct, and readers that treat every number as hostile (a program file is input).
//
// Capture (autograd/), lowering (compile/) and both runtime op tables read and write attributes
// only through here, so an attribute's name, format and bounds cannot drift between them. The
// JSON names and formats are those .finch files have always used (ops.md).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/tensor.h"
#include "ops/conv.h"
#include "ops/pool.h"

namespace finch::ops {

enum class AttrKind {
  integer,     // one integer in [lo, hi]
  int_pair,    // [a, b], both in [lo, hi]
  int_list,    // up to max_len integers, each in [lo, hi]
  boolean,     // true / false
  number,      // a finite number in [lo, hi] (integers are numbers too)
  activation,  // "none", "relu" or "relu6": the activation fused into the op
};

// One attribute: its JSON name, kind and bounds, and whether a node must carry it (an absent
// optional attribute takes the default its attributes struct declares).
struct AttrSpec {
  const char* name;
  AttrKind kind;
  bool required;
  double lo = 0, hi = 0;   // bounds of the value (of each element for lists)
  size_t max_len = 0;      // int_list only
};

// Bounds. Windows (kernel, stride, dilation, padding) past 2^16 are no real network's and would
// make index arithmetic overflow; codes (qmin/qmax) are int32 in the kernels; dims index a
// tensor of at most 64 dims; a reshape target dim is -1 (inferred) or a size the shape rules
// allow (the program reader already bounds every value's bytes).
inline constexpr int64_t kMaxWindow = int64_t(1) << 16;
inline constexpr int64_t kMaxDims = 64;
inline constexpr int64_t kMaxGroups = (int64_t(1) << 31) - 1;
inline constexpr int64_t kMaxExtent = int64_t(1) << 40;

// The attribute specs, shared by the attributes structs below and the op schema (op_schema.h).
namespace attr {
inline constexpr AttrSpec stride{"stride", AttrKind::int_pair, true, 1, double(kMaxWindow)};
inline constexpr AttrSpec padding{"padding", AttrKind::int_pair, true, 0, double(kMaxWindow)};
inline constexpr AttrSpec dilation{"dilation", AttrKind::int_pair, true, 1, double(kMaxWindow)};
inline constexpr AttrSpec groups{"groups", AttrKind::integer, false, 1, double(kMaxGroups)};
inline constexpr AttrSpec kernel{"kernel", AttrKind::int_pair, true, 1, double(kMaxWindow)};
inline constexpr AttrSpec ceil_mode{"ceil_mode", AttrKind::boolean, false};
inline constexpr AttrSpec count_include_pad{"count_include_pad", AttrKind::boolean, false};
inline constexpr AttrSpec output_size{"output_size", AttrKind::int_pair, true, 1, double(kMaxWindow)};
inline constexpr AttrSpec act{"act", AttrKind::activation, false};
inline constexpr AttrSpec qmin{"qmin", AttrKind::integer, true, -2147483648.0, 2147483647.0};
inline constexpr AttrSpec qmax{"qmax", AttrKind::integer, true, -2147483648.0, 2147483647.0};
inline constexpr AttrSpec eps{"eps", AttrKind::number, true, 0, 1e30};
inline constexpr AttrSpec training{"training", AttrKind::boolean, false};
inline constexpr AttrSpec alpha{"alpha", AttrKind::number, false, -1e30, 1e30};
inline constexpr AttrSpec value{"value", AttrKind::number, true, -1e30, 1e30};
inline constexpr AttrSpec negative_slope{"negative_slope", AttrKind::number, true, -1e30, 1e30};
inline constexpr AttrSpec dim{"dim", AttrKind::integer, true, -double(kMaxDims), double(kMaxDims)};
inline constexpr AttrSpec dims{"dims", AttrKind::int_list, true, -double(kMaxDims), double(kMaxDims), size_t(kMaxDims)};
inline constexpr AttrSpec keepdim{"keepdim", AttrKind::boolean, false};
inline constexpr AttrSpec start_dim{"start_dim", AttrKind::integer, true, -double(kMaxDims), double(kMaxDims)};
inline constexpr AttrSpec end_dim{"end_dim", AttrKind::integer, true, -double(kMaxDims), double(kMaxDims)};
inline constexpr AttrSpec shape{"shape", AttrKind::int_list, true, -1, double(kMaxExtent), size_t(kMaxDims)};
// pad: (low, high) pairs from the last dim backwards, as torch.nn.functional.pad.
inline constexpr AttrSpec pads{"pads", AttrKind::int_list, true, 0, double(kMaxWindow), size_t(2 * kMaxDims)};
// Recurrent and indexing ops (op_schema_rnn.cc): select's index (negative counts from the end),
// the recurrent ops' layout flag.
inline constexpr AttrSpec index{"index", AttrKind::integer, true, -double(kMaxExtent), double(kMaxExtent)};
inline constexpr AttrSpec batch_first{"batch_first", AttrKind::boolean, false};
// qlstm: the cell state's exponent (c = code · 2^-k_cell, docs/quantization.md §12).
inline constexpr AttrSpec k_cell{"k_cell", AttrKind::integer, true, 0, 15};
// qlstm / qgru: the reverse direction of a bidirectional layer (each sample's steps reversed).
inline constexpr AttrSpec reverse{"reverse", AttrKind::boolean, false};

// Transformer ops (op_schema_transformer.cc): attention's head count, narrow_like's dim of the
// reference input, dq_linear's per-row activation quantization (false: one scale per call).
inline constexpr AttrSpec heads{"heads", AttrKind::integer, true, 1, double(kMaxWindow)};
inline constexpr AttrSpec like_dim{"like_dim", AttrKind::integer, true, 0, double(kMaxDims - 1)};
inline constexpr AttrSpec per_row{"per_row", AttrKind::boolean, false};
// qgelu: I-BERT's integer GELU instead of the float GELU tabulated per input code.
inline constexpr AttrSpec integer{"integer", AttrKind::boolean, false};
}  // namespace attr

// Checks attribute `s` of `attrs` (present and well-formed, or absent and optional). `where`
// names the node in the error: "program.finch: node 'conv1' (conv2d)".
void check_attr(const nlohmann::json& attrs, const AttrSpec& s, const std::string& where);

// Typed reads of one attribute, checked as check_attr does; the fallback is for optional ones.
int64_t read_int(const nlohmann::json& attrs, const AttrSpec& s, const std::string& where, int64_t fallback = 0);
std::pair<int64_t, int64_t> read_pair(const nlohmann::json& attrs, const AttrSpec& s, const std::string& where);
std::vector<int64_t> read_ints(const nlohmann::json& attrs, const AttrSpec& s, const std::string& where);
bool read_bool(const nlohmann::json& attrs, const AttrSpec& s, const std::string& where, bool fallback);
double read_number(const nlohmann::json& attrs, const AttrSpec& s, const std::string& where, double fallback = 0);
// The fused activation: "none" (also when absent), "relu" or "relu6".
std::string read_activation(const nlohmann::json& attrs, const std::string& where);

// ---- attributes structs and their JSON form ----

// conv2d / qconv2d: stride, padding, dilation, groups (the fused activation is separate: a
// qconv2d folds it into its code range instead).
nlohmann::json to_json(const Conv2dParams& p);
Conv2dParams conv2d_from_json(const nlohmann::json& attrs, const std::string& where);

// max_pool2d / avg_pool2d and their int8 forms: kernel, stride, padding, ceil_mode, and for the
// average pools count_include_pad (a max pool's JSON has no count_include_pad).
enum class PoolKind { max, avg };
nlohmann::json to_json(const Pool2dParams& p, PoolKind kind);
Pool2dParams pool2d_from_json(const nlohmann::json& attrs, const std::string& where);

// adaptive_avg_pool2d / qadaptive_avg_pool2d: output_size [OH, OW].
struct AdaptivePool2dAttrs {
  int64_t oh = 1, ow = 1;
};
nlohmann::json to_json(const AdaptivePool2dAttrs& a);
AdaptivePool2dAttrs adaptive_pool2d_from_json(const nlohmann::json& attrs, const std::string& where);

// The output code range of an int8 op with its fused activation applied (qconv2d, qlinear,
// qadd): qmin <= qmax, both int32.
struct CodeRange {
  int32_t qmin = -128, qmax = 127;
};
nlohmann::json to_json(const CodeRange& r);
CodeRange code_range_from_json(const nlohmann::json& attrs, const std::string& where);

}  // namespace finch::ops
