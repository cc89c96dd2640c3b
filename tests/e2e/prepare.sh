#!/usr/bin/env bash
# Prepares what the dev-container tests need from the network, which the
# tests themselves never touch (they talk to 127.0.0.1 only). .ci/run calls
# it; run it by hand before `cargo nextest run` on a new machine.
#
#  - rootfs tarballs, built with mmdebstrap from this machine's own apt
#    sources (no mirror is named anywhere): bookworm and bullseye (git,
#    ca-certificates, user vscode uid 1000, that suite's docker CLI), and a
#    busybox-only one. Cached under a key made of the builder script, the
#    suite, the package and the apt sources; DEVC_E2E_REBUILD=1 rebuilds.
#  - the devcontainer CLI, @devcontainers/cli@0.89.0, in a private npm prefix.
#
# Cache: $DEVC_E2E_CACHE, else ${CARGO_TARGET_DIR:-target}/devc-e2e.
#
# Usage: prepare.sh [all]            build or install whatever is missing
#        prepare.sh path NAME        print NAME's cached tarball (bookworm,
#                                    bullseye, busybox); exit 3 if not built
#        prepare.sh cli              print the devcontainer CLI; exit 3 if missing
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
cache=${DEVC_E2E_CACHE:-$target/devc-e2e}
CLI_VERSION=0.89.0
cli_prefix=$cache/devcontainer-cli-$CLI_VERSION
cli_bin=$cli_prefix/node_modules/.bin/devcontainer

# The machine's apt sources (deb822 or one-line format).
host_sources() {
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -s "$f" ] && { echo "$f"; return; }
  done
  echo "prepare.sh: no apt sources found (/etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list)" >&2
  return 1
}

# NAME -> "suite package builder"
spec() {
  case $1 in
    bookworm) echo "bookworm docker.io $here/build-debian.sh" ;;
    bullseye) echo "bullseye docker.io $here/build-debian.sh" ;;
    busybox) echo "bookworm busybox-static $here/build-busybox.sh" ;;
    *) echo "prepare.sh: unknown image $1 (bookworm, bullseye, busybox)" >&2; return 2 ;;
  esac
}

tarball() {
  local name=$1 suite pkg script src key
  read -r suite pkg script <<<"$(spec "$name")"
  src=$(host_sources)
  # Comment lines are dropped: they do not change what gets installed.
  key=$( { cat "$script"; echo "$suite $pkg"; grep -v '^#' "$src"; } | sha256sum | cut -c1-16)
  echo "$cache/images/$name-$key.tar"
}

build_image() {
  local name=$1 out suite pkg script src tmp deb
  out=$(tarball "$name")
  if [ -s "$out" ] && [ -z "${DEVC_E2E_REBUILD:-}" ]; then
    return 0
  fi
  read -r suite pkg script <<<"$(spec "$name")"
  src=$(host_sources)
  tmp=$(mktemp -d)
  # Private, throw-away apt state and sources: nothing naming the mirror
  # stays in the cache, and the machine's own apt state is not touched.
  sed "s/bookworm/$suite/g" "$src" > "$tmp/$suite.sources"
  if [ "${src##*.}" = list ]; then mv "$tmp/$suite.sources" "$tmp/$suite.list"; fi
  local sources
  sources=$(ls "$tmp"/"$suite".*)
  mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/work"
  local A=(-o "Dir::Etc::SourceList=$sources" -o Dir::Etc::SourceParts=/dev/null
           -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
  local start=$SECONDS
  if ! { apt-get "${A[@]}" -qq update && (cd "$tmp/work" && apt-get "${A[@]}" -qq download "$pkg"); } >"$tmp/apt.log" 2>&1; then
    cat "$tmp/apt.log" >&2; rm -rf "$tmp"; return 1
  fi
  deb=$(ls "$tmp"/work/*.deb)
  mkdir -p "$cache/images"
  if [ "$name" = busybox ]; then
    "$script" "$tmp/out.tar" "$deb" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; rm -rf "$tmp"; return 1; }
  else
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/work" ./usr/bin/docker
    "$script" "$suite" "$tmp/out.tar" "$tmp/work/usr/bin/docker" "$sources" >"$tmp/build.log" 2>&1 \
      || { cat "$tmp/build.log" >&2; rm -rf "$tmp"; return 1; }
  fi
  # Older builds of the same image are superseded.
  rm -f "$cache/images/$name"-*.tar
  mv "$tmp/out.tar" "$out.part" && mv "$out.part" "$out"
  rm -rf "$tmp"
  echo "prepare.sh: built $out in $((SECONDS - start)) s" >&2
}

install_cli() {
  if [ -x "$cli_bin" ] && [ "$("$cli_bin" --version 2>/dev/null)" = "$CLI_VERSION" ]; then
    return 0
  fi
  command -v npm >/dev/null || { echo "prepare.sh: npm is not installed (apt: npm)" >&2; return 1; }
  mkdir -p "$cli_prefix"
  npm install --prefix "$cli_prefix" --no-audit --no-fund --save-exact --loglevel=error \
    "@devcontainers/cli@$CLI_VERSION" >&2
  [ "$("$cli_bin" --version)" = "$CLI_VERSION" ]
}

case ${1:-all} in
  path)
    p=$(tarball "${2:?usage: prepare.sh path NAME}")
    [ -s "$p" ] || exit 3
    echo "$p" ;;
  cli)
    [ -x "$cli_bin" ] || exit 3
    echo "$cli_bin" ;;
  all)
    mkdir -p "$cache"
    exec 9>"$cache/.prepare.lock"
    flock 9
    if [ "$(id -u)" != 0 ]; then
      echo "prepare.sh: mmdebstrap needs root; images not built" >&2
    else
      pids=()
      for n in bookworm bullseye busybox; do build_image "$n" & pids+=($!); done
      fail=0
      for p in "${pids[@]}"; do wait "$p" || fail=1; done
      [ "$fail" = 0 ] || { echo "prepare.sh: building an image failed" >&2; exit 1; }
    fi
    install_cli ;;
  *) echo "usage: prepare.sh [all] | path NAME | cli" >&2; exit 2 ;;
esac
