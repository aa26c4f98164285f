#!/usr/bin/env bash
# Lint the protobuf contract and generate its Go code with pinned tools.
#
#   scripts/proto.sh         build the pinned tools, buf lint, buf generate
#                            into proto/gen (rewrites it).
#   scripts/proto.sh check   build the pinned tools, buf lint, generate into a
#                            temporary directory and compare it with proto/gen
#                            on disk; exit 1 with the differences if they are
#                            not identical. Does not modify the work tree.
#
# The tools (buf, protoc-gen-go, protoc-gen-connect-go) are pinned by the tool
# directives in tools/go.mod and built into $PROTO_TOOLS_BIN (default
# bin/tools); they are rebuilt only when tools/go.mod, tools/go.sum or the Go
# version change.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

mode="${1:-generate}"
case "$mode" in
  generate | check) ;;
  *)
    echo "usage: $0 [check]" >&2
    exit 2
    ;;
esac

bin="${PROTO_TOOLS_BIN:-$root/bin/tools}"
tools=(
  github.com/bufbuild/buf/cmd/buf
  google.golang.org/protobuf/cmd/protoc-gen-go
  connectrpc.com/connect/cmd/protoc-gen-connect-go
)

stamp_now="$(cat tools/go.mod tools/go.sum <(go env GOVERSION GOOS GOARCH) | sha256sum | cut -d' ' -f1)"
stamp_file="$bin/.stamp"
if [[ ! -x "$bin/buf" || ! -x "$bin/protoc-gen-go" || ! -x "$bin/protoc-gen-connect-go" ||
  "$(cat "$stamp_file" 2>/dev/null || true)" != "$stamp_now" ]]; then
  echo "proto.sh: building pinned tools into $bin" >&2
  mkdir -p "$bin"
  rm -f "$stamp_file"
  # -mod=readonly: never rewrite tools/go.mod; GOWORK=off: ignore any go.work.
  (cd tools && GOWORK=off go build -mod=readonly -trimpath -o "$bin/" "${tools[@]}")
  echo "$stamp_now" >"$stamp_file"
fi
export PATH="$bin:$PATH"

buf lint

if [[ "$mode" == generate ]]; then
  buf generate
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# --output prefixes the out: directories of buf.gen.yaml, so the fresh copy
# lands in $tmp/proto/gen and the work tree is left alone.
buf generate --output "$tmp"
mkdir -p proto/gen "$tmp/proto/gen"
if ! diff -r proto/gen "$tmp/proto/gen" >"$tmp/diff.txt" 2>&1; then
  echo "proto.sh check: generated files differ (left: proto/gen on disk, right: freshly generated):" >&2
  diff -r --brief proto/gen "$tmp/proto/gen" >&2 || true
  cat "$tmp/diff.txt" >&2
  echo "proto.sh check: proto/gen is out of date with proto/; run scripts/proto.sh and commit the result" >&2
  exit 1
fi
echo "proto.sh check: proto/gen is up to date"
