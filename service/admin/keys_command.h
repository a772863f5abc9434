// `herald keys create|list|revoke`: how operators manage API keys (issue 6,
// docs/security.md). Separate from main() so that it can be tested with a
// fake AuthStore.
//
//   herald keys create --tenant=acme --scopes=notify,devices:read --key_name=billing
//     -> prints the key once (stdout: the key alone on its last line)
//   herald keys list [--tenant=acme]
//   herald keys revoke 3f9a0c1d2e4b
#ifndef HERALD_SERVICE_ADMIN_KEYS_COMMAND_H_
#define HERALD_SERVICE_ADMIN_KEYS_COMMAND_H_

#include <ostream>
#include <string>
#include <vector>

#include "service/auth/auth_store.h"

namespace herald {

struct KeysCommand {
  std::string action;  // create, list or revoke
  std::string key_id;  // revoke
  std::string tenant_id = "default";
  std::vector<std::string> scopes;  // create
  std::string name;                 // create
  std::string topic_prefix;         // create; "" = the tenant id (or "" for "default")
};

// Runs the command against `store`; results go to `out`, errors to `err`.
// Returns the process exit code: 0 done, 1 the store failed, 2 bad input.
int RunKeysCommand(const KeysCommand& command, AuthStore& store, std::ostream& out,
                   std::ostream& err);

}  // namespace herald

#endif  // HERALD_SERVICE_ADMIN_KEYS_COMMAND_H_
