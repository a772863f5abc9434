// End to end: TLS and mutual TLS on the gRPC port of the real herald binary.
// The certificates are made here with Debian's openssl command, in a fresh
// directory: a CA, a server certificate for 127.0.0.1 and localhost, a client
// certificate from that CA, and a second CA with a client certificate of its
// own, which Herald must refuse. The calls go to the health service, which
// needs no API key; heraldctl's TLS flags are checked against the same
// servers.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/testing/herald_process.h"
#include "tests/testing/test_servers.h"

namespace herald {
namespace {

using ::grpc::health::v1::Health;
using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::herald::testing::HeraldProcess;
using ::herald::testing::TestServers;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs a shell command, its output (stdout and stderr) to `output`; returns
// the exit code, or -1 if it did not exit normally.
int RunCommand(const std::string& command, std::string* output) {
  FILE* pipe = popen(absl::StrCat(command, " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, read);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The test PKI, made by `openssl` in `dir`. Elliptic-curve keys: fast to make.
class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  // Makes every file; on failure, returns what openssl said.
  absl::Status Make() {
    // Two independent CAs.
    for (const std::string ca : {"ca", "other_ca"}) {
      if (absl::Status made = Openssl(absl::StrCat(
              "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2",
              " -subj '/CN=Herald test ", ca, "' -keyout ", Path(ca + ".key"), " -out ",
              Path(ca + ".crt"), " -addext basicConstraints=critical,CA:TRUE",
              " -addext keyUsage=critical,keyCertSign,cRLSign"));
          !made.ok()) {
        return made;
      }
    }
    // The server: names for both ways of reaching it on this machine.
    if (absl::Status made = Leaf("server", "ca", "localhost",
                                 "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                                 "extendedKeyUsage=serverAuth\n");
        !made.ok()) {
      return made;
    }
    if (absl::Status made = Leaf("client", "ca", "herald test client", "extendedKeyUsage=clientAuth\n");
        !made.ok()) {
      return made;
    }
    return Leaf("other_client", "other_ca", "herald other client",
                "extendedKeyUsage=clientAuth\n");
  }

  std::string Path(const std::string& name) const { return absl::StrCat(dir_, "/", name); }
  std::string Pem(const std::string& name) const { return ReadFile(Path(name)); }

 private:
  absl::Status Openssl(const std::string& arguments) {
    std::string output;
    const std::string command = absl::StrCat("openssl ", arguments);
    if (RunCommand(command, &output) != 0) {
      return absl::InternalError(absl::StrCat("`", command, "` failed:\n", output));
    }
    return absl::OkStatus();
  }

  // A key and a certificate for it, signed by `ca`, with `extensions`.
  absl::Status Leaf(const std::string& name, const std::string& ca,
                    const std::string& common_name, const std::string& extensions) {
    std::ofstream(Path(name + ".ext")) << "basicConstraints=CA:FALSE\n"
                                          "keyUsage=critical,digitalSignature\n"
                                       << extensions;
    if (absl::Status made = Openssl(absl::StrCat(
            "req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/CN=",
            common_name, "' -keyout ", Path(name + ".key"), " -out ", Path(name + ".csr")));
        !made.ok()) {
      return made;
    }
    return Openssl(absl::StrCat("x509 -req -days 2 -in ", Path(name + ".csr"), " -CA ",
                                Path(ca + ".crt"), " -CAkey ", Path(ca + ".key"),
                                " -CAcreateserial -extfile ", Path(name + ".ext"), " -out ",
                                Path(name + ".crt")));
  }

  std::string dir_;
};

class GrpcTlsTest : public ::testing::Test {
 protected:
  // Failures here are recorded, not asserted: gtest would report the tests
  // of a suite whose set-up failed as skipped, and CTest would pass them.
  static void SetUpTestSuite() {
    setup_error_ = new std::string();
    std::string dir_template = absl::StrCat(
        std::getenv("TMPDIR") != nullptr ? std::getenv("TMPDIR") : "/tmp", "/herald-tls-XXXXXX");
    if (mkdtemp(dir_template.data()) == nullptr) {
      *setup_error_ = "mkdtemp failed";
      return;
    }
    dir_ = new std::string(dir_template);
    pki_ = new TestPki(*dir_);
    if (absl::Status made = pki_->Make(); !made.ok()) {
      *setup_error_ = made.ToString();
      return;
    }
    database_url_ = new std::string(herald::testing::CreateScratchDatabase("grpc_tls"));

    tls_herald_ = new HeraldProcess(BaseArgs({"--grpc_tls_cert_file=" + pki_->Path("server.crt"),
                                              "--grpc_tls_key_file=" + pki_->Path("server.key")}));
    if (absl::Status started = tls_herald_->Start(); !started.ok()) {
      *setup_error_ = absl::StrCat("TLS herald: ", started.ToString());
      return;
    }
    mtls_herald_ = new HeraldProcess(
        BaseArgs({"--grpc_tls_cert_file=" + pki_->Path("server.crt"),
                  "--grpc_tls_key_file=" + pki_->Path("server.key"),
                  "--grpc_tls_client_ca_file=" + pki_->Path("ca.crt")}));
    if (absl::Status started = mtls_herald_->Start(); !started.ok()) {
      *setup_error_ = absl::StrCat("mutual TLS herald: ", started.ToString());
      return;
    }
  }

  static void TearDownTestSuite() {
    for (HeraldProcess* herald : {tls_herald_, mtls_herald_}) {
      if (herald != nullptr && herald->Running()) {
        const int code = herald->Stop();
        EXPECT_EQ(code, 0) << "herald should exit 0 on SIGTERM\n" << herald->ReadLog();
      }
      delete herald;
    }
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
    delete pki_;
    delete dir_;
    delete database_url_;
    delete setup_error_;
  }

  void SetUp() override { ASSERT_TRUE(setup_error_->empty()) << *setup_error_; }

  void TearDown() override {
    if (!HasFailure()) return;
    for (HeraldProcess* herald : {tls_herald_, mtls_herald_}) {
      if (herald != nullptr) {
        std::fprintf(stderr, "--- herald log ---\n%s\n", herald->ReadLog().c_str());
      }
    }
  }

  // Flags every herald here needs, then `extra`.
  static std::vector<std::string> BaseArgs(std::vector<std::string> extra) {
    std::vector<std::string> args = {"--database_url=" + *database_url_,
                                     "--mqtt_uri=" + TestServers::Get().mqtt_uri};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  // TLS channel credentials trusting `ca` ("ca.crt"), presenting `client`
  // ("client" for client.crt and client.key) if not empty.
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                                       const std::string& client = "") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = pki_->Pem(ca);
    if (!client.empty()) {
      options.pem_cert_chain = pki_->Pem(client + ".crt");
      options.pem_private_key = pki_->Pem(client + ".key");
    }
    return grpc::SslCredentials(options);
  }

  // grpc.health.v1.Health/Check of `service` on `herald`, over a new channel
  // (no connection reused between cases). SERVING may take a moment for ""
  // (it follows the database, refreshed every 2 s): waits up to 10 s for it
  // as long as the calls succeed.
  static grpc::Status Check(const HeraldProcess& herald,
                            const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                            HealthCheckResponse* response, const std::string& service = "") {
    grpc::ChannelArguments arguments;
    // A fresh connection per channel, never one shared with another test.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    std::unique_ptr<Health::Stub> health = Health::NewStub(
        grpc::CreateCustomChannel(herald.grpc_target(), credentials, arguments));
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (true) {
      grpc::ClientContext context;
      context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
      HealthCheckRequest request;
      request.set_service(service);
      grpc::Status status = health->Check(&context, request, response);
      if (!status.ok() || response->status() == HealthCheckResponse::SERVING ||
          absl::Now() > deadline) {
        return status;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  static void ExpectServing(const HeraldProcess& herald,
                            const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    HealthCheckResponse response;
    grpc::Status status = Check(herald, credentials, &response);
    ASSERT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  }

  static void ExpectRefused(const HeraldProcess& herald,
                            const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
    HealthCheckResponse response;
    grpc::Status status = Check(herald, credentials, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << status.error_code() << ": " << status.error_message();
  }

  // `heraldctl ARGS stats` against `herald`; returns the exit code.
  static int Heraldctl(const HeraldProcess& herald, const std::string& args, std::string* output) {
    return RunCommand(absl::StrCat(HERALDCTL_BINARY_DEFAULT, " --address=", herald.grpc_target(),
                                   " --timeout=10s ", args, " stats"),
                      output);
  }

  // Runs `herald serve` with `extra` flags; expects it to refuse to start
  // with exit code `code` and `message` in its output.
  static void ExpectRefusesToStart(std::vector<std::string> extra, int code,
                                   const std::string& message) {
    std::vector<std::string> args = BaseArgs(std::move(extra));
    args.insert(args.begin(), "serve");
    args.push_back("--grpc_address=127.0.0.1:0");
    args.push_back("--metrics_address=127.0.0.1:0");
    std::string output;
    absl::StatusOr<int> exit_code =
        herald::testing::RunHerald(args, &output, absl::Seconds(30));
    ASSERT_TRUE(exit_code.ok()) << exit_code.status() << "\n" << output;
    EXPECT_EQ(*exit_code, code) << absl::StrJoin(args, " ") << "\n" << output;
    EXPECT_TRUE(absl::StrContains(output, message)) << "expected \"" << message << "\" in:\n"
                                                    << output;
    EXPECT_FALSE(absl::StrContains(output, "herald serving")) << output;
  }

  static std::string* setup_error_;
  static std::string* dir_;
  static TestPki* pki_;
  static std::string* database_url_;
  static HeraldProcess* tls_herald_;   // --grpc_tls_cert_file, --grpc_tls_key_file
  static HeraldProcess* mtls_herald_;  // and --grpc_tls_client_ca_file
};

std::string* GrpcTlsTest::setup_error_ = nullptr;
std::string* GrpcTlsTest::dir_ = nullptr;
TestPki* GrpcTlsTest::pki_ = nullptr;
std::string* GrpcTlsTest::database_url_ = nullptr;
HeraldProcess* GrpcTlsTest::tls_herald_ = nullptr;
HeraldProcess* GrpcTlsTest::mtls_herald_ = nullptr;

TEST_F(GrpcTlsTest, StartUpLogSaysTlsIsOnWithoutKeyMaterial) {
  const std::string log = tls_herald_->ReadLog();
  EXPECT_TRUE(absl::StrContains(log, "grpc_tls=tls")) << log;
  EXPECT_TRUE(absl::StrContains(log, "grpc_tls_key_file=" + pki_->Path("server.key"))) << log;
  EXPECT_TRUE(absl::StrContains(mtls_herald_->ReadLog(), "grpc_tls=mtls"));
  for (const std::string key : {"server.key", "client.key", "ca.key"}) {
    // A line of the key's base64 body.
    const std::string pem = pki_->Pem(key);
    const size_t start = pem.find('\n') + 1;
    const std::string body_line = pem.substr(start, pem.find('\n', start) - start);
    ASSERT_GT(body_line.size(), 20u);
    EXPECT_FALSE(absl::StrContains(log, body_line)) << key << " leaked into the log";
  }
}

TEST_F(GrpcTlsTest, ClientTrustingTheCaGetsServing) {
  ExpectServing(*tls_herald_, Tls("ca.crt"));
}

TEST_F(GrpcTlsTest, HostNameIsVerifiedToo) {
  // The certificate names 127.0.0.1 and localhost, nothing else.
  grpc::ChannelArguments arguments;
  arguments.SetSslTargetNameOverride("herald.example.com");
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  std::unique_ptr<Health::Stub> health = Health::NewStub(
      grpc::CreateCustomChannel(tls_herald_->grpc_target(), Tls("ca.crt"), arguments));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  HealthCheckResponse response;
  grpc::Status status = health->Check(&context, HealthCheckRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
}

TEST_F(GrpcTlsTest, PlaintextClientIsRefused) {
  ExpectRefused(*tls_herald_, grpc::InsecureChannelCredentials());
}

TEST_F(GrpcTlsTest, ClientTrustingAnotherCaIsRefused) {
  ExpectRefused(*tls_herald_, Tls("other_ca.crt"));
}

TEST_F(GrpcTlsTest, TlsWithoutClientCaIgnoresClientCertificates) {
  ExpectServing(*tls_herald_, Tls("ca.crt", "other_client"));
}

TEST_F(GrpcTlsTest, MutualTlsRefusesClientWithoutCertificate) {
  ExpectRefused(*mtls_herald_, Tls("ca.crt"));
}

TEST_F(GrpcTlsTest, MutualTlsRefusesCertificateOfAnotherCa) {
  ExpectRefused(*mtls_herald_, Tls("ca.crt", "other_client"));
}

TEST_F(GrpcTlsTest, MutualTlsAcceptsCertificateOfItsCa) {
  ExpectServing(*mtls_herald_, Tls("ca.crt", "client"));
}

TEST_F(GrpcTlsTest, MutualTlsRefusesPlaintext) {
  ExpectRefused(*mtls_herald_, grpc::InsecureChannelCredentials());
}

// heraldctl reaches a TLS Herald with its --tls_* flags. Whether the call
// is then allowed is API keys' business: any answer but UNAVAILABLE means
// the TLS connection stood.
TEST_F(GrpcTlsTest, HeraldctlSpeaksTls) {
  std::string plaintext;
  EXPECT_EQ(Heraldctl(*tls_herald_, "", &plaintext), 1) << plaintext;
  EXPECT_TRUE(absl::StrContains(plaintext, "UNAVAILABLE")) << plaintext;
  EXPECT_TRUE(absl::StrContains(plaintext, "--tls_ca_file")) << plaintext;  // the hint

  std::string tls;
  const int tls_code = Heraldctl(*tls_herald_, "--tls_ca_file=" + pki_->Path("ca.crt"), &tls);
  EXPECT_FALSE(absl::StrContains(tls, "UNAVAILABLE")) << tls;
  // The statistics, or the server's answer to the call.
  EXPECT_TRUE(tls_code == 0 || absl::StrContains(tls, "heraldctl: GetStats: ")) << tls;

  std::string renamed;
  Heraldctl(*tls_herald_,
            "--tls_ca_file=" + pki_->Path("ca.crt") + " --tls_server_name=localhost", &renamed);
  EXPECT_FALSE(absl::StrContains(renamed, "UNAVAILABLE")) << renamed;
}

TEST_F(GrpcTlsTest, HeraldctlSpeaksMutualTls) {
  std::string without_certificate;
  EXPECT_EQ(Heraldctl(*mtls_herald_, "--tls_ca_file=" + pki_->Path("ca.crt"),
                      &without_certificate),
            1);
  EXPECT_TRUE(absl::StrContains(without_certificate, "UNAVAILABLE")) << without_certificate;

  std::string with_certificate;
  Heraldctl(*mtls_herald_,
            absl::StrCat("--tls_ca_file=", pki_->Path("ca.crt"), " --tls_cert_file=",
                         pki_->Path("client.crt"), " --tls_key_file=", pki_->Path("client.key")),
            &with_certificate);
  EXPECT_FALSE(absl::StrContains(with_certificate, "UNAVAILABLE")) << with_certificate;

  std::string half;
  EXPECT_EQ(Heraldctl(*mtls_herald_,
                      absl::StrCat("--tls_ca_file=", pki_->Path("ca.crt"),
                                   " --tls_cert_file=", pki_->Path("client.crt")),
                      &half),
            2);
  EXPECT_TRUE(absl::StrContains(half, "--tls_key_file")) << half;
}

TEST_F(GrpcTlsTest, RefusesToStartWithACertificateAlone) {
  ExpectRefusesToStart({"--grpc_tls_cert_file=" + pki_->Path("server.crt")}, 2,
                       "--grpc_tls_key_file: required with --grpc_tls_cert_file");
}

TEST_F(GrpcTlsTest, RefusesToStartWithAMissingKeyFile) {
  const std::string missing = pki_->Path("no-such.key");
  ExpectRefusesToStart({"--grpc_tls_cert_file=" + pki_->Path("server.crt"),
                        "--grpc_tls_key_file=" + missing},
                       2, "--grpc_tls_key_file: cannot read \"" + missing + "\"");
}

TEST_F(GrpcTlsTest, RefusesToStartWithAClientCaAlone) {
  ExpectRefusesToStart({"--grpc_tls_client_ca_file=" + pki_->Path("ca.crt")}, 2,
                       "--grpc_tls_client_ca_file: mutual TLS needs TLS");
}

TEST_F(GrpcTlsTest, RefusesToStartWithTheKeyOfAnotherCertificate) {
  ExpectRefusesToStart({"--grpc_tls_cert_file=" + pki_->Path("server.crt"),
                        "--grpc_tls_key_file=" + pki_->Path("client.key")},
                       1, "the private key does not belong to the first certificate");
}

}  // namespace
}  // namespace herald
