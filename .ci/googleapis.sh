#!/usr/bin/env bash
# Checks (or, with --update, refreshes) the vendored googleapis protos in
# third_party/googleapis against the copies in the Go module pinned by
# tools/go.mod, whose checksum tools/go.sum records.
set -euo pipefail
cd "$(dirname "$0")/.."

module=github.com/grpc-ecosystem/grpc-gateway@v1.16.0
dir=$(cd tools && go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$dir" ] || { echo "googleapis: could not download $module" >&2; exit 1; }

for f in google/api/annotations.proto google/api/http.proto; do
  if [ "${1:-}" = "--update" ]; then
    install -m 0644 "$dir/third_party/googleapis/$f" "third_party/googleapis/$f"
  elif ! cmp -s "$dir/third_party/googleapis/$f" "third_party/googleapis/$f"; then
    echo "googleapis: third_party/googleapis/$f differs from $module; run .ci/googleapis.sh --update" >&2
    exit 1
  fi
done
echo "googleapis: vendored protos match $module"
