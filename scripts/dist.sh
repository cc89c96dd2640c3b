#!/bin/sh
# Builds the release binaries people install: devc-vault,
# docker-credential-devc-encrypted and git-credential-devc-encrypted, as
# static musl executables (no libc needed in the image), stripped, for
# x86_64 and aarch64.
#
# Usage: scripts/dist.sh            (from anywhere in the repository)
#
# Output (dist/ is a build output, ignored by git):
#   dist/x86_64/{devc-vault,docker-credential-devc-encrypted,git-credential-devc-encrypted}
#   dist/aarch64/...             the same for arm64
#   dist/SHA256SUMS              "<sha256>  <arch>/<name>" for each of the six
# and the same binaries and SHA256SUMS in the devcontainer Feature's folder,
# features/devc-vault/bin/ (also ignored by git), which `devc-vault
# devcontainer --binaries feature` copies into a workspace.
#
# Needs: rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl
# aarch64 links with the toolchain's rust-lld (no cross gcc needed); x86_64
# with the host's cc. Override the aarch64 linker with
# CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER.
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)
out=$root/dist
feature=$root/features/devc-vault
target_dir=${CARGO_TARGET_DIR:-$root/target}
bins="devc-vault docker-credential-devc-encrypted git-credential-devc-encrypted"

if command -v rustup >/dev/null 2>&1; then
  installed=$(rustup target list --installed)
  for t in x86_64-unknown-linux-musl aarch64-unknown-linux-musl; do
    case " $(echo $installed) " in
      *" $t "*) ;;
      *) echo "dist.sh: the Rust target $t is not installed: run rustup target add x86_64-unknown-linux-musl aarch64-unknown-linux-musl" >&2
         exit 1 ;;
    esac
  done
fi
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER="${CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER:-rust-lld}"

rm -rf "$out"
mkdir -p "$out"
for arch in x86_64 aarch64; do
  t=$arch-unknown-linux-musl
  echo "dist.sh: building $t" >&2
  cargo build --locked --quiet --profile dist --target "$t" -p devc-vault-cli -p devc-helper
  mkdir -p "$out/$arch"
  for b in $bins; do
    cp "$target_dir/$t/dist/$b" "$out/$arch/$b"
    chmod 0755 "$out/$arch/$b"
  done
done
(cd "$out" && sha256sum x86_64/* aarch64/* > SHA256SUMS)

# The Feature ships the same files (a published Feature would download them
# instead: features/devc-vault/README.md).
rm -rf "$feature/bin"
mkdir -p "$feature/bin"
cp -R "$out/x86_64" "$out/aarch64" "$out/SHA256SUMS" "$feature/bin/"

echo "dist.sh: wrote $out (and $feature/bin):" >&2
cat "$out/SHA256SUMS" >&2
