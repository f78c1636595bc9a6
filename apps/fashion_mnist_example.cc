// fashion_mnist_example: trains a small CNN on Fashion-MNIST (IDX files) with the whole
// foundation — data reader, nn modules, autograd, SGD with warm-up + cosine, progress bar,
// safetensors and JSON output. The main job until train_cifar exists.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/optim/optim.h"
#include "data/idx.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/progress.h"
#include "framework/random.h"
#include "framework/results.h"
#include "framework/safetensors.h"

using namespace finch;

namespace {

constexpr float kMean = 0.2860f, kStd = 0.3530f;  // Fashion-MNIST's pixel statistics

struct Split {
  Tensor images;  // [N, 1, 28, 28] F32, normalized
  Tensor labels;  // [N] I64
};

Split load_split(const std::string& dir, const std::string& prefix, int64_t limit) {
  Tensor x = data::read_idx(dir + "/" + prefix + "-images-idx3-ubyte.gz");
  Tensor y = data::read_idx(dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (x.dim() != 3 || x.dtype() != DType::u8)
    fail(dir, "/", prefix, "-images-idx3-ubyte.gz: expected U8 images [N, 28, 28], found ",
         dtype_name(x.dtype()), " ", shape_str(x.shape()));
  if (y.dim() != 1 || y.size(0) != x.size(0))
    fail(dir, "/", prefix, "-labels-idx1-ubyte.gz: expected ", x.size(0), " labels, found shape ",
         shape_str(y.shape()));
  const int64_t n = limit > 0 ? std::min(limit, x.size(0)) : x.size(0);
  Tensor images = empty({n, 1, x.size(1), x.size(2)});
  const uint8_t* src = x.data<uint8_t>();
  float* dst = images.data<float>();
  for (int64_t i = 0; i < images.numel(); ++i) dst[i] = (float(src[i]) / 255.0f - kMean) / kStd;
  Tensor labels = y.narrow(0, 0, n).to(DType::i64).contiguous();
  for (int64_t v : labels.to_vector<int64_t>())
    if (v < 0 || v > 9) fail(dir, "/", prefix, "-labels-idx1-ubyte.gz: label ", v, " is outside 0..9");
  return {images, labels};
}

std::shared_ptr<nn::Sequential> make_cnn(Generator& gen) {
  auto conv = [&](int64_t in, int64_t out) {
    return std::make_shared<nn::Conv2d>(in, out, 3, 1, 1, 1, 1, /*bias=*/false, &gen);
  };
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      conv(1, 16), std::make_shared<nn::BatchNorm2d>(16), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2),
      conv(16, 32), std::make_shared<nn::BatchNorm2d>(32), std::make_shared<nn::ReLU>(),
      std::make_shared<nn::MaxPool2d>(2),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(32 * 7 * 7, 10, true, &gen)});
}

// Rows `idx[begin, end)` of a tensor, gathered into a new batch.
Tensor gather(const Tensor& t, const std::vector<int64_t>& idx, int64_t begin, int64_t end) {
  Tensor index = from_vector<int64_t>({idx.begin() + begin, idx.begin() + end}, {end - begin});
  return index_select(t, 0, index);
}

