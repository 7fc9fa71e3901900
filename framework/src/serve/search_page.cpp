// The search page the gateway serves at /ui, compiled into the library (the
// gateway serves no file from disk). It calls the same HTTP API as any
// client: POST /search with one text document, and shows the matches as an
// image grid (a match's blob with an image mime type, or its http(s) uri)
// with their scores and the request's latency. Everything a match carries
// is put into the page as text or as a data: URL, never as markup.
#include "search_page.hpp"

namespace docflow::serve {

const char* const kSearchPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docflow search</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
  form { display: flex; gap: .5rem; margin-bottom: 1rem; }
  input[type=search] { flex: 1; font-size: 1.1rem; padding: .5rem; }
  button { font-size: 1.1rem; padding: .5rem 1rem; }
  #status { color: #666; margin-bottom: 1rem; min-height: 1.2em; }
  #results { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 1rem; }
  figure { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .5rem; text-align: center; }
  figure img { width: 112px; height: 112px; object-fit: contain; image-rendering: pixelated; background: #f4f4f4; }
  figcaption { font-size: .85rem; overflow-wrap: anywhere; }
  .score { color: #666; font-variant-numeric: tabular-nums; }
  .error { color: #b00020; }
</style>
</head>
<body>
<h1 id="title">docflow search</h1>
<form id="search">
  <input type="search" id="query" name="q" placeholder="a pair of trousers" autofocus>
  <input type="number" id="limit" name="limit" value="12" min="1" max="100" title="matches">
  <input type="password" id="token" placeholder="token" title="this service needs a token" autocomplete="off" hidden>
  <button type="submit" id="go">Search</button>
</form>
<div id="status"></div>
<div id="results"></div>
<script>
"use strict";
const form = document.getElementById("search"), query = document.getElementById("query");
const limit = document.getElementById("limit"), status = document.getElementById("status");
const results = document.getElementById("results"), token = document.getElementById("token");
// A service started with a token answers 401 until the page sends it; it is
// kept for this tab only (sessionStorage), never in the URL.
token.value = sessionStorage.getItem("docflow-token") || "";
if (token.value) token.hidden = false;

function imageOf(m) {
  if (m.blob && m.mime_type && m.mime_type.startsWith("image/")) return "data:" + m.mime_type + ";base64," + m.blob;
  if (m.uri && /^(https?:|data:image\/)/.test(m.uri)) return m.uri;
  return null;
}

function scoreOf(m) {
  const names = Object.keys(m.scores || {});
  return names.length ? names[0] + " " + Number(m.scores[names[0]].value).toFixed(4) : "";
}

function label(m) {
  if (m.tags && m.tags.label !== undefined) return String(m.tags.label_name || m.tags.label);
  return m.text || m.id;
}

async function search(text) {
  status.className = "";
  status.textContent = "searching…";
  results.replaceChildren();
  const t0 = performance.now();
  try {
    const headers = {"Content-Type": "application/json", "Accept": "application/json"};
    if (token.value) headers["Authorization"] = "Bearer " + token.value;
    const res = await fetch("search", {
      method: "POST",
      headers: headers,
      body: JSON.stringify({data: [{text: text}], parameters: {limit: Number(limit.value) || 12}}),
    });
    const body = await res.json();
    const ms = performance.now() - t0;
    if (res.status === 401) {
      token.hidden = false;
      token.focus();
      throw new Error(token.value ? "the token was refused" : "this service needs a token: enter it beside the query");
    }
    if (token.value) sessionStorage.setItem("docflow-token", token.value);
    if (!res.ok) throw new Error((body.header && body.header.status && body.header.status.description) || body.detail || res.statusText);
    const matches = (body.data && body.data[0] && body.data[0].matches) || [];
    status.textContent = matches.length + " matches in " + ms.toFixed(1) + " ms";
    status.dataset.count = String(matches.length);
    for (const m of matches) {
      const fig = document.createElement("figure");
      fig.className = "match";
      fig.dataset.id = m.id;
      const src = imageOf(m);
      if (src) {
        const img = document.createElement("img");
        img.src = src;
        img.alt = label(m);
        fig.appendChild(img);
      }
      const cap = document.createElement("figcaption");
      const name = document.createElement("div");
      name.className = "label";
      name.textContent = label(m);
      const score = document.createElement("div");
      score.className = "score";
      score.textContent = scoreOf(m);
      cap.append(name, score);
      fig.appendChild(cap);
      results.appendChild(fig);
    }
  } catch (e) {
    status.className = "error";
    status.textContent = "search failed: " + e.message;
  }
}

form.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = query.value.trim();
  if (!text) return;
  history.replaceState(null, "", "?q=" + encodeURIComponent(text));
  search(text);
});

const initial = new URLSearchParams(location.search).get("q");
if (initial) {
  query.value = initial;
  search(initial);
}
</script>
</body>
</html>
)HTML";

}  // namespace docflow::serve
