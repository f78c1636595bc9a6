// The fake-quant parameters of a per-row int8 weight matrix (kernels::QMatrix, symmetric narrow,
// as quantize_matrix makes it), so a simulated model puts a float weight on the deployed grid.
#pragma once

#include "kernels/qparams.h"
#include "kernels/qs8_rnn.h"

namespace finch::quant {

inline QParams row_params(const kernels::QMatrix& m) {
  QParams p;
  p.scale = m.s_w;
  p.zero_point.assign(m.s_w.size(), 0);
  p.axis = 0, p.qmin = -127, p.qmax = 127;
  return p;
}

}  // namespace finch::quant
