// Internals of `finch emit-c` (compile/emit_c.h) shared by its two files: the C text of each
// kernel the emitted source may hold (emit_c_kernels.cc) and number formatting for C literals.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace finch::compile::emit_c_detail {

// The C type of a code or float dtype name used in kernel keys: "i8" -> "int8_t", "u8" ->
// "uint8_t", "f32" -> "float".
const char* c_type(const std::string& short_dtype);

// A kernel key names one emitted C function: its base and the short dtypes it is written for,
// e.g. "qconv2d_i8_i8" (x i8, y i8), "qadd_i8_u8_i8", "quantize_i8", "conv2d_f32". Helpers
// ("requantize", "conv_t", "act") are keys too. `deps` gets the keys this one needs emitted
// before it; the return value is the C text (a function or typedef ending in a blank line).
std::string kernel_text(const std::string& key, std::vector<std::string>& deps);
// The recurrent and shape kernels of series programs (compile/emit_c_kernels_rnn.cc): "qlstm",
// "qgru", "qrnn_common", "permute", "copy_blocks", "add_scalar_i64"; empty for any other key.
std::string rnn_kernel_text(const std::string& key, std::vector<std::string>& deps);
// The text-program and dynamic int8 kernels (compile/emit_c_kernels_dq.cc): "qembedding_i64",
// "qembedding_i32", "dq_common", "dq_linear", "hwy_math", "dq_rnn"; empty for any other key.
std::string dq_kernel_text(const std::string& key, std::vector<std::string>& deps);

// The C literal of a float that reads back as the same bits: the shortest of %.6g .. %.9g
// that round-trips, with an 'f' suffix ("0.0123f", "-3.0f", "1e-05f"). Finite values only.
std::string float_literal(float v);
// An int32 literal that is valid C and C++ for every value (INT32_MIN written as an expression).
std::string int_literal(int64_t v);

// The main file: reads raw inputs from a file (any number of records), runs NAME_run on each,
// prints each output as one line, optionally writes the raw outputs (temp file + rename) and
// times --repeat runs. in_type/out_type are C types of the entry point's element types.
// in_types: one C type per program input (the entry point takes them in order, then the output).
std::string main_text(const std::string& name, const std::vector<std::string>& in_types, const std::string& out_type);

}  // namespace finch::compile::emit_c_detail
