// `finch emit-c --batch N` (compile/emit_c.h): the program re-declared for another batch. A
// program's activations carry the batch it was captured with in dim 0 of its inputs (a series
// program: the calibration batch); the runtime runs any batch, the emitted C exactly the declared
// one, so the shapes are inferred again from the inputs with dim 0 set to N, node by node, by the
// op schemas the verifier uses (ops/op_schema.h). A reshape whose recorded shape[0] is the
// input's batch follows it, as the runtime's reshape does (runtime/float_ops.cc).
#include <string>
#include <vector>

#include "compile/emit_c.h"
#include "framework/error.h"
#include "ops/op_attrs.h"
#include "ops/op_schema.h"
#include "runtime/op_table.h"

namespace finch::compile {

runtime::Graph with_batch(const runtime::Graph& g, int64_t batch, const std::string& what) {
  if (batch < 1 || batch > (int64_t(1) << 20))
    fail("emit-c: expected --batch to be a whole number from 1 to 1048576, got ", batch);
  runtime::Graph out = g;
  int64_t declared = -1;
  for (int32_t v : g.inputs) {
    const runtime::Value& x = g.values[size_t(v)];
    if (x.is_constant() || x.shape.empty()) fail(what, ": its input '", x.name, "' has no batch dimension to set");
    if (declared >= 0 && x.shape[0] != declared)
      fail(what, ": its inputs declare batches ", declared, " and ", x.shape[0], " (input '", x.name, "'); expected one batch");
    declared = x.shape[0];
    out.values[size_t(v)].shape[0] = batch;
  }
  for (runtime::Node& n : out.nodes) {
    const std::string where = what + ": " + runtime::node_where(n);
    const ops::OpSchema* schema = ops::find_op_schema(n.op);
    if (!schema) fail(where, " is not an op finch can run");
    if (n.op == "reshape" && !n.inputs.empty() && n.inputs[0] >= 0) {
      std::vector<int64_t> s = ops::read_ints(n.attrs, ops::attr::shape, where);
      const runtime::Value& src = g.values[size_t(n.inputs[0])];
      if (!s.empty() && !src.shape.empty() && s[0] == src.shape[0]) {
        s[0] = out.values[size_t(n.inputs[0])].shape[0];
        n.attrs[ops::attr::shape.name] = s;
      }
    }
    std::vector<ops::ValueType> in;
    for (int32_t v : n.inputs) {
      if (v < 0) {
        in.push_back({{}, std::nullopt, true});
        continue;
      }
      const runtime::Value& x = out.values[size_t(v)];
      in.push_back({x.shape, x.is_constant() && x.dtype == DType::f16 ? DType::f32 : x.dtype, false});
    }
    const std::vector<ops::ValueType> res = ops::infer_types(*schema, in, n.attrs, where);
    if (res.size() != n.outputs.size()) fail(where, " has ", n.outputs.size(), " outputs; expected ", res.size());
    for (size_t k = 0; k < res.size(); ++k) out.values[size_t(n.outputs[k])].shape = res[k].shape;
  }
  return out;
}

}  // namespace finch::compile
