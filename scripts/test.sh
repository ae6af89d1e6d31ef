#!/usr/bin/env bash
# Runs the tests of every module in go.work. `go test ./...` at the workspace
# root matches nothing, so this walks the modules.
#
#   scripts/test.sh                 every module
#   scripts/test.sh core storage-wal  only these
#
# RACE=1 (the default) runs with the race detector on; RACE=0 turns it off.
# Extra `go test` flags go in GOTESTFLAGS (for example GOTESTFLAGS=-short).
set -euo pipefail
cd "$(dirname "$0")/.."
mods=("$@")
if [ ${#mods[@]} -eq 0 ]; then
  mapfile -t mods < <(scripts/modules.sh)
fi
flags=(-count=1 -timeout=20m)
if [ "${RACE:-1}" = 1 ]; then flags+=(-race); fi
# shellcheck disable=SC2206
flags+=(${GOTESTFLAGS:-})
failed=()
for m in "${mods[@]}"; do
  echo "=== module $m"
  if ! (cd "$m" && go test "${flags[@]}" ./...); then
    failed+=("$m")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED modules: ${failed[*]}"
  exit 1
fi
echo "all ${#mods[@]} modules passed"
