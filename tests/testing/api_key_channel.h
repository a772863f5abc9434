// A gRPC channel that sends an API key with every call
// ("authorization: Bearer <key>"), through a client interceptor: gRPC drops
// call credentials on plaintext channels, and the tests talk to Herald over
// loopback without TLS.
//
//   auto channel = CreateApiKeyChannel(herald.grpc_target(), herald.api_key());
//   auto devices = herald::v1::DeviceService::NewStub(channel);
#ifndef HERALD_TESTS_TESTING_API_KEY_CHANNEL_H_
#define HERALD_TESTS_TESTING_API_KEY_CHANNEL_H_

#include <memory>
#include <string>

#include "grpcpp/channel.h"
#include "grpcpp/security/credentials.h"

namespace herald::testing {

// An empty `api_key` sends none (for tests of refusals and of
// --insecure_disable_auth).
std::shared_ptr<grpc::Channel> CreateApiKeyChannel(
    const std::string& target, const std::string& api_key,
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials());

}  // namespace herald::testing

#endif  // HERALD_TESTS_TESTING_API_KEY_CHANNEL_H_
