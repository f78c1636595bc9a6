// Reading and writing op attributes (op_attrs.h): every value checked for type and bounds before
// it reaches a kernel, with one sentence naming the node, the attribute, what was expected and
// what was found.
#include "ops/op_attrs.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "framework/error.h"

namespace finch::ops {

namespace {

using json = nlohmann::json;

std::string bound(double v) {
  std::ostringstream s;
  if (v == std::floor(v) && std::fabs(v) < 9.2e18) s << int64_t(v);
  else s << v;
  return s.str();
}

std::string expected(const AttrSpec& s) {
  const std::string range = "[" + bound(s.lo) + ", " + bound(s.hi) + "]";
  switch (s.kind) {
    case AttrKind::integer: return "an integer in " + range;
    case AttrKind::int_pair: return "a list of 2 integers in " + range;
    case AttrKind::int_list: return "a list of at most " + std::to_string(s.max_len) + " integers in " + range;
    case AttrKind::boolean: return "true or false";
    case AttrKind::number: return "a finite number in " + range;
    case AttrKind::activation: return "\"none\", \"relu\" or \"relu6\"";
  }
  return "";
}

// The found value as JSON text, shortened: a hostile file may hold a megabyte there.
std::string shown(const json& j) {
  std::string t = j.dump();
  if (t.size() > 64) t = t.substr(0, 60) + " ...";
  return t;
}

[[noreturn]] void bad(const json& j, const AttrSpec& s, const std::string& where) {
  fail(where, ": attribute '", s.name, "' is ", shown(j), "; expected ", expected(s));
}

// An integer JSON value within [lo, hi]: signed or unsigned (2^64 - 1 parses as unsigned), never a
// float (2.0 is not an integer here, as before).
bool int_in(const json& j, const AttrSpec& s, int64_t* out) {
  if (!j.is_number_integer()) return false;
  if (j.is_number_unsigned() && j.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) return false;
  const int64_t v = j.get<int64_t>();
  if (double(v) < s.lo || double(v) > s.hi) return false;
  *out = v;
  return true;
}

const json* find(const json& attrs, const AttrSpec& s, const std::string& where) {
  if (attrs.is_object()) {
    const auto it = attrs.find(s.name);
    if (it != attrs.end()) return &*it;
  }
  if (s.required) fail(where, ": attribute '", s.name, "' is missing; expected ", expected(s));
  return nullptr;
}

std::vector<int64_t> ints_of(const json& j, const AttrSpec& s, const std::string& where, size_t count) {
  const bool shape_ok = j.is_array() && (count ? j.size() == count : j.size() <= s.max_len);
  if (!shape_ok) bad(j, s, where);
  std::vector<int64_t> v(j.size());
  for (size_t i = 0; i < j.size(); ++i)
    if (!int_in(j[i], s, &v[i])) bad(j, s, where);
  return v;
}

}  // namespace

void check_attr(const json& attrs, const AttrSpec& s, const std::string& where) {
  switch (s.kind) {
    case AttrKind::integer: read_int(attrs, s, where); break;
    case AttrKind::int_pair:
      if (find(attrs, s, where)) read_pair(attrs, s, where);
      break;
    case AttrKind::int_list:
      if (find(attrs, s, where)) read_ints(attrs, s, where);
      break;
    case AttrKind::boolean: read_bool(attrs, s, where, false); break;
    case AttrKind::number: read_number(attrs, s, where); break;
    case AttrKind::activation: read_activation(attrs, where); break;
  }
}

int64_t read_int(const json& attrs, const AttrSpec& s, const std::string& where, int64_t fallback) {
  const json* j = find(attrs, s, where);
  if (!j) return fallback;
  int64_t v = 0;
  if (!int_in(*j, s, &v)) bad(*j, s, where);
  return v;
}

std::pair<int64_t, int64_t> read_pair(const json& attrs, const AttrSpec& s, const std::string& where) {
  const json* j = find(attrs, s, where);
  if (!j) fail(where, ": attribute '", s.name, "' is missing; expected ", expected(s));
  const auto v = ints_of(*j, s, where, 2);
  return {v[0], v[1]};
}

std::vector<int64_t> read_ints(const json& attrs, const AttrSpec& s, const std::string& where) {
  const json* j = find(attrs, s, where);
  return j ? ints_of(*j, s, where, 0) : std::vector<int64_t>{};
}

bool read_bool(const json& attrs, const AttrSpec& s, const std::string& where, bool fallback) {
  const json* j = find(attrs, s, where);
  if (!j) return fallback;
  if (!j->is_boolean()) bad(*j, s, where);
  return j->get<bool>();
}

double read_number(const json& attrs, const AttrSpec& s, const std::string& where, double fallback) {
  const json* j = find(attrs, s, where);
  if (!j) return fallback;
  if (!j->is_number()) bad(*j, s, where);
  const double v = j->get<double>();
  if (!std::isfinite(v) || v < s.lo || v > s.hi) bad(*j, s, where);
  return v;
}

std::string read_activation(const json& attrs, const std::string& where) {
  const json* j = find(attrs, attr::act, where);
  if (!j) return "none";
  if (!j->is_string()) bad(*j, attr::act, where);
  const std::string a = j->get<std::string>();
  if (a != "none" && a != "relu" && a != "relu6") bad(*j, attr::act, where);
  return a;
}

// ---- attributes structs ----

json to_json(const Conv2dParams& p) {
  return {{attr::stride.name, {p.sh, p.sw}},
          {attr::padding.name, {p.ph, p.pw}},
          {attr::dilation.name, {p.dh, p.dw}},
          {attr::groups.name, p.groups}};
}

Conv2dParams conv2d_from_json(const json& attrs, const std::string& where) {
  Conv2dParams p;
  std::tie(p.sh, p.sw) = read_pair(attrs, attr::stride, where);
  std::tie(p.ph, p.pw) = read_pair(attrs, attr::padding, where);
  std::tie(p.dh, p.dw) = read_pair(attrs, attr::dilation, where);
  p.groups = read_int(attrs, attr::groups, where, 1);
  return p;
}

json to_json(const Pool2dParams& p, PoolKind kind) {
  json j = {{attr::kernel.name, {p.kh, p.kw}},
            {attr::stride.name, {p.sh, p.sw}},
            {attr::padding.name, {p.ph, p.pw}},
            {attr::ceil_mode.name, p.ceil_mode}};
  if (kind == PoolKind::avg) j[attr::count_include_pad.name] = p.count_include_pad;
  return j;
}

Pool2dParams pool2d_from_json(const json& attrs, const std::string& where) {
  Pool2dParams p;
  std::tie(p.kh, p.kw) = read_pair(attrs, attr::kernel, where);
  std::tie(p.sh, p.sw) = read_pair(attrs, attr::stride, where);
  std::tie(p.ph, p.pw) = read_pair(attrs, attr::padding, where);
  p.ceil_mode = read_bool(attrs, attr::ceil_mode, where, false);
  p.count_include_pad = read_bool(attrs, attr::count_include_pad, where, true);
  return p;
}

json to_json(const AdaptivePool2dAttrs& a) { return {{attr::output_size.name, {a.oh, a.ow}}}; }

AdaptivePool2dAttrs adaptive_pool2d_from_json(const json& attrs, const std::string& where) {
  AdaptivePool2dAttrs a;
  std::tie(a.oh, a.ow) = read_pair(attrs, attr::output_size, where);
  return a;
}

json to_json(const CodeRange& r) { return {{attr::qmin.name, r.qmin}, {attr::qmax.name, r.qmax}}; }

CodeRange code_range_from_json(const json& attrs, const std::string& where) {
  CodeRange r;
  r.qmin = int32_t(read_int(attrs, attr::qmin, where));
  r.qmax = int32_t(read_int(attrs, attr::qmax, where));
  if (r.qmin > r.qmax)
    fail(where, ": attributes 'qmin' and 'qmax' are ", r.qmin, " and ", r.qmax, "; expected qmin <= qmax");
  return r;
}

}  // namespace finch::ops
