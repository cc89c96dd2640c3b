#!/usr/bin/env bash
# Run git's own external credential-helper test suite
# (t/t0303-credential-external.sh) against a helper `git-credential-NAME`,
# using the installed git (GIT_TEST_INSTALLED, default /usr/local/bin).
#
# Usage: scripts/git-t0303.sh [NAME [HELPER_DIR]]
#
#   NAME        helper name; git runs `git-credential-NAME`.
#               Default: $GIT_TEST_CREDENTIAL_HELPER, else "devc-encrypted".
#   HELPER_DIR  directory holding `git-credential-NAME`; prepended to PATH.
#               Default: $DEVC_HELPER_DIR (optional; not needed for helpers
#               that ship with git, such as "store").
#
# Environment:
#   GIT_TEST_CREDENTIAL_HELPER_SETUP    shell snippet that t0303 evals once, in
#       the test script's own shell, after test-lib.sh has set HOME to the
#       trash directory and cd'ed into it, before the first test. `export`
#       anything the helper needs. This script wraps it so that a failing
#       snippet aborts the run (Bail out!) instead of failing tests later.
#   GIT_TEST_CREDENTIAL_HELPER_TIMEOUT  optional helper spec (value of
#       credential.helper, e.g. "NAME --timeout=1") for the extra test
#       "times out": approve, sleep 2, then expect the credential gone.
#   GIT_TEST_INSTALLED      git to test with (default /usr/local/bin).
#   DEVC_GIT_SRC_CACHE      cache dir for apt state, git source and build
#                           (default: <repo>/target/git-src).
#   DEVC_GIT_SRC_SUITE      Debian suite to take git's source from (default
#                           trixie, the release after bookworm).
#   DEVC_GIT_SRC_KEYRING    keyring for that suite's signatures (default: the
#                           system's debian-archive-keyring.gpg, or, if it
#                           cannot verify the suite, the newest
#                           debian-archive-keyring package of the machine's
#                           own release, fetched and verified by apt).
#   DEVC_T0303_TIMEOUT      seconds before the test run is killed (default 300).
#   DEVC_T0303_KEEP=1       keep the test's trash directory even on success.
#
# Needs (installed with apt-get if missing): dpkg-dev (apt-get source unpacks
# with dpkg-source), zlib1g-dev, make, gcc, libc6-dev. The system's apt
# configuration and state are never modified: all apt state for the source
# download lives in the cache dir.
#
# Exit status: 0 only if every test passed.
set -euo pipefail

