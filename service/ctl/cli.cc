#include "service/ctl/cli.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"

namespace herald::ctl {

absl::StatusOr<std::map<std::string, std::string>> ParseKeyValues(
    const std::vector<std::string>& arguments) {
  std::map<std::string, std::string> result;
  for (const std::string& argument : arguments) {
    const size_t equals = argument.find('=');
    if (equals == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected KEY=VALUE, got \"", argument, "\""));
    }
    std::string key = argument.substr(0, equals);
    if (key.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("empty key in \"", argument, "\""));
    }
    if (!result.emplace(key, argument.substr(equals + 1)).second) {
      return absl::InvalidArgumentError(absl::StrCat("key \"", key, "\" given twice"));
    }
  }
  return result;
}

absl::StatusOr<std::optional<bool>> ParseOptionalBool(const std::string& text,
                                                      const std::string& what) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower.empty()) return std::optional<bool>();
  if (lower == "true" || lower == "yes" || lower == "1") return std::optional<bool>(true);
  if (lower == "false" || lower == "no" || lower == "0") return std::optional<bool>(false);
  return absl::InvalidArgumentError(
      absl::StrCat(what, ": expected true or false, got \"", text, "\""));
}

absl::StatusOr<size_t> ParseChoice(const std::string& text, const std::vector<std::string>& names,
                                   const std::string& what) {
  for (size_t i = 0; i < names.size(); ++i) {
    if (absl::EqualsIgnoreCase(text, names[i])) return i;
  }
  return absl::InvalidArgumentError(absl::StrCat(what, ": \"", text, "\" is not one of ",
                                                 absl::StrJoin(names, ", ")));
}

namespace {

std::string OneLine(const std::string& cell) {
  return absl::StrReplaceAll(cell, {{"\r\n", " "}, {"\n", " "}, {"\r", " "}, {"\t", " "}});
}

}  // namespace

Table::Table(std::vector<std::string> header) : header_(std::move(header)) {}

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(header_.size());
  for (std::string& cell : cells) cell = OneLine(cell);
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> widths(header_.size(), 0);
  auto measure = [&widths](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) widths[i] = std::max(widths[i], cells[i].size());
  };
  measure(header_);
  for (const auto& row : rows_) measure(row);
  std::string out;
  auto render = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) {
      absl::StrAppend(&line, cells[i]);
      if (i + 1 < cells.size()) line.append(widths[i] - cells[i].size() + 2, ' ');
    }
    // A last column that is empty leaves padding behind.
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  };
  render(header_);
  for (const auto& row : rows_) render(row);
  return out;
}

void Fields::Add(const std::string& key, const std::string& value) {
  fields_.emplace_back(key, value.empty() ? "-" : OneLine(value));
}

std::string Fields::Render() const {
  size_t width = 0;
  for (const auto& [key, value] : fields_) width = std::max(width, key.size());
  std::string out;
  for (const auto& [key, value] : fields_) {
    absl::StrAppend(&out, key, ":", std::string(width - key.size() + 1, ' '), value, "\n");
  }
  return out;
}

std::string JoinOrDash(const std::vector<std::string>& values) {
  return values.empty() ? "-" : absl::StrJoin(values, ", ");
}

}  // namespace herald::ctl
