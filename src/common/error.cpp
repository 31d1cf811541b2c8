#include "common/error.h"

namespace chatd {

std::string_view code_name(errc c) noexcept {
  switch (c) {
    case errc::bad_request:
      return "bad_request";
    case errc::unauthorized:
      return "unauthorized";
    case errc::forbidden:
      return "forbidden";
    case errc::not_found:
      return "not_found";
    case errc::conflict:
      return "conflict";
    case errc::too_large:
      return "too_large";
    case errc::rate_limited:
      return "rate_limited";
    case errc::unavailable:
      return "unavailable";
    case errc::internal:
      return "internal";
  }
  return "internal";
}

errc code_from_name(std::string_view name) noexcept {
  for (auto c : {errc::bad_request, errc::unauthorized, errc::forbidden, errc::not_found, errc::conflict,
                 errc::too_large, errc::rate_limited, errc::unavailable}) {
    if (code_name(c) == name) return c;
  }
  return errc::internal;
}

int http_status(errc c) noexcept {
  switch (c) {
    case errc::bad_request:
      return 400;
    case errc::unauthorized:
      return 401;
    case errc::forbidden:
      return 403;
    case errc::not_found:
      return 404;
    case errc::conflict:
      return 409;
    case errc::too_large:
      return 413;
    case errc::rate_limited:
      return 429;
    case errc::unavailable:
      return 503;
    case errc::internal:
      return 500;
  }
  return 500;
}

}  // namespace chatd
