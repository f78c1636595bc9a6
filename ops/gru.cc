// The GRU gate passes' scalar reference (see ops/gru.h for the equations).
#include "ops/gru.h"

#include <cmath>

namespace finch::ops {
namespace {

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

template <typename T>
void forward(int64_t B, int64_t H, T* gi, const T* gh, const T* h, T* h_new) {
  for (int64_t b = 0; b < B; ++b) {
    T* a = gi + b * 3 * H;
    const T* c = gh + b * 3 * H;
    for (int64_t j = 0; j < H; ++j) {
      const T r = sigmoid(a[j] + c[j]);
      const T z = sigmoid(a[H + j] + c[H + j]);
      const T n = std::tanh(a[2 * H + j] + r * c[2 * H + j]);
      a[j] = r, a[H + j] = z, a[2 * H + j] = n;
      const int64_t k = b * H + j;
      h_new[k] = (T(1) - z) * n + z * h[k];
    }
  }
}

template <typename T>
void backward(int64_t B, int64_t H, const T* dh_new, const T* gates, const T* gh, const T* h,
              T* dgi, T* dgh, T* dh) {
  for (int64_t b = 0; b < B; ++b) {
    const T* g = gates + b * 3 * H;
    const T* c = gh + b * 3 * H;
    T* di = dgi + b * 3 * H;
    T* dg = dgh + b * 3 * H;
    for (int64_t j = 0; j < H; ++j) {
      const int64_t k = b * H + j;
      const T r = g[j], z = g[H + j], n = g[2 * H + j], d = dh_new[k];
      const T dan = d * (T(1) - z) * (T(1) - n * n);
      const T daz = d * (h[k] - n) * z * (T(1) - z);
      const T dar = dan * c[2 * H + j] * r * (T(1) - r);
      di[j] = dar, di[H + j] = daz, di[2 * H + j] = dan;
      dg[j] = dar, dg[H + j] = daz, dg[2 * H + j] = dan * r;
      dh[k] = d * z;
    }
  }
}

}  // namespace

void gru_gates_forward_reference(int64_t B, int64_t H, float* gi, const float* gh,
                                 const float* h, float* h_new) {
  forward(B, H, gi, gh, h, h_new);
}
void gru_gates_forward_reference(int64_t B, int64_t H, double* gi, const double* gh,
                                 const double* h, double* h_new) {
  forward(B, H, gi, gh, h, h_new);
}
void gru_gates_backward_reference(int64_t B, int64_t H, const float* dh_new, const float* gates,
                                  const float* gh, const float* h, float* dgi, float* dgh,
                                  float* dh) {
  backward(B, H, dh_new, gates, gh, h, dgi, dgh, dh);
}
void gru_gates_backward_reference(int64_t B, int64_t H, const double* dh_new,
                                  const double* gates, const double* gh, const double* h,
                                  double* dgi, double* dgh, double* dh) {
  backward(B, H, dh_new, gates, gh, h, dgi, dgh, dh);
}

}  // namespace finch::ops
