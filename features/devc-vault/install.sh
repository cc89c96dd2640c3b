#!/bin/sh
# devc-vault Feature: installs devc-vault, docker-credential-devc-encrypted and
# git-credential-devc-encrypted for this image's architecture into
# /usr/local/bin, after checking each against the Feature's SHA256SUMS.
# POSIX sh only, and no `install`: it runs in Debian, Ubuntu, Alpine and
# busybox images alike. The Feature's postCreateCommand (`devc-vault install`)
# then points docker and git at the helpers, as the container user.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
bins="devc-vault docker-credential-devc-encrypted git-credential-devc-encrypted"
dest=/usr/local/bin

fail() {
    echo "devc-vault feature: $*" >&2
    exit 1
}

case $(uname -m) in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) arch=aarch64 ;;
    *) fail "no build for $(uname -m); devc-vault ships x86_64 and aarch64 binaries" ;;
esac

sums=$here/bin/SHA256SUMS
[ -f "$sums" ] || fail "$sums is missing: the binaries are not kept in git; run scripts/dist.sh in the devc-vault repository, then devc-vault devcontainer again, to fill this Feature's bin/"
command -v sha256sum >/dev/null 2>&1 || fail "sha256sum is not available in this image, so the binaries cannot be checked"

mkdir -p "$dest"
for name in $bins; do
    src=$here/bin/$arch/$name
    [ -f "$src" ] || fail "$src is missing; run scripts/dist.sh again"
    want=$(awk -v f="$arch/$name" '$2 == f { print $1 }' "$sums")
    [ -n "$want" ] || fail "$sums lists no $arch/$name"
    got=$(sha256sum "$src" | awk '{ print $1 }')
    [ "$got" = "$want" ] || fail "$arch/$name does not match its SHA-256 in $sums (got $got); rebuild with scripts/dist.sh"
    cp "$src" "$dest/.$name.new"
    chmod 0755 "$dest/.$name.new"
    mv -f "$dest/.$name.new" "$dest/$name"
done

"$dest/devc-vault" --version >/dev/null || fail "$dest/devc-vault does not run in this image"
echo "devc-vault feature: installed $bins ($arch) into $dest for ${_REMOTE_USER:-the container user}"
