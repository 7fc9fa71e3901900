// One rank of the gather-with-grad check: `gather_worker RANK WORLD PORT
// WITH_GRAD OUT`. Every rank builds the same batch (seeded), takes its rows,
// computes CLIPLoss over the gathered features, backpropagates, averages the
// parameters' gradients over the ranks with a GradientReducer as the
// trainer does (buckets of a few floats, so there are several, one alone,
// and the lookup table by its touched rows; with WITH_GRAD 1 they start
// from backward's hooks, with 0 after it), and rank 0 saves them to OUT for
// the test to compare with one process's.
#include <torch/torch.h>

#include <iostream>

#include "clip/loss.hpp"
#include "docflow/gradient_reducer.hpp"
#include "docflow/process_group.hpp"
#include "feature_gather.hpp"
#include "gather_case.hpp"

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: gather_worker RANK WORLD PORT WITH_GRAD OUT\n";
    return 2;
  }
  try {
    torch::set_num_threads(1);
    docflow::DistributedEnvironment env;
    env.rank = std::stoi(argv[1]);
    env.world_size = std::stoi(argv[2]);
    env.local_rank = env.rank;
    env.local_world_size = env.world_size;
    env.master_port = std::stoi(argv[3]);
    env.timeout = std::chrono::milliseconds(20000);
    const bool with_grad = std::string(argv[4]) == "1";
    auto group = docflow::ProcessGroup::create(env);

    docflow::testing::GatherCase c;
    const std::int64_t rows = c.kBatch / env.world_size;
    std::vector<docflow::GradientReducer::Parameter> parameters;
    for (const auto& p : c.parameters()) parameters.push_back({p, p.is_same(c.table)});
    docflow::GradientReducer::Options options;
    options.bucket_floats = 2;  // the scale alone fills one
    options.alone_floats = 24;  // the towers' 6 x 4 weights
    // Another channel of the reducer's name opened first (as a second
    // trainer's reducer would be): each carries its own collectives.
    const auto other = group->channel("gradients");
    docflow::GradientReducer reducer(*group, parameters, options);
    if (with_grad) reducer.prepare();
    const torch::Tensor image = c.image_features(env.rank * rows, rows), text = c.text_features(env.rank * rows, rows);
    torch::Tensor loss = clip::clip_loss(docflow::finetune::gather_features(*group, image, with_grad),
                                         docflow::finetune::gather_features(*group, text, with_grad), c.scale);
    loss.backward();
    // Buckets in reverse order: the scale, w_text, w_image, then `unused`,
    // whose gradient never comes: three of four start inside backward.
    const int started = reducer.started_in_backward();
    reducer.finish();
    if (reducer.buckets() != 4 || started != (with_grad ? 3 : 0)) {
      std::cerr << "gather_worker rank " << env.rank << ": " << started << " of " << reducer.buckets()
                << " buckets started inside backward\n";
      return 1;
    }
    std::vector<torch::Tensor> one{torch::ones({3})};
    other->allreduce(one, docflow::ProcessGroup::Op::Sum);
    if (!torch::equal(one[0], torch::full({3}, static_cast<double>(env.world_size)))) {
      std::cerr << "gather_worker rank " << env.rank << ": the other channel's allreduce came back wrong\n";
      return 1;
    }
    if (env.rank == 0) torch::save(c.gradients(), argv[5]);
    // Tensors above the process group's split size (256K floats) go over in
    // parts at once: every element must come back summed, for a contiguous
    // tensor and for a transposed (non-contiguous) one. Small integers are
    // exact in float.
    const auto world = static_cast<double>(env.world_size);
    const double rank_sum = world * (world - 1) / 2;
    const torch::Tensor base = torch::arange((std::int64_t{1} << 22) + 12345, torch::kFloat).fmod(1000);
    std::vector<torch::Tensor> big{base + env.rank};
    group->allreduce(big, docflow::ProcessGroup::Op::Sum);
    const torch::Tensor square = torch::arange(2100 * 2100, torch::kFloat).fmod(777).view({2100, 2100});
    std::vector<torch::Tensor> transposed{(square + env.rank).t()};
    group->allreduce(transposed, docflow::ProcessGroup::Op::Sum);
    if (!torch::equal(big[0], base * world + rank_sum) || !torch::equal(transposed[0], (square * world + rank_sum).t())) {
      std::cerr << "gather_worker rank " << env.rank << ": a large allreduce came back wrong\n";
      return 1;
    }
    group->barrier();
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "gather_worker rank " << argv[1] << ": " << e.what() << "\n";
    return 1;
  }
}
