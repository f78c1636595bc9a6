// Full forward/backward goldens against PyTorch for ResNet-20, the CIFAR MobileNetV2 (the peer
// models), LeNet-5 and ResNet-18 (CIFAR variant), all 1×28×28 → 10 classes: with the hash-generated
// weights of make_model_goldens.py, finch's eval-mode logits, train-mode logits (batch
// statistics), input gradient and first/last weight gradients of cross_entropy must match
// torch's to ~1e-4 relative (tolerance: rtol·|want| + rtol·max|want|), and the first BN's running
// mean must be updated as torch updates it. The same run in fp64 must match torch's fp64 to 1e-9.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "framework/safetensors.h"
#include "models/models.h"
#include "tests/models/model_golden.h"

using namespace finch;

namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}


// Eval logits, then train-mode logits and cross_entropy gradients of `model` on the golden
// batch (in x's dtype), compared with the entries `prefix` + name of the golden file. `grad_tol`
// is the relative tolerance of the gradient checks.
void check_run(nn::Module& model, const SafetensorsFile& g, const std::string& prefix, DType dtype,
               double tol, double grad_tol, const std::string& what) {
  const Tensor x = g.at("x").to(dtype), y = g.at("y");
  auto check = [&](const Tensor& got, const std::string& key, double t, const std::string& label) {
    const Tensor want = g.at(prefix + key);
    test::expect_close(got, want, what + " " + label, t, t * max_abs(want) + 1e-30);
  };
  model.eval();
  {
    NoGradGuard ng;
    check(model.forward(x), "logits_eval", tol, "eval logits");
  }
  model.train();
  for (auto& [path, m] : model.named_modules())  // the golden keeps dropout off too (it is random)
    if (m->type_name() == "Dropout") m->eval();
  Tensor xg = x.clone().set_requires_grad(true);
  const Tensor logits = model.forward(xg);
  check(logits, "logits_train", tol, "train logits");
  backward(cross_entropy(logits, y));
  check(xg.grad(), "dx", grad_tol, "input gradient");
  const auto params = model.named_parameters();
  for (const std::string which : {"grad.first", "grad.last"}) {
    const std::string pname = g.metadata.at(which);
    const auto it = std::find_if(params.begin(), params.end(), [&](const auto& p) { return p.first == pname; });
    ASSERT_NE(it, params.end()) << pname;
    check(it->second.grad(), which, grad_tol, "gradient of " + pname);
  }
  if (g.contains(prefix + "running_mean_after"))
    check(model.state_dict().at(g.metadata.at("running_mean_after")), "running_mean_after", tol,
          "running_mean after a training forward");
}

void run_golden(const std::string& tag, const std::string& name, const models::CreateOptions& o) {
  const auto g = load_safetensors(test::model_golden_path("model_" + tag + ".safetensors"));
  auto model = models::create(name, 1, 10, o);
  test::load_golden_weights(*model);
  // The generator itself first, so a mismatch there is not blamed on the model.
  test::expect_close(model->state_dict().at(g.metadata.at("first_weight")), g.at("check.first_weight"),
                     tag + " golden weights", 0, 0);

  // fp32, as trained. Where torch's own fp32 gradients are far from its fp64 ones (MobileNetV2:
  // one ReLU6 input of features.13 lies 2.5e-6 from the kink, and fp32 rounding decides which
  // side — see make_model_goldens.py), the fp32 gradient check gets 10× torch's own error as
  // tolerance, and the fp64 run below is the exact check.
  const bool well = g.metadata.at("fp32_grads_well_conditioned") == "1";
  const double self_error = std::stod(g.metadata.at("fp32_grads_self_error"));
  check_run(*model, g, "", DType::f32, 1e-4, well ? 1e-4 : std::max(1e-4, 10 * self_error), tag + " fp32");

  if (g.contains("f64.dx")) {
    auto m64 = models::create(name, 1, 10, o);
    m64->to(DType::f64);
    test::load_golden_weights(*m64);
    check_run(*m64, g, "f64.", DType::f64, 1e-9, 1e-9, tag + " fp64");
  }
}

TEST(ModelGolden, ResNet20) { run_golden("resnet20", "resnet20", {}); }

TEST(ModelGolden, MobileNetV2Cifar) {
  models::CreateOptions o;
  o.cifar = true;
  run_golden("mobilenetv2_cifar", "mobilenetv2", o);
}

TEST(ModelGolden, LeNet5) { run_golden("lenet5", "lenet5", {}); }

TEST(ModelGolden, ResNet18Cifar) {
  models::CreateOptions o;
  o.cifar = true;
  run_golden("resnet18_cifar", "resnet18", o);
}

}  // namespace