double evaluate(nn::Module& model, const Split& test, int64_t batch) {
  NoGradGuard ng;
  model.eval();
  int64_t correct = 0;
  for (int64_t b = 0; b < test.images.size(0); b += batch) {
    const int64_t n = std::min(batch, test.images.size(0) - b);
    Tensor pred = argmax(model.forward(test.images.narrow(0, b, n)), 1);
    const auto p = pred.to_vector<int64_t>();
    const auto y = test.labels.narrow(0, b, n).to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i) correct += p[size_t(i)] == y[size_t(i)];
  }
  model.train();
  return double(correct) / double(test.images.size(0));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Train a small CNN on Fashion-MNIST (IDX files) and report test accuracy."};
  std::string data_dir = "/usr/share/datasets/fashion-mnist", out_dir = "out/fashion_mnist";
  int epochs = 2, batch = 64, threads = 0, seed = 0;
  int64_t limit_train = 0, limit_test = 0;
  double lr = 0.05;
  app.add_option("--data", data_dir, "folder with the four *-idx?-ubyte.gz files")->capture_default_str();
  app.add_option("--epochs", epochs, "training epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch-size", batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "peak learning rate (SGD, momentum 0.9)")->capture_default_str();
  app.add_option("--threads", threads, "threads (0: all cores)")->capture_default_str();
  app.add_option("--seed", seed, "seed for init and shuffling")->capture_default_str();
  app.add_option("--limit-train", limit_train, "use only the first N training images");
  app.add_option("--limit-test", limit_test, "use only the first N test images");
  app.add_option("--out", out_dir, "output folder (model.safetensors, summary.json)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  try {
    set_num_threads(threads);
    const auto t0 = std::chrono::steady_clock::now();
    const Split train = load_split(data_dir, "train", limit_train);
    const Split test = load_split(data_dir, "t10k", limit_test);
    std::filesystem::create_directories(out_dir);

    Generator gen{static_cast<uint64_t>(seed)};
    auto model = make_cnn(gen);
    optim::SGDOptions so;
    so.lr = lr;
    so.momentum = 0.9;
    so.weight_decay = 5e-4;
    so.nesterov = true;
    optim::SGD opt(model->parameters(), so);

    const int64_t n = train.images.size(0);
    const int64_t steps_per_epoch = (n + batch - 1) / batch, total = steps_per_epoch * epochs;
    std::cerr << "fashion_mnist_example: " << n << " training / " << test.images.size(0)
              << " test images, " << model->num_parameters() << " parameters, " << get_num_threads()
              << " threads\n";
    int64_t step = 0;
    double train_seconds = 0;
    nlohmann::json history = nlohmann::json::array();
    for (int epoch = 0; epoch < epochs; ++epoch) {
      const auto order = randperm(n, gen).to_vector<int64_t>();
      Progress bar(steps_per_epoch, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(epochs));
      double loss_sum = 0;
      int64_t correct = 0;
      const auto e0 = std::chrono::steady_clock::now();
      for (int64_t b = 0; b < n; b += batch, ++step) {
        const int64_t e = std::min(n, b + batch);
        opt.set_lr(optim::warmup_cosine_lr(lr, step, steps_per_epoch / 4, total));
        Tensor x = gather(train.images, order, b, e), y = gather(train.labels, order, b, e);
        opt.zero_grad();
        Tensor logits = model->forward(x);
        Tensor loss = cross_entropy(logits, y);
        backward(loss);
        opt.step();
        loss_sum += loss.item() * double(e - b);
        const auto p = argmax(logits.detach(), 1).to_vector<int64_t>(), t = y.to_vector<int64_t>();
        for (size_t i = 0; i < p.size(); ++i) correct += p[i] == t[i];
        bar.update(1, {{"loss", loss_sum / double(e)}, {"acc", double(correct) / double(e)}});
      }
      bar.finish();
      train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - e0).count();
      const double acc = evaluate(*model, test, 256);
      std::cerr << "epoch " << epoch + 1 << ": train loss " << loss_sum / double(n) << ", test accuracy "
                << acc << "\n";
      history.push_back({{"epoch", epoch + 1}, {"train_loss", loss_sum / double(n)},
                         {"train_accuracy", double(correct) / double(n)}, {"test_accuracy", acc}});
    }

    nn::NamedTensors weights;
    for (const auto& [name, t] : model->state_dict()) weights.emplace_back(name, t);
    save_safetensors(out_dir + "/model.safetensors", weights, {{"model", "fashion_mnist_cnn"}});
    const nlohmann::json summary = {
        {"model", "fashion_mnist_cnn"},
        {"parameters", model->num_parameters()},
        {"epochs", history},
        {"test_accuracy", history.back()["test_accuracy"]},
        {"train_images_per_second", double(n) * epochs / train_seconds},
        {"threads", get_num_threads()},
        {"wall_seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()}};
    write_json_file(out_dir + "/summary.json", summary);
    std::printf("test accuracy %.4f (%s/summary.json)\n", summary["test_accuracy"].get<double>(),
                out_dir.c_str());
  } catch (const Error& e) {
    std::cerr << "fashion_mnist_example: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
