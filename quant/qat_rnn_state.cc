// The QAT LSTM/GRU layers' observed ranges as checkpoint entries (qat_rnn.h): what finch quantize
// saves beside a static program (FILE.finch.sim.safetensors) so that finch verify rebuilds the
// very cells the program was made of, and what a QAT checkpoint keeps. Every number loaded is
// hostile: wrong dtype or length, non-finite or inverted ranges get one sentence naming the file
// and the entry.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "framework/error.h"
#include "quant/qat_rnn.h"

namespace finch::quant {

namespace {

namespace qk = kernels;
using Entries = std::vector<std::pair<std::string, Tensor>>;

template <class Q>
std::string state_key(const Q& q, const char* stem, int64_t layer) {
  return (q.path().empty() ? std::string() : q.path() + ".") + stem + std::to_string(layer);
}

// The entry `key` of `entries` as f32 [n] for one of the accepted lengths `ns`; `what` names the
// values in the sentence.
std::vector<float> entry(const Entries& entries, const std::string& key, const std::vector<int64_t>& ns,
                         const std::string& file, const char* kind, const char* what) {
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const auto& e) { return e.first == key; });
  if (it == entries.end()) fail(file, ": expected the QAT ", kind, " ranges '", key, "', found none");
  const Tensor& t = it->second;
  const bool ok = t.dtype() == DType::f32 && t.dim() == 1 && std::count(ns.begin(), ns.end(), t.size(0)) > 0;
  if (!ok)
    fail(file, ": expected '", key, "' as f32 [", ns[0], "] (", what, "), found ", dtype_name(t.dtype()), " ",
         shape_str(t.shape()));
  return t.contiguous().to_vector<float>();
}

}  // namespace

Entries qat_lstm_state(const std::vector<std::unique_ptr<QatLstm>>& q) {
  Entries out;
  for (const auto& l : q)
    for (int64_t k = 0; k < l->num_layers(); ++k) {
      const qk::QLstmRanges& r = l->ranges(k);
      std::vector<float> v = {r.x_lo, r.x_hi, r.h_lo, r.h_hi, r.c_absmax};
      if (l->module().proj_size > 0) v.insert(v.end(), {r.m_lo, r.m_hi});
      const auto n = int64_t(v.size());
      out.emplace_back(state_key(*l, "qat_ranges_l", k), from_vector<float>(v, {n}));
    }
  return out;
}

void load_qat_lstm_state(const std::vector<std::unique_ptr<QatLstm>>& q, const Entries& entries,
                         const std::string& file) {
  for (const auto& l : q)
    for (int64_t k = 0; k < l->num_layers(); ++k) {
      const std::string key = state_key(*l, "qat_ranges_l", k);
      const bool proj = l->module().proj_size > 0;
      const std::vector<float> v =
          entry(entries, key, {proj ? 7 : 5}, file, "LSTM",
                proj ? "x_lo, x_hi, h_lo, h_hi, max |c|, m_lo, m_hi" : "x_lo, x_hi, h_lo, h_hi, max |c|");
      qk::QLstmRanges r{v[0], v[1], v[2], v[3], v[4]};
      if (proj) r.m_lo = v[5], r.m_hi = v[6];
      try {
        l->set_ranges(k, r);
      } catch (const Error& e) {
        fail(file, ": '", key, "': ", e.what());
      }
    }
}

Entries qat_gru_state(const std::vector<std::unique_ptr<QatGru>>& q) {
  Entries out;
  for (const auto& l : q)
    for (int64_t k = 0; k < l->num_layers(); ++k) {
      const qk::QGruRanges& r = l->ranges(k);
      out.emplace_back(state_key(*l, "qat_gru_ranges_l", k), from_vector<float>({r.x_lo, r.x_hi, r.h_lo, r.h_hi}, {4}));
    }
  return out;
}

void load_qat_gru_state(const std::vector<std::unique_ptr<QatGru>>& q, const Entries& entries,
                        const std::string& file) {
  for (const auto& l : q)
    for (int64_t k = 0; k < l->num_layers(); ++k) {
      const std::string key = state_key(*l, "qat_gru_ranges_l", k);
      const std::vector<float> v = entry(entries, key, {4}, file, "GRU", "x_lo, x_hi, h_lo, h_hi");
      try {
        l->set_ranges(k, qk::QGruRanges{v[0], v[1], v[2], v[3]});
      } catch (const Error& e) {
        fail(file, ": '", key, "': ", e.what());
      }
    }
}

}  // namespace finch::quant
