#pragma once
// Debian's chromium, headless, driven over the Chrome DevTools Protocol on a
// loopback WebSocket (Boost.Beast): load a page, type into it as a user
// does (focus, Input.insertText, a real Enter key event), read the DOM with
// JavaScript, take a screenshot. No chromedriver, no node: the browser's own
// protocol. Every wait is bounded; the destructor kills the browser's whole
// process group and reaps it.
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.hpp"

namespace docflow::testing {

class HeadlessChromium {
 public:
  static constexpr const char* kExecutable = "/usr/bin/chromium";
  static bool installed() { return std::filesystem::exists(kExecutable); }

  explicit HeadlessChromium(int width = 1000, int height = 700) {
    launch(width, height);
    const std::string page = page_websocket_path();
    websocket_.next_layer().connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)});
    bound_reads(websocket_.next_layer());
    websocket_.read_message_max(64 << 20);  // screenshots
    websocket_.handshake("127.0.0.1:" + std::to_string(port_), page);
    call("Page.enable");
    call("Runtime.enable");
  }

  ~HeadlessChromium() {
    boost::system::error_code ignored;
    websocket_.next_layer().close(ignored);
    if (pid_ > 0) {
      ::kill(-pid_, SIGKILL);  // chromium and its renderer, GPU and utility processes
      ::waitpid(pid_, nullptr, 0);
    }
  }
  HeadlessChromium(const HeadlessChromium&) = delete;
  HeadlessChromium& operator=(const HeadlessChromium&) = delete;

  // Loads `url` and returns once its load event fired.
  void navigate(const std::string& url) {
    call("Page.navigate", {{"url", url}});
    wait_for_event("Page.loadEventFired");
  }

  // The value of a JavaScript expression (awaited if it is a promise), as JSON.
  nlohmann::json evaluate(const std::string& expression) {
    nlohmann::json r = call("Runtime.evaluate", {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    if (r.contains("exceptionDetails")) throw std::runtime_error("JavaScript threw: " + r["exceptionDetails"].dump());
    return r["result"].value("value", nlohmann::json());
  }

  // Polls `condition` (a JavaScript expression) until it is true.
  bool wait_until(const std::string& condition, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (evaluate("Boolean(" + condition + ")") == true) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Types `text` into the element `selector` as a user would: a click's
  // focus, then the text as input events.
  void type_into(const std::string& selector, const std::string& text) {
    evaluate("document.querySelector(" + nlohmann::json(selector).dump() + ").focus()");
    call("Input.insertText", {{"text", text}});
  }

  void press_enter() {
    nlohmann::json key = {{"key", "Enter"}, {"code", "Enter"}, {"windowsVirtualKeyCode", 13}, {"text", "\r"}};
    key["type"] = "keyDown";
    call("Input.dispatchKeyEvent", key);
    key.erase("text");
    key["type"] = "keyUp";
    call("Input.dispatchKeyEvent", key);
  }

  void screenshot(const std::string& png_path) {
    const std::string b64 = call("Page.captureScreenshot", {{"format", "png"}})["data"];
    std::string png(boost::beast::detail::base64::decoded_size(b64.size()), '\0');
    png.resize(boost::beast::detail::base64::decode(png.data(), b64.data(), b64.size()).first);
    std::ofstream(png_path, std::ios::binary) << png;
  }

 private:
  static void bound_reads(boost::asio::ip::tcp::socket& s) {
    timeval tv{20, 0};  // a browser that stops answering fails the test, it does not hang it
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }

  void launch(int width, int height) {
    const std::string data_dir = profile_.path().string();
    std::vector<std::string> args = {kExecutable, "--headless=new", "--no-sandbox", "--disable-gpu",
                                     "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                                     "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
                                     "--user-data-dir=" + data_dir,
                                     "--window-size=" + std::to_string(width) + "," + std::to_string(height),
                                     "about:blank"};
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::setpgid(0, 0);
      // Its stderr is D-Bus noise on a machine without a session bus.
      std::freopen("/dev/null", "w", stderr);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kExecutable, argv.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);
    // Chromium writes the port it bound into DevToolsActivePort.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    const std::filesystem::path active = profile_.path() / "DevToolsActivePort";
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream in(active);
      if (in >> port_ && port_ > 0) return;
      port_ = 0;
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("chromium exited before it opened its DevTools port");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    throw std::runtime_error("chromium did not open its DevTools port within 30 s");
  }

  // The page target's WebSocket path, from the browser's /json/list.
  std::string page_websocket_path() {
    namespace http = boost::beast::http;
    boost::asio::ip::tcp::socket s(io_);
    s.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port_)});
    bound_reads(s);
    http::request<http::empty_body> req(http::verb::get, "/json/list", 11);
    req.set(http::field::host, "127.0.0.1");
    http::write(s, req);
    boost::beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(s, buf, res);
    for (const auto& target : nlohmann::json::parse(res.body()))
      if (target.value("type", "") == "page") {
        const std::string ws = target["webSocketDebuggerUrl"];
        return ws.substr(ws.find("/devtools/"));
      }
    throw std::runtime_error("chromium has no page target: " + res.body());
  }

  // Sends a command and reads until its answer; events read meanwhile are kept.
  nlohmann::json call(const std::string& method, nlohmann::json params = nlohmann::json::object()) {
    const int id = ++last_id_;
    websocket_.write(boost::asio::buffer(nlohmann::json{{"id", id}, {"method", method}, {"params", params}}.dump()));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      nlohmann::json m = read();
      if (m.value("id", 0) == id) {
        if (m.contains("error")) throw std::runtime_error(method + ": " + m["error"].dump());
        return m["result"];
      }
      if (m.contains("method")) events_.push_back(m["method"]);
    }
    throw std::runtime_error(method + ": no answer from chromium within 30 s");
  }

  void wait_for_event(const std::string& method) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto it = events_.begin(); it != events_.end(); ++it)
        if (*it == method) {
          events_.erase(events_.begin(), it + 1);
          return;
        }
      nlohmann::json m = read();
      if (m.contains("method")) events_.push_back(m["method"]);
    }
    throw std::runtime_error("chromium sent no " + method + " within 30 s");
  }

  nlohmann::json read() {
    boost::beast::flat_buffer buf;
    websocket_.read(buf);  // throws once SO_RCVTIMEO expires
    return nlohmann::json::parse(boost::beast::buffers_to_string(buf.data()));
  }

  TempDir profile_;
  pid_t pid_ = -1;
  int port_ = 0;
  int last_id_ = 0;
  std::vector<std::string> events_;
  boost::asio::io_context io_;
  boost::beast::websocket::stream<boost::asio::ip::tcp::socket> websocket_{io_};
};

}  // namespace docflow::testing
