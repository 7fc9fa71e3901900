// The search page at /ui in a real browser: Debian's chromium, headless,
// loads the page with a query, the page calls POST /search, and the test
// reads the rendered DOM: the right matches, as images, with scores. A
// screenshot is kept in the build tree (Testing/ui-search.png). A service
// with a token: the page asks for it, and searches once it is typed in.
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>

#include "../support/headless_chromium.hpp"
#include "../support/run_command.hpp"
#include "../support/temp_dir.hpp"
#include "docarray/document.hpp"
#include "docflow/client.hpp"
#include "serve_support.hpp"

using namespace docflow;
using namespace docflow::testing;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::size_t count(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (auto p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}

const char* kChromium = "/usr/bin/chromium";

std::string chromium(const std::string& args) {
  // Its stderr is D-Bus noise on a machine without a session bus: dropped.
  return run_command("(" + std::string(kChromium) + " --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage "
                     "--no-first-run --virtual-time-budget=15000 " + args + " 2>/dev/null)").output;
}

docarray::Document product(const std::string& text, const std::string& color) {
  docarray::Document d;
  d.text = text;
  d.mime_type = "image/svg+xml";
  d.blob = "<svg xmlns='http://www.w3.org/2000/svg' width='28' height='28'><rect width='28' height='28' fill='" + color +
           "'/></svg>";
  d.tags["label_name"] = text;
  return d;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(ui)

BOOST_AUTO_TEST_CASE(the_search_page_shows_the_right_matches_in_a_browser) {
  if (!std::filesystem::exists(kChromium)) {
    BOOST_TEST_MESSAGE("skipped: " << kChromium << " is not installed (scripts/setup.sh installs chromium)");
    return;
  }
  ServedFlow served("  - {name: encoder, uses: TextHasher}\n"
                    "  - {name: indexer, uses: SimpleIndexer, with: {limit: 3}}\n");
  docarray::DocumentArray catalogue;
  catalogue.append(product("blue trousers", "navy"));
  catalogue.append(product("red dress", "crimson"));
  catalogue.append(product("green shirt", "green"));
  catalogue.append(product("black trousers", "black"));
  catalogue.append(product("white sneaker", "white"));
  Client(served.url()).post("/index", catalogue);

  const std::string dom = chromium("--dump-dom '" + served.url() + "/ui?q=a%20pair%20of%20trousers'");
  BOOST_TEST(contains(dom, "matches in"), dom);
  // The page asks for 12 matches (its limit box): all five come back.
  BOOST_TEST(contains(dom, "5 matches in"), dom);
  BOOST_TEST(count(dom, "<figure class=\"match\"") == 5u, dom);
  BOOST_TEST(count(dom, "<img src=\"data:image/svg+xml;base64,") == 5u, dom);
  // Both trousers first (they share the query's word), then anything else.
  const auto first = dom.find("class=\"label\">"), second = dom.find("class=\"label\">", first + 1);
  BOOST_REQUIRE(second != std::string::npos);
  const std::string top2 = dom.substr(first, dom.find("</div>", second) - first);
  BOOST_TEST(contains(top2, "blue trousers"), top2);
  BOOST_TEST(contains(top2, "black trousers"), top2);
  BOOST_TEST(contains(dom, "cosine 0."), dom);

  // ctest runs this suite twice at once (framework_tests and
  // framework_tests_with_user_environment): each takes its screenshot in a
  // folder of its own and then renames it into the build tree, so one run
  // never removes the file the other is about to check.
  TempDir scratch;
  const std::string taken = scratch.file("ui-search.png");
  chromium("--window-size=1000,700 --screenshot=" + taken + " '" + served.url() + "/ui?q=a%20pair%20of%20trousers'");
  BOOST_REQUIRE(std::filesystem::exists(taken));
  BOOST_TEST(std::filesystem::file_size(taken) > 1000u);
  const std::string shot = std::string(UI_SCREENSHOT_DIR) + "/ui-search.png";
  std::filesystem::copy_file(taken, shot + "." + std::to_string(::getpid()),
                             std::filesystem::copy_options::overwrite_existing);
  std::filesystem::rename(shot + "." + std::to_string(::getpid()), shot);
  BOOST_TEST_MESSAGE("screenshot: " << shot);

  // A flow without a /search executor has no page; the page is not on disk.
  ServedFlow plain("  - {name: encoder, uses: TextHasher}\n");
  const std::string r = raw_exchange(plain.port(), http_request("GET", "/ui", ""));
  BOOST_TEST(status_of(r) == 404, r);
}

BOOST_AUTO_TEST_CASE(with_a_token_the_page_asks_for_it_and_then_searches) {
  if (!HeadlessChromium::installed()) {
    BOOST_TEST_MESSAGE("skipped: " << HeadlessChromium::kExecutable << " is not installed (scripts/setup.sh installs chromium)");
    return;
  }
  GatewayOptions o;
  o.token = "s3cret";
  ServedFlow served("  - {name: encoder, uses: TextHasher}\n"
                    "  - {name: indexer, uses: SimpleIndexer, with: {limit: 3}}\n",
                    o);
  ClientOptions co;
  co.token = "s3cret";
  docarray::DocumentArray catalogue;
  catalogue.append(product("blue trousers", "navy"));
  catalogue.append(product("red dress", "crimson"));
  Client(served.url(), co).post("/index", catalogue);
  // The page itself is open (static, no data); /search is not.
  BOOST_TEST(status_of(raw_exchange(served.port(), http_request("GET", "/ui", ""))) == 200);
  BOOST_TEST(status_of(raw_exchange(served.port(), http_request("POST", "/search", "{}"))) == 401);

  HeadlessChromium browser;
  browser.navigate(served.url() + "/ui");
  BOOST_TEST(browser.evaluate("document.getElementById('token').hidden") == true);
  browser.type_into("#query", "trousers");
  browser.press_enter();
  BOOST_REQUIRE(browser.wait_until("document.getElementById('status').className === 'error'", std::chrono::seconds(10)));
  const std::string asked = browser.evaluate("document.getElementById('status').textContent");
  BOOST_TEST(contains(asked, "this service needs a token"), asked);
  BOOST_TEST(browser.evaluate("document.getElementById('token').hidden") == false);
  browser.type_into("#token", "s3cret");
  browser.press_enter();
  BOOST_REQUIRE_MESSAGE(browser.wait_until("document.querySelectorAll('figure.match').length === 2", std::chrono::seconds(10)),
                        browser.evaluate("document.getElementById('status').textContent").dump());
  BOOST_TEST(browser.evaluate("document.querySelector('figure.match .label').textContent") == "blue trousers");
  // Kept for the tab, not put in the URL.
  BOOST_TEST(browser.evaluate("sessionStorage.getItem('docflow-token')") == "s3cret");
  BOOST_TEST(!contains(browser.evaluate("location.href").get<std::string>(), "s3cret"));
}

BOOST_AUTO_TEST_SUITE_END()
