// Module::forward's interception and call tracing: an interceptor replaces a module's forward
// for every call of it, call indices restart with each outermost forward, a tracer sees the
// nesting, and without either the module computes as before.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"

using namespace finch;

namespace {

struct AddCall : nn::ForwardInterceptor {
  std::vector<int64_t> calls;
  Tensor run(nn::Module& m, const Tensor& x, int64_t call) override {
    calls.push_back(call);
    return add(m.forward_impl(x), double(call + 1) * 100.0);
  }
};

// Calls its relu twice, like ResNet's BasicBlock.
struct Twice : nn::Module {
  std::shared_ptr<nn::ReLU> relu;
  Twice() { relu = register_module("relu", std::make_shared<nn::ReLU>()); }
  Tensor forward_impl(const Tensor& x) override { return relu->forward(add(relu->forward(x), -1.0)); }
};

struct Log : nn::CallTracer {
  std::vector<std::string> events;
  void enter(nn::Module& m, const Tensor&, int64_t call) override {
    events.push_back("enter " + m.type_name() + "#" + std::to_string(call));
  }
  void exit(nn::Module& m, const Tensor&, int64_t call) override {
    events.push_back("exit " + m.type_name() + "#" + std::to_string(call));
  }
};

}  // namespace

TEST(ModuleIntercept, InterceptorSeesEachCallSiteAndCountsRestartPerForward) {
  auto m = std::make_shared<Twice>();
  const Tensor x = from_vector<float>({2.f}, {1});
  EXPECT_EQ(m->forward(x).to_vector<float>()[0], 1.f);  // relu(relu(2) - 1)
  auto hook = std::make_shared<AddCall>();
  m->relu->set_interceptor(hook);
  // call 0: relu(2) + 100 = 102; minus 1 = 101; call 1: relu(101) + 200 = 301.
  EXPECT_EQ(m->forward(x).to_vector<float>()[0], 301.f);
  EXPECT_EQ(m->forward(x).to_vector<float>()[0], 301.f);
  EXPECT_EQ(hook->calls, (std::vector<int64_t>{0, 1, 0, 1}));
  m->relu->set_interceptor(nullptr);
  EXPECT_EQ(m->forward(x).to_vector<float>()[0], 1.f);
}

TEST(ModuleIntercept, TracerSeesNestedCallsInOrder) {
  auto m = std::make_shared<Twice>();
  Log log;
  {
    nn::TraceCalls guard(&log);
    m->forward(from_vector<float>({2.f}, {1}));
  }
  m->forward(from_vector<float>({2.f}, {1}));  // not traced any more
  EXPECT_EQ(log.events, (std::vector<std::string>{"enter Module#0", "enter ReLU#0", "exit ReLU#0", "enter ReLU#1",
                                                  "exit ReLU#1", "exit Module#0"}));
}
