#!/bin/sh
# Builds a Debian rootfs tarball for the dev-container tests: minbase plus
# git and ca-certificates, user vscode (uid/gid 1000, bash, /home/vscode),
# and the docker CLI binary given (from that suite's docker.io package). No
# apt sources are left in the image (the tests run offline).
# Usage: build-debian.sh SUITE OUT.tar DOCKER_CLI_BINARY SOURCES_FILE
# (SOURCES_FILE: apt sources for SUITE, in either format; mmdebstrap reads it.)
set -eu
SUITE=$1 OUT=$2 DOCKER_BIN=$3 SOURCES=$4
mmdebstrap --variant=minbase --include=git,ca-certificates \
  --customize-hook='chroot "$1" useradd -m -u 1000 -U -s /bin/bash vscode' \
  --customize-hook="upload $DOCKER_BIN /usr/bin/docker" \
  --customize-hook='chmod 0755 "$1/usr/bin/docker"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/etc/apt/sources.list.d/* "$1"/etc/apt/sources.list' \
  "$SUITE" "$OUT" "$SOURCES"
