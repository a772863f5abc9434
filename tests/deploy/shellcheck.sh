#!/usr/bin/env bash
# Runs shellcheck (every severity) over the project's shell scripts:
# scripts/*.sh, .ci/run, and the scripts under deploy/ and tests/deploy/.
#
#   tests/deploy/shellcheck.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

command -v shellcheck >/dev/null || { echo "shellcheck not found (scripts/install-deps.sh installs it)" >&2; exit 1; }

scripts=(scripts/*.sh .ci/run)
while IFS= read -r script; do
  scripts+=("${script}")
done < <(find deploy tests/deploy -name '*.sh' -type f | sort)

# The check must be able to fail: a script with a classic mistake.
bad=$(mktemp)
trap 'rm -f "${bad}"' EXIT
# shellcheck disable=SC2016  # the $1 is meant literally
printf '#!/usr/bin/env bash\nrm -rf $1/*\n' >"${bad}"
if shellcheck "${bad}" >/dev/null 2>&1; then
  echo "shellcheck accepted an unquoted \$1 in rm -rf: is it working?" >&2
  exit 1
fi

shellcheck --external-sources "${scripts[@]}"
echo "shellcheck: ${#scripts[@]} scripts clean: ${scripts[*]}"
