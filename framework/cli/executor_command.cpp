// `flow executor --uses NAME [--set KEY=VALUE]... [--name N] [--host H] [--port P] [--plugins DIR]...`:
// serves one executor, every endpoint it binds, as `jina executor` does, for
// flows elsewhere to use as a remote executor (`host` + `port` in their
// flow file). It is `flow serve` of a one-executor flow written for it into
// the workspace (WORKSPACE/NAME.executor.yml): the same wire, health,
// `flow ping`, --detach, token, limits and graceful stop.
#include <filesystem>
#include <fstream>
#include <iostream>

#include "command.hpp"
#include "options.hpp"

namespace docflow::cli {

int executor_command(const Args& args) {
  po::options_description opts("flow executor --uses NAME [options]");
  opts.add_options()("help,h", "this help")("uses", po::value<std::string>(), "the executor (as `uses:` in a flow file)")(
      "set", po::value<std::vector<std::string>>(), "a parameter: KEY=VALUE (as `with:` in a flow file)")(
      "name", po::value<std::string>(), "its name: in errors, and its run folder (default: the executor's)")(
      "host", po::value<std::string>(), "address to listen on (default 127.0.0.1)")(
      "port", po::value<int>(), "port (default 12345; 0 picks a free one)")(
      "plugins", po::value<std::vector<std::string>>(), "a folder of plugins to load (again for more)")(
      "workspace", po::value<std::string>(), "where its run folder goes (default runs)")(
      "prefetch", po::value<int>(), "requests in flight at once (default 8)")(
      "replicas", po::value<int>(), "instances of the executor in this process, the requests spread over them (default 1)")(
      "io-threads", po::value<int>(), "network threads (default 1)")(
      "detach", "return once it serves and leave it running")(
      "token-file", po::value<std::string>(), "require `Authorization: Bearer TOKEN` (the file's one line)")(
      "monitoring", "serve Prometheus metrics at /metrics");
  Args serve_args;
  try {
    auto vm = parse_args(args, opts, po::positional_options_description());
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("uses")) throw po::error("needs --uses NAME (the executor to serve)");
    const std::string uses = vm["uses"].as<std::string>();
    std::string name = vm.count("name") ? vm["name"].as<std::string>() : uses.substr(uses.rfind('/') + 1);
    const std::string workspace = vm.count("workspace") ? vm["workspace"].as<std::string>() : "runs";
    FlowConfig one;
    one.name = name;
    one.workspace = workspace;
    if (vm.count("plugins")) one.plugins = vm["plugins"].as<std::vector<std::string>>();
    if (vm.count("prefetch")) one.prefetch = vm["prefetch"].as<int>();
    ExecutorConfig e;
    e.name = name;
    e.uses = uses;
    one.executors.push_back(standalone(e));
    if (vm.count("replicas")) one.executors.back().replicas = vm["replicas"].as<int>();
    const std::string yaml = "# written by `flow executor`\n" + to_yaml(one);
    std::filesystem::create_directories(workspace);
    const std::string file = (std::filesystem::path(workspace) / (name + ".executor.yml")).string();
    {
      std::ofstream out(file);
      out << yaml;
      if (!out) throw po::error("cannot write " + file);
    }
    serve_args = {file, "--name", name};
    if (vm.count("set"))
      for (const auto& s : vm["set"].as<std::vector<std::string>>()) {
        if (s.find('=') == std::string::npos) throw po::error("--set expects KEY=VALUE, found '" + s + "'");
        serve_args.insert(serve_args.end(), {"--set", name + "." + s});
      }
    if (vm.count("host")) serve_args.insert(serve_args.end(), {"--host", vm["host"].as<std::string>()});
    if (vm.count("port")) serve_args.insert(serve_args.end(), {"--port", std::to_string(vm["port"].as<int>())});
    if (vm.count("token-file")) serve_args.insert(serve_args.end(), {"--token-file", vm["token-file"].as<std::string>()});
    // One network thread by default (`flow serve` has two): an executor
    // service speaks msgpack to a gateway, and its executor runs on the
    // flow's pool, or on that thread when it is light (flow.cpp). With two,
    // every completion one thread queued woke the other out of epoll_wait
    // (6 futex calls per request, strace): a remote hop took 0.15-0.22 ms
    // against 0.10-0.14 with one (bench_remote, bench/RESULTS.md).
    serve_args.insert(serve_args.end(), {"--io-threads", std::to_string(vm.count("io-threads") ? vm["io-threads"].as<int>() : 1)});
    if (vm.count("detach")) serve_args.push_back("--detach");
    if (vm.count("monitoring")) serve_args.push_back("--monitoring");
  } catch (const po::error&) {
    return setup_failed("executor");
  } catch (const std::exception& e) {
    std::cerr << "flow executor: " << e.what() << "\n";
    return kBadInput;
  }
  return serve_command(serve_args);
}

}  // namespace docflow::cli
