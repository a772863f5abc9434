// Pieces of heraldctl that need neither gRPC nor the generated protos:
// parsing the KEY=VALUE arguments and the enum-like options of the command
// line, and rendering aligned text tables for people.
//
//   absl::StatusOr<std::map<std::string, std::string>> data =
//       herald::ctl::ParseKeyValues({"door=front", "floor=3"});
//   herald::ctl::Table table({"DEVICE", "OWNER"});
//   table.AddRow({"sensor-001", "home-1"});
//   std::cout << table.Render();
#ifndef HERALD_SERVICE_CTL_CLI_H_
#define HERALD_SERVICE_CTL_CLI_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace herald::ctl {

// Parses KEY=VALUE arguments (the value may be empty and may contain '=').
// InvalidArgument for an argument without '=', an empty key or a key given
// twice, naming the argument.
absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    const std::vector<std::string>& arguments);

// "true"/"false" (also yes/no, 1/0, any case) -> the value; "" -> nullopt.
// InvalidArgument otherwise, naming `what`.
absl::StatusOr<std::optional<bool>> ParseOptionalBool(const std::string& text,
                                                      const std::string& what);

// Looks `text` up case-insensitively among `names`; returns its index.
// InvalidArgument listing the accepted names otherwise.
absl::StatusOr<size_t> ParseChoice(const std::string& text, const std::vector<std::string>& names,
                                   const std::string& what);

// A text table with a header row, columns padded to their widest cell and
// separated by two spaces; the last column is not padded. Cells with line
// breaks or tabs are flattened to one line. Not thread-safe.
class Table {
 public:
  explicit Table(std::vector<std::string> header);

  // REQUIRES: cells.size() == the header's size.
  void AddRow(std::vector<std::string> cells);

  size_t rows() const { return rows_.size(); }

  // The header and every row, each line ending in '\n'.
  std::string Render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// "key: value" lines with the values aligned, for one object.
class Fields {
 public:
  // Empty values are shown as "-".
  void Add(const std::string& key, const std::string& value);
  std::string Render() const;

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// Joins `values` with ", "; "-" when empty.
std::string JoinOrDash(const std::vector<std::string>& values);

}  // namespace herald::ctl

#endif  // HERALD_SERVICE_CTL_CLI_H_
