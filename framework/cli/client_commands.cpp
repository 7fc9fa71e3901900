// `flow post URL ENDPOINT --data FILE`: the client side of `flow serve`
// (`flow ping` is in ping_command.cpp).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "docarray/document_file.hpp"
#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docflow/client.hpp"
#include "options.hpp"

namespace docflow::cli {

int post_command(const Args& args) {
  po::options_description opts("flow post URL ENDPOINT --data FILE [options]");
  opts.add_options()("help,h", "this help")("data", po::value<std::string>(), "documents to send (.jsonl or .docs)")(
      "request-size", po::value<std::size_t>()->default_value(100), "documents per request")(
      "parameters", po::value<std::string>(), "the requests' parameters, a JSON object")(
      "binary", "msgpack bodies both ways (embeddings and tensors as raw bytes)")(
      "in-flight", po::value<std::size_t>()->default_value(4), "requests on the connection at once")(
      "output,o", po::value<std::string>(), "write what comes back here (.jsonl or .docs); default: JSON Lines on stdout")(
      "token-file", po::value<std::string>(), "bearer token (or DOCFLOW_TOKEN)")(
      "url", po::value<std::string>(), "the flow's address")("endpoint", po::value<std::string>(), "for example /search");
  po::positional_options_description pos;
  pos.add("url", 1).add("endpoint", 1);
  po::variables_map vm;
  docarray::Value parameters;
  try {
    vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts, "Jina's Client.post(on, inputs, parameters, request_size) from the command line.")) return kOk;
    if (!vm.count("url") || !vm.count("endpoint")) throw po::error("needs the flow's URL and an ENDPOINT");
    if (!vm.count("data")) throw po::error("needs --data FILE");
    if (vm["request-size"].as<std::size_t>() == 0) throw po::error("--request-size must be at least 1");
    if (vm.count("parameters")) {
      const std::string text = vm["parameters"].as<std::string>();
      try {
        docarray::Envelope env = docarray::parse_json_envelope("{\"parameters\":" + text + "\n}");
        parameters = *env.fields.find("parameters");
      } catch (const docarray::Error& e) {
        throw po::error(std::string("--parameters is not valid JSON: ") + e.what());
      }
      if (!parameters.is_map()) throw po::error("--parameters expects a JSON object, for example '{\"limit\": 5}'");
    }
  } catch (const po::error& e) {
    std::cerr << "flow post: " << e.what() << " (see flow post --help)\n";
    return kBadInput;
  }
  const std::string endpoint = vm["endpoint"].as<std::string>();
  const std::size_t request_size = vm["request-size"].as<std::size_t>();
  try {
    std::unique_ptr<docarray::DocumentFileReader> reader;
    try {
      reader = std::make_unique<docarray::DocumentFileReader>(vm["data"].as<std::string>());
    } catch (const docarray::Error& e) {
      std::cerr << "flow post: " << e.what() << "\n";
      return kBadInput;
    }
    ClientOptions o;
    o.binary = vm.count("binary") > 0;
    o.in_flight = vm["in-flight"].as<std::size_t>();
    o.token = token_of(vm);
    Client client(vm["url"].as<std::string>(), o);
    std::unique_ptr<docarray::DocumentFileWriter> writer;
    std::unique_ptr<docarray::JsonlWriter> stdout_writer;
    if (vm.count("output")) writer = std::make_unique<docarray::DocumentFileWriter>(vm["output"].as<std::string>());
    else stdout_writer = std::make_unique<docarray::JsonlWriter>(std::cout, "<stdout>");
    const bool progress = ::isatty(STDERR_FILENO);
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t sent = 0, received = 0, requests = 0;
    client.post(
        endpoint,
        [&](docarray::DocumentArray& batch) {
          docarray::Document d;
          while (batch.size() < request_size && reader->next(d)) batch.append(std::move(d));
          sent += batch.size();
          return !batch.empty();
        },
        parameters,
        [&](ClientResponse& r) {
          ++requests;
          received += r.docs.size();
          for (const auto& d : r.docs) writer ? writer->write(d) : stdout_writer->write(d);
          if (progress) {
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            std::fprintf(stderr, "\r%zu requests, %zu documents back, %.0f docs/s   ", requests, received, s > 0 ? received / s : 0.0);
          }
        });
    if (writer) writer->close();
    if (stdout_writer) stdout_writer->close();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (progress) std::fprintf(stderr, "\n");
    std::fprintf(stderr, "posted %zu documents in %zu requests to %s%s, %zu came back, in %.2f s\n", sent, requests,
                 client.url().c_str(), endpoint.c_str(), received, s);
    return kOk;
  } catch (const Error& e) {
    std::cerr << "flow post: " << e.what() << "\n";
    return kRunFailed;
  } catch (const docarray::Error& e) {
    std::cerr << "flow post: " << e.what() << "\n";
    return kRunFailed;
  }
}

}  // namespace docflow::cli
