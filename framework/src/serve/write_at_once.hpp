#pragma once
// Writes what a non-blocking socket takes of an HTTP message now. A message
// the socket takes whole needs no async write, whose completion is a round
// of the event loop of its own (with an epoll_wait; a system call costs a
// microsecond on some machines, bench/RESULTS.md). Used by the server's
// connections (http_server.cpp) and the remote executors' (pipelined_connection.cpp).
//
// Returns the bytes written; `ec` is set only for a real failure. When
// `serializer.is_done()` is false afterwards, the socket is full: the rest
// goes through an async write of the same serializer.
#include <boost/asio/error.hpp>
#include <boost/beast/http/write.hpp>

namespace docflow::serve {

template <class Socket, class Serializer>
std::size_t write_at_once(Socket& socket, Serializer& serializer, boost::system::error_code& ec) {
  std::size_t n = 0;
  ec = {};
  while (!ec && !serializer.is_done()) n += boost::beast::http::write_some(socket, serializer, ec);
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) ec = {};
  return n;
}

}  // namespace docflow::serve
