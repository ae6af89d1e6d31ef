#!/usr/bin/env bash
# gofmt and go vet over every module in go.work.
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l $(scripts/modules.sh))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
for m in $(scripts/modules.sh); do
  echo "=== vet $m"
  (cd "$m" && go vet ./...)
done
