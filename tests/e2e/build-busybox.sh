#!/bin/sh
# Builds a busybox-only rootfs tarball (no libc at all) for the dev-container
# tests: Debian's static busybox with every applet linked, user vscode (uid
# 1000, /bin/sh), an /etc/os-release (the devcontainer CLI reads it) and
# /usr/local/bin. Byte-reproducible (sorted, mtime 0).
# Usage: build-busybox.sh OUT.tar BUSYBOX_STATIC_DEB
set -eu
OUT=$1 DEB=$2
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
chmod 0755 "$R"
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$R" ./bin/busybox
mkdir -p "$R/usr/bin" "$R/usr/local/bin" "$R/sbin" "$R/usr/sbin" "$R/etc" "$R/tmp" "$R/root" \
  "$R/home/vscode" "$R/proc" "$R/sys" "$R/dev" "$R/run"
chmod 1777 "$R/tmp"
for a in $("$R/bin/busybox" --list-full); do
  [ -e "$R/$a" ] || ln -s /bin/busybox "$R/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nvscode:x:1000:1000::/home/vscode:/bin/sh\n' > "$R/etc/passwd"
printf 'root:x:0:\nvscode:x:1000:\n' > "$R/etc/group"
printf 'ID=busybox\nNAME=busybox\nPRETTY_NAME="busybox (Debian busybox-static)"\n' > "$R/etc/os-release"
chown 1000:1000 "$R/home/vscode"
tar --numeric-owner --sort=name --mtime=@0 -C "$R" -cf "$OUT" .
