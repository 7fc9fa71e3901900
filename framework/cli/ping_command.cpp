// `flow ping URL`: exit 0 when a served flow (or `flow executor`) answers
// its health check. Kubernetes runs it as every pod's probe, every few
// seconds: it runs in `flow` itself, without LibTorch (main.cpp), in a few
// milliseconds instead of the half second LibTorch's start-up costs.
#include <iostream>

#include "options.hpp"
#include "serve/http_connection.hpp"

namespace docflow::cli {

int ping_command(const Args& args) {
  po::options_description opts("flow ping URL [options]");
  opts.add_options()("help,h", "this help")("timeout-ms", po::value<int>()->default_value(3000), "give up after this long")(
      "token-file", po::value<std::string>(), "bearer token (or DOCFLOW_TOKEN)")("url", po::value<std::string>(), "the flow's address");
  po::positional_options_description pos;
  pos.add("url", 1);
  po::variables_map vm;
  try {
    vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts, "Exit 0 when the served flow answers its health check (a Kubernetes probe).")) return kOk;
    if (!vm.count("url")) throw po::error("needs the flow's URL, for example http://127.0.0.1:12345");
  } catch (const po::error& e) {
    std::cerr << "flow ping: " << e.what() << " (see flow ping --help)\n";
    return kBadInput;
  }
  try {
    ClientOptions o;
    o.timeout_ms = vm["timeout-ms"].as<int>();
    o.token = token_of(vm);
    serve::HttpConnection client(vm["url"].as<std::string>(), o);
    auto [status, body] = client.get("/");
    if (status != 200) {
      std::cerr << "flow ping: " << client.url() << " answered " << status << ": " << body << "\n";
      return kRunFailed;
    }
    std::cout << client.url() << " is healthy\n";
    return kOk;
  } catch (const Error& e) {
    std::cerr << "flow ping: " << e.what() << "\n";
    return kRunFailed;
  }
}

}  // namespace docflow::cli
