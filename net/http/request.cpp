// net/http/request.cpp: Request's lookups and body reads (the body comes
// from the connection's parser, connection.hpp).
#include "goro/http/request.hpp"

#include "connection.hpp"

namespace goro::http {

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const Header& h : headers_) {
    if (internal::equals_ignore_case(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::string_view Request::param(std::string_view name) const noexcept {
  for (const auto& [key, value] : params_) {
    if (key == name) return value;
  }
  return {};
}

Task<absl::StatusOr<std::size_t>> Request::read(void* buffer, std::size_t length) {
  co_return co_await connection_->read_body(static_cast<char*>(buffer), length);
}

Task<absl::Status> Request::read_all(std::string& body) {
  constexpr std::size_t kStep = 4096;
  for (;;) {
    const std::size_t old_size = body.size();
    body.resize(old_size + kStep);
    auto n = co_await connection_->read_body(body.data() + old_size, kStep);
    body.resize(old_size + (n.ok() ? *n : 0));
    if (!n.ok()) co_return n.status();
    if (*n == 0) co_return absl::OkStatus();
  }
}

}  // namespace goro::http