log() { printf 'git-t0303: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)

name=${1:-${GIT_TEST_CREDENTIAL_HELPER:-devc-encrypted}}
helper_dir=${2:-${DEVC_HELPER_DIR:-}}
installed=${GIT_TEST_INSTALLED:-/usr/local/bin}
cache=${DEVC_GIT_SRC_CACHE:-$repo/target/git-src}
suite=${DEVC_GIT_SRC_SUITE:-trixie}
run_timeout=${DEVC_T0303_TIMEOUT:-300}

[ -x "$installed/git" ] || die "no git at $installed/git"
git_version=$("$installed/git" --version | sed -n 's/^git version \([0-9][0-9.]*\).*/\1/p')
[ -n "$git_version" ] || die "cannot parse '$installed/git --version'"

if [ -n "$helper_dir" ]; then
    helper_dir=$(cd "$helper_dir" && pwd) || die "no such directory: $helper_dir"
    [ -x "$helper_dir/git-credential-$name" ] ||
        die "$helper_dir/git-credential-$name is missing or not executable"
fi
exec_path=$("$installed/git" --exec-path)
if [ -n "$helper_dir" ] && [ -e "$exec_path/git-credential-$name" ]; then
    log "warning: $exec_path/git-credential-$name exists and shadows $helper_dir (git searches its exec path first)"
fi

# ---------------------------------------------------------------- packages
need_pkgs=()
command -v dpkg-source >/dev/null 2>&1 || need_pkgs+=(dpkg-dev)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_pkgs+=(zlib1g-dev)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v cc >/dev/null 2>&1 || need_pkgs+=(gcc)
dpkg -s libc6-dev >/dev/null 2>&1 || need_pkgs+=(libc6-dev)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    [ "$(id -u)" = 0 ] || die "need root to install: ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2 ||
        { apt-get update -q >&2 &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need_pkgs[@]}" >&2; } ||
        die "could not install ${need_pkgs[*]}"
fi

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
exec 9>"$cache/.lock"
flock 9

src="$cache/src/git-$git_version"
build_flags=(NO_CURL=1 NO_OPENSSL=1 NO_EXPAT=1 NO_GETTEXT=1 NO_TCLTK=1
             NO_PERL=1 NO_PYTHON=1)
stamp="$src/.devc-built"

# ------------------------------------------------------- apt (private state)
aptdir="$cache/apt"

# Print "URI<TAB>SUITE" for every enabled `deb`/`deb-src` entry of the
# machine's apt sources (deb822 *.sources and one-line *.list files).
configured_sources() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        awk '
            function flush(   n, u, s, i, j) {
                if (types ~ /(^|[ \t])deb(-src)?([ \t]|$)/ && tolower(enabled) != "no") {
                    n = split(uris, u, /[ \t]+/); m = split(suites, s, /[ \t]+/)
                    for (i = 1; i <= n; i++) for (j = 1; j <= m; j++)
                        if (u[i] != "" && s[j] != "") print u[i] "\t" s[j]
                }
                types = uris = suites = enabled = ""; key = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            /^[A-Za-z-]+:/ {
                key = tolower(substr($0, 1, index($0, ":") - 1))
                val = substr($0, index($0, ":") + 1)
                if (key == "types") types = val
                else if (key == "uris") uris = val
                else if (key == "suites") suites = val
                else if (key == "enabled") enabled = val
                gsub(/^[ \t]+|[ \t]+$/, "", enabled)
                next
            }
            /^[ \t]/ {
                if (key == "uris") uris = uris " " $0
                else if (key == "suites") suites = suites " " $0
                else if (key == "types") types = types " " $0
            }
            END { flush() }
        ' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" |
            awk '$1 == "deb" || $1 == "deb-src" { print $2 "\t" $3 }'
    done
}

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || codename=bookworm
# The machine's own mirror(s): the URIs configured for its release, and for
# its security suite.
main_uris=$(configured_sources | awk -F'\t' -v c="$codename" '$2 == c { print $1 }' | awk '!seen[$0]++')
sec_uris=$(configured_sources | awk -F'\t' -v c="$codename" '$2 == c "-security" || $2 == c "/updates" { print $1 }' | awk '!seen[$0]++')

apt_opts() {  # $1: private apt root
    local d=$1
    printf '%s\n' \
        -o "Dir::State=$d/state" -o "Dir::State::Lists=$d/state/lists" \
        -o "Dir::State::extended_states=$d/state/extended_states" \
        -o "Dir::Cache=$d/cache" -o "Dir::Cache::archives=$d/cache/archives" \
        -o "Dir::Etc::sourcelist=$d/sources.list" -o "Dir::Etc::sourceparts=$d/sources.list.d" \
        -o "Dir::Etc::preferences=$d/preferences" -o "Dir::Etc::preferencesparts=$d/preferences.d" \
        -o "APT::Sandbox::User=root" -o "Acquire::Languages=none" -q
}

apt_private_init() {  # $1: dir, stdin: sources.list content
    mkdir -p "$1/state/lists/partial" "$1/cache/archives/partial" \
             "$1/sources.list.d" "$1/preferences.d"
    cat >"$1/sources.list"
}

# If the system keyring cannot verify $suite, fetch the newest
# debian-archive-keyring package of the machine's own release (verified by
# apt against the system keyring) and use the keyring it ships.
newer_keyring() {
    local d="$cache/apt-keyring" sys=$1 u
    rm -rf "$d"
    {
        for u in $main_uris; do
            echo "deb [signed-by=$sys] $u $codename main"
            echo "deb [signed-by=$sys] $u $codename-updates main"
        done
        for u in $sec_uris; do echo "deb [signed-by=$sys] $u $codename-security main"; done
    } | apt_private_init "$d"
    mapfile -t o < <(apt_opts "$d")
    apt-get "${o[@]}" update >&2 || return 1
    (cd "$d" && apt-get "${o[@]}" download debian-archive-keyring >&2) || return 1
    dpkg-deb -x "$d"/debian-archive-keyring_*.deb "$d/root" || return 1
    echo "$d/root/usr/share/keyrings/debian-archive-keyring.gpg"
}

fetch_source() {
    local keyring=$1 u
    rm -rf "$aptdir"
    {
        for u in $main_uris; do echo "deb-src [signed-by=$keyring] $u $suite main"; done
        for u in $sec_uris; do echo "deb-src [signed-by=$keyring] $u $suite-security main"; done
    } | apt_private_init "$aptdir"
    mapfile -t o < <(apt_opts "$aptdir")
    apt-get "${o[@]}" update >&2
}

download_git_source() {
    local sys_keyring=${DEVC_GIT_SRC_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}
    [ -r "$sys_keyring" ] || die "keyring $sys_keyring not readable"
    [ -n "$main_uris" ] || die "no apt source for '$codename' found in /etc/apt/sources.list{,.d}"
    log "fetching Debian '$suite' source index (private apt state in $aptdir)"
    if ! fetch_source "$sys_keyring"; then
        [ -z "${DEVC_GIT_SRC_KEYRING:-}" ] || die "apt-get update failed with keyring $sys_keyring"
        log "$sys_keyring cannot verify '$suite'; fetching the newest debian-archive-keyring of '$codename'"
        local k
        k=$(newer_keyring "$sys_keyring") || die "could not fetch debian-archive-keyring"
        fetch_source "$k" || die "apt-get update failed even with $k"
    fi
    mapfile -t o < <(apt_opts "$aptdir")
    # Newest Debian version of source package git whose upstream version is
    # exactly the installed one.
    local v best=
    for v in $(apt-cache "${o[@]}" showsrc git | sed -n 's/^Version: //p'); do
        local up=${v#*:}; up=${up%-*}
        [ "$up" = "$git_version" ] || continue
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done
    [ -n "$best" ] || die "Debian '$suite' has no source of git $git_version (set DEVC_GIT_SRC_SUITE)"
    log "apt-get source git=$best"
    rm -rf "$cache/src"
    mkdir -p "$cache/src"
    (cd "$cache/src" && apt-get "${o[@]}" source "git=$best" >&2) || die "apt-get source failed"
    [ -f "$src/t/t0303-credential-external.sh" ] || die "unpacked source lacks $src/t/t0303-credential-external.sh"
}

if [ ! -f "$stamp" ] || [ ! -x "$src/t/helper/test-tool" ] || [ ! -d "$src/templates/blt" ]; then
    start=$(date +%s)
    [ -f "$src/t/t0303-credential-external.sh" ] || download_git_source
    log "building t/helper/test-tool, GIT-BUILD-OPTIONS, templates in $src"
    make -C "$src" -j2 "${build_flags[@]}" t/helper/test-tool GIT-BUILD-OPTIONS >"$cache/build.log" 2>&1 ||
        { tail -30 "$cache/build.log" >&2; die "build failed (log: $cache/build.log)"; }
    make -C "$src/templates" SHELL_PATH=/bin/sh PERL_PATH=/usr/bin/perl >>"$cache/build.log" 2>&1 ||
        { tail -30 "$cache/build.log" >&2; die "templates failed (log: $cache/build.log)"; }
    echo "${build_flags[*]}" >"$stamp"
    log "source ready in $(( $(date +%s) - start ))s"
fi
flock -u 9

# ------------------------------------------------------------------- run
run_dir=$(mktemp -d "${TMPDIR:-/tmp}/git-t0303.XXXXXX")
out="$run_dir/t0303.out"

export GIT_TEST_INSTALLED="$installed"
export GIT_TEST_CREDENTIAL_HELPER="$name"
if [ -n "${GIT_TEST_CREDENTIAL_HELPER_SETUP:-}" ]; then
    GIT_TEST_CREDENTIAL_HELPER_SETUP="{
${GIT_TEST_CREDENTIAL_HELPER_SETUP}
} || BAIL_OUT 'GIT_TEST_CREDENTIAL_HELPER_SETUP failed'"
    export GIT_TEST_CREDENTIAL_HELPER_SETUP
fi
[ -z "${GIT_TEST_CREDENTIAL_HELPER_TIMEOUT:-}" ] || export GIT_TEST_CREDENTIAL_HELPER_TIMEOUT
export TEST_OUTPUT_DIRECTORY="$run_dir"
[ -z "$helper_dir" ] || export PATH="$helper_dir:$PATH"

log "running t0303 with helper '$name' against $installed/git ($git_version)"
set +e
(cd "$src/t" && timeout "$run_timeout" ./t0303-credential-external.sh -v) 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e

echo "=== t0303 summary (helper '$name') ==="
grep -E '^(ok|not ok) [0-9]+ ' "$out" || true
grep -E '^# (passed all|failed|still have|fixed|skipping|SKIP)|^1\.\.[0-9]+|^Bail out' "$out" || true
total=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$out" | tail -1)
passed=$(grep -cE '^ok [0-9]+ ' "$out" || true)
if [ "$rc" = 124 ]; then log "t0303 timed out after ${run_timeout}s"; fi
if [ "$rc" = 0 ] && [ -n "$total" ] && [ "$passed" = "$total" ] && [ "$total" -ge 21 ]; then
    echo "RESULT: PASS ($passed/$total)"
    if [ "${DEVC_T0303_KEEP:-}" = 1 ]; then log "kept $run_dir"; else rm -rf "$run_dir"; fi
    exit 0
fi
echo "RESULT: FAIL (exit $rc; $passed/${total:-?} passed; output and trash directory kept in $run_dir)"
exit 1
