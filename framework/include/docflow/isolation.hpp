#pragma once
// Executors in processes of their own (`isolate: true` on an executor, or
// `flow serve --isolate`): each runs as a child `flow serve` of a
// one-executor flow on a loopback port, and the flow talks to it as to a
// remote executor. A child that crashes (a segfault in a plugin) fails the
// requests it held with an error naming the executor and the signal, and is
// started again (`restarts: N`, with a backoff) while the flow keeps
// serving. The child is the `flow` executable: the CLI sets it; a program
// embedding docflow sets it to an installed `flow` before opening a flow
// with isolated executors.
#include <string>

namespace docflow {

void set_flow_executable(const std::string& path);
const std::string& flow_executable();  // empty when not set

}  // namespace docflow
