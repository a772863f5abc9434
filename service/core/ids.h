// Fresh random identifiers (RFC 4122 version 4 UUIDs) for notifications,
// commands and request ids. Thread-safe.
//
//   std::string id = NewUuid();  // "3f1c2a9e-5b7d-4c1e-9a2b-0c4d5e6f7a8b"
#ifndef HERALD_SERVICE_CORE_IDS_H_
#define HERALD_SERVICE_CORE_IDS_H_

#include <string>

namespace herald {

std::string NewUuid();

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_IDS_H_
