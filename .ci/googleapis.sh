#!/usr/bin/env bash
# Checks (or, with --update, refreshes) the vendored protos in the buf
# module third_party/googleapis against the copies in the Go modules pinned
# by tools/go.mod, whose checksums tools/go.sum records:
#   google/api from grpc-gateway v1 (its third_party/googleapis/), and
#   protoc-gen-openapiv2/options, with its LICENSE, from grpc-gateway v2.
# Both live in one buf module: a second module would make buf breaking
# compare a different number of images with older commits.
set -euo pipefail
cd "$(dirname "$0")/.."

update=
[ "${1:-}" = "--update" ] && update=1

# check module source=destination...: each source path is in the module,
# each destination under third_party/googleapis.
check() {
  local module=$1 dir pair src dest
  shift
  dir=$(cd tools && go mod download -json "$module" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { echo "vendored protos: could not download $module" >&2; exit 1; }
  for pair in "$@"; do
    src="$dir/${pair%%=*}" dest="third_party/googleapis/${pair#*=}"
    if [ -n "$update" ]; then
      mkdir -p "$(dirname "$dest")"
      install -m 0644 "$src" "$dest"
    elif ! cmp -s "$src" "$dest"; then
      echo "vendored protos: $dest differs from $module; run .ci/googleapis.sh --update" >&2
      exit 1
    fi
  done
  echo "vendored protos: match $module"
}

check github.com/grpc-ecosystem/grpc-gateway@v1.16.0 \
  third_party/googleapis/google/api/annotations.proto=google/api/annotations.proto \
  third_party/googleapis/google/api/http.proto=google/api/http.proto
check github.com/grpc-ecosystem/grpc-gateway/v2@v2.33.0 \
  protoc-gen-openapiv2/options/annotations.proto=protoc-gen-openapiv2/options/annotations.proto \
  protoc-gen-openapiv2/options/openapiv2.proto=protoc-gen-openapiv2/options/openapiv2.proto \
  LICENSE=protoc-gen-openapiv2/LICENSE
