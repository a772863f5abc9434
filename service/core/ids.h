// Fresh identifiers for notifications, commands and request ids: RFC 9562
// version 7 UUIDs, which start with the time they were made. Rows keyed by
// them are added at the right edge of their indexes, not on random pages
// (cheaper to write and to keep cached); 62 random bits keep them
// unguessable within a millisecond. Thread-safe.
//
//   std::string id = NewUuid();  // "019af5b2-3c41-7d0e-9a2b-0c4d5e6f7a8b"
#ifndef HERALD_SERVICE_CORE_IDS_H_
#define HERALD_SERVICE_CORE_IDS_H_

#include <string>

namespace herald {

std::string NewUuid();

}  // namespace herald

#endif  // HERALD_SERVICE_CORE_IDS_H_
