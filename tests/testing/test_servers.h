// Access to the PostgreSQL and Mosquitto that the `servers` CTest fixture
// started (scripts/test-servers.sh), for integration and end-to-end tests.
//
//   const TestServers& servers = TestServers::Get();
//   std::string url = CreateScratchDatabase("store_test");  // fresh, migrated
#ifndef HERALD_TESTS_TESTING_TEST_SERVERS_H_
#define HERALD_TESTS_TESTING_TEST_SERVERS_H_

#include <string>

namespace herald::testing {

struct TestServers {
  std::string database_url;  // superuser URL of the "postgres" database
  std::string mqtt_uri;      // tcp://127.0.0.1:PORT
  std::string mqtt_host;
  int mqtt_port = 0;
  int pg_port = 0;

  // Reads $HERALD_TEST_SERVERS_ENV; aborts the test binary with a clear
  // message when the fixture did not run.
  static const TestServers& Get();
};

// Creates an empty database with a unique name derived from `prefix` and
// returns its URL. With `migrate`, applies migrations/ to it first.
std::string CreateScratchDatabase(const std::string& prefix, bool migrate = true);

// The source tree (HERALD_SOURCE_DIR), e.g. to find migrations/.
std::string SourceDir();

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_TEST_SERVERS_H_
