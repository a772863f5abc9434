// Early-return helpers for absl::Status, which Debian's Abseil (20220623) lacks.
//
//   HERALD_RETURN_IF_ERROR(store.Delete(tenant, id));
//   HERALD_ASSIGN_OR_RETURN(Device device, store.Get(tenant, id));
#ifndef HERALD_SERVICE_CORE_STATUS_MACROS_H_
#define HERALD_SERVICE_CORE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define HERALD_RETURN_IF_ERROR(expr)                  \
  do {                                                \
    ::absl::Status herald_status_ = (expr);           \
    if (!herald_status_.ok()) return herald_status_;  \
  } while (false)

#define HERALD_STATUS_CONCAT_INNER_(a, b) a##b
#define HERALD_STATUS_CONCAT_(a, b) HERALD_STATUS_CONCAT_INNER_(a, b)

#define HERALD_ASSIGN_OR_RETURN(lhs, expr) \
  HERALD_ASSIGN_OR_RETURN_IMPL_(HERALD_STATUS_CONCAT_(herald_statusor_, __LINE__), lhs, expr)

#define HERALD_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()

#endif  // HERALD_SERVICE_CORE_STATUS_MACROS_H_
