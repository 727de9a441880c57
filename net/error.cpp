// net/error.cpp: goro::net's statuses (goro/net/error.hpp).
//
// The errno of a failed system call travels as a payload under
// kErrnoPayload, its decimal text, or under goro::io's kErrnoPayloadUrl
// in a status goro::io built. A status with neither (built by
// absl::ErrnoToStatus alone, which keeps the errno only as the code it maps
// to and as strerror's text at the end of the message) has it recovered
// from there by errno_of, checking both (the text of exactly one errno,
// and the code that errno maps to), so a message that merely looks
// similar is not mistaken for one.
#include "goro/net/error.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "error_internal.hpp"
#include "goro/io.hpp"

namespace goro::net {
namespace {

constexpr absl::string_view kErrnoPayload = "goro.net/errno";
constexpr absl::string_view kClosedPayload = "goro.net/closed";
// errno values strerror knows on Linux.
constexpr int kMaxErrno = 133;

std::optional<int> errno_payload(const absl::Status& status) {
  auto payload = status.GetPayload(kErrnoPayload);
  if (!payload) payload = status.GetPayload(io::kErrnoPayloadUrl);  // a goro::io status
  if (!payload) return std::nullopt;
  const std::string text(*payload);
  int value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The errno whose strerror text ends the message and whose code the status
// carries, if exactly one does.
std::optional<int> errno_from_message(const absl::Status& status) {
  const std::string_view message(status.message().data(), status.message().size());
  std::optional<int> found;
  for (int error = 1; error <= kMaxErrno; ++error) {
    const std::string_view text = std::strerror(error);
    if (message.size() < text.size() + 2 || !message.ends_with(text)) continue;
    if (message.substr(message.size() - text.size() - 2, 2) != ": ") continue;
    if (absl::ErrnoToStatus(error, "").code() != status.code()) continue;
    if (found) return std::nullopt;  // ambiguous
    found = error;
  }
  return found;
}

}  // namespace

absl::Status closed_error(std::string_view operation) {
  absl::Status status =
      absl::FailedPreconditionError(std::string(operation) + ": use of closed network connection");
  status.SetPayload(kClosedPayload, absl::Cord("1"));
  return status;
}

bool is_closed(const absl::Status& status) noexcept {
  return !status.ok() && status.GetPayload(kClosedPayload).has_value();
}

std::optional<int> errno_of(const absl::Status& status) {
  if (status.ok() || is_closed(status)) return std::nullopt;
  if (auto error = errno_payload(status)) return error;
  return errno_from_message(status);
}

bool is_timeout(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kDeadlineExceeded) return true;
  return errno_of(status) == ETIMEDOUT;
}

bool is_refused(const absl::Status& status) { return errno_of(status) == ECONNREFUSED; }

bool is_unreachable(const absl::Status& status) {
  const auto error = errno_of(status);
  return error == ENETUNREACH || error == EHOSTUNREACH;
}

bool is_eof(const absl::Status& status) noexcept {
  return status.code() == absl::StatusCode::kOutOfRange;
}

namespace internal {

absl::Status errno_error(int error, std::string_view context) {
  absl::Status status = absl::ErrnoToStatus(error, std::string(context));
  status.SetPayload(kErrnoPayload, absl::Cord(absl::string_view(std::to_string(error))));
  return status;
}

absl::Status annotate(const absl::Status& status, std::string_view prefix) {
  if (status.ok()) return status;
  absl::Status annotated(status.code(), std::string(prefix) + ": " + std::string(status.message()));
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    annotated.SetPayload(url, payload);
  });
  if (!errno_payload(annotated)) {
    if (auto error = errno_from_message(status)) {
      annotated.SetPayload(kErrnoPayload, absl::Cord(absl::string_view(std::to_string(*error))));
    }
  }
  return annotated;
}

}  // namespace internal
}  // namespace goro::net
