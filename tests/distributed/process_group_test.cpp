// The process group's failures say what was tried: torchrun's environment
// checked variable by variable, and a store that does not answer named with
// its address and the timeout.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>

#include <torch/torch.h>

#include "docflow/error.hpp"
#include "docflow/gradient_reducer.hpp"
#include "docflow/process_group.hpp"
#include "cli/rank_launcher.hpp"

namespace {

// Sets torchrun's variables for one test and clears them after.
struct Variables {
  explicit Variables(std::initializer_list<std::pair<const char*, const char*>> values) {
    for (const auto& [k, v] : values) {
      ::setenv(k, v, 1);
      names.push_back(k);
    }
  }
  ~Variables() {
    for (const char* k : names) ::unsetenv(k);
  }
  std::vector<const char*> names;
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const docflow::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_CASE(no_world_size_is_a_single_process_run) {
  BOOST_TEST(!docflow::environment_from_variables().has_value());
  auto g = docflow::ProcessGroup::single();
  BOOST_TEST(g->size() == 1);
  std::vector<at::Tensor> t{at::ones({3})};
  g->allreduce(t, docflow::ProcessGroup::Op::Average);
  BOOST_TEST(t[0].sum().item<double>() == 3.0);
  BOOST_TEST(g->allgather(at::ones({2})).size() == 1u);
}

BOOST_AUTO_TEST_CASE(torchrun_variables_are_read_and_checked) {
  {
    Variables v{{"WORLD_SIZE", "4"}, {"RANK", "3"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                {"MASTER_ADDR", "10.1.2.3"}, {"MASTER_PORT", "29500"}, {"TORCHELASTIC_USE_AGENT_STORE", "True"}};
    const auto env = docflow::environment_from_variables();
    BOOST_REQUIRE(env.has_value());
    BOOST_TEST(env->rank == 3);
    BOOST_TEST(env->world_size == 4);
    BOOST_TEST(env->local_rank == 1);
    BOOST_TEST(env->local_world_size == 2);
    BOOST_TEST(env->master_addr == "10.1.2.3");
    BOOST_TEST(env->master_port == 29500);
    BOOST_TEST(env->agent_store);
  }
  {
    Variables v{{"WORLD_SIZE", "2"}, {"RANK", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}};
    BOOST_TEST(error_of([] { docflow::environment_from_variables(); }).find("RANK=2 is not below WORLD_SIZE=2") != std::string::npos);
  }
  {
    Variables v{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "1"}};
    BOOST_TEST(error_of([] { docflow::environment_from_variables(); }).find("lacks MASTER_ADDR") != std::string::npos);
  }
  {
    Variables v{{"WORLD_SIZE", "two"}};
    BOOST_TEST(error_of([] { docflow::environment_from_variables(); }).find("WORLD_SIZE='two'") != std::string::npos);
  }
  {
    Variables v{{"WORLD_SIZE", "2"}, {"RANK", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}, {"DOCFLOW_DIST_TIMEOUT", "soon"}};
    BOOST_TEST(error_of([] { docflow::environment_from_variables(); }).find("DOCFLOW_DIST_TIMEOUT='soon'") != std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_store_that_does_not_answer_is_named_and_times_out) {
  docflow::DistributedEnvironment env;
  env.rank = 1;
  env.world_size = 2;
  env.master_port = docflow::cli::free_loopback_port();  // nothing listens there
  env.timeout = std::chrono::milliseconds(2000);
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e = error_of([&] { docflow::ProcessGroup::create(env); });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  BOOST_TEST_MESSAGE(e);
  BOOST_TEST(e.find("cannot reach the run's store at 127.0.0.1:" + std::to_string(env.master_port)) != std::string::npos);
  BOOST_TEST(e.find("rank 1 of 2") != std::string::npos);
  BOOST_TEST(secs < 30.0);
}

BOOST_AUTO_TEST_CASE(torchruns_launcher_variables_are_read_and_checked) {
  using docflow::cli::launch_options_from_variables;
  BOOST_TEST(!launch_options_from_variables().has_value());  // a plain process: no launcher
  {
    Variables v{{"PET_NPROC_PER_NODE", "3"}, {"PET_NNODES", "2:2"}, {"PET_NODE_RANK", "1"}, {"MASTER_ADDR", "10.0.0.1"},
                {"PET_MASTER_PORT", "29500"}, {"MASTER_PORT", "1"}};
    const auto o = launch_options_from_variables();
    BOOST_REQUIRE(o.has_value());
    BOOST_TEST(o->nproc_per_node == 3);
    BOOST_TEST(o->nnodes == 2);
    BOOST_TEST(o->node_rank == 1);
    BOOST_TEST(o->master_addr == "10.0.0.1");  // MASTER_ADDR when PET_MASTER_ADDR is not set
    BOOST_TEST(o->master_port == 29500);       // PET_MASTER_PORT first
  }
  {
    // A worker torchrun started inherits the pod's PET_* variables: it is a rank.
    Variables v{{"PET_NPROC_PER_NODE", "2"}, {"TORCHELASTIC_RUN_ID", "none"}};
    BOOST_TEST(!launch_options_from_variables().has_value());
  }
  auto refused = [](std::initializer_list<std::pair<const char*, const char*>> values) {
    Variables v(values);
    return error_of([] { launch_options_from_variables(); });
  };
  BOOST_TEST(refused({{"PET_NPROC_PER_NODE", "two"}}) == "PET_NPROC_PER_NODE='two' is not a whole number from 1 to 65535");
  BOOST_TEST(refused({{"PET_NPROC_PER_NODE", "gpu"}}).find("docflow trains on CPUs") != std::string::npos);
  BOOST_TEST(refused({{"PET_NPROC_PER_NODE", "2"}, {"PET_NNODES", "1:8"}}).find("asks for an elastic run") != std::string::npos);
  BOOST_TEST(refused({{"PET_NPROC_PER_NODE", "2"}, {"PET_NODE_RANK", "-1"}}) ==
             "PET_NODE_RANK='-1' is not a whole number from 0 to 65535");
}

BOOST_AUTO_TEST_CASE(a_gradient_reducer_checks_its_parameters_and_leaves_one_process_gradients_alone) {
  auto group = docflow::ProcessGroup::single();
  const torch::Tensor constant = torch::ones({2});
  BOOST_TEST(error_of([&] { docflow::GradientReducer(*group, {{constant, false}}); }) ==
             "GradientReducer: parameter 0 is not a leaf that requires grad");
  const torch::Tensor bias = torch::ones({2}).requires_grad_(true);
  BOOST_TEST(error_of([&] { docflow::GradientReducer(*group, {{bias, true}}); }) ==
             "GradientReducer: parameter 0 has sparse rows but no rows (1 dimension)");

  const torch::Tensor w = torch::ones({3, 2}).requires_grad_(true);
  docflow::GradientReducer reducer(*group, {{w, false}, {bias, false}});
  reducer.prepare();
  (torch::matmul(torch::ones({4, 3}), w) + bias).sum().backward();
  BOOST_TEST(reducer.finish() == 0.0);
  BOOST_TEST(reducer.buckets() == 0);
  BOOST_TEST(torch::equal(w.grad(), torch::full({3, 2}, 4.0)));
  BOOST_TEST(torch::equal(bias.grad(), torch::full({2}, 4.0)));
}
