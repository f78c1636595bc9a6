// Attributes of the int8 recurrent ops that only their schema (op_schema_rnn.cc), the runtime's
// qlstm (runtime/qlstm_op.cc) and the lowering that writes them (compile/static_rnn.cc) read,
// declared once here beside op_attrs.h's (whose readers check them: ops::read_number/read_int).
#pragma once

#include "ops/op_attrs.h"

namespace finch::ops::attr {

// qlstm with a projection (w_hr): the int8 quantization of the projection's input
// m = o·tanh(c'), which no value of the program holds (it lives inside the cell); the scale is a
// positive f32, the zero point an int8 code.
inline constexpr AttrSpec m_scale{"m_scale", AttrKind::number, false, 0, 1e30};
inline constexpr AttrSpec m_zero_point{"m_zero_point", AttrKind::integer, false, -128, 127};

}  // namespace finch::ops::attr
