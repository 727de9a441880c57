// net/error_internal.hpp: how goro::net builds the statuses described in
// goro/net/error.hpp (errno payload, operation prefixes).
#ifndef GORO_NET_ERROR_INTERNAL_HPP_
#define GORO_NET_ERROR_INTERNAL_HPP_

#include <string_view>

#include "absl/status/status.h"

namespace goro::net::internal {

// absl::ErrnoToStatus(error, context) with `error` kept as a payload.
[[nodiscard]] absl::Status errno_error(int error, std::string_view context);

// `status` with "prefix: " before its message, its code and payloads kept,
// and the errno payload added when the status came from goro::io (which
// keeps it only in the message). OK stays OK.
[[nodiscard]] absl::Status annotate(const absl::Status& status, std::string_view prefix);

}  // namespace goro::net::internal

#endif  // GORO_NET_ERROR_INTERNAL_HPP_
