#!/usr/bin/env bash
# Times whole `get` calls, side by side in one run, and prints medians and ratios:
#
#   ours   docker-credential-devc-encrypted get   (release build, key file)
#   floor  git credential-store get               (a plaintext file: the floor
#                                                  for any file-backed helper)
#   pass   docker-credential-pass get             (golang-docker-credential-helpers
#                                                  with `pass` and a throwaway
#                                                  passphrase-less gpg key)
#
# Usage: scripts/bench-docker-get.sh [RUNS]     (default 300 rounds)
#
# Needs: bash 5, cargo, git, python3, and for the pass column docker-credential-pass, pass and gpg (skipped when missing).
# Everything lives in a temp directory that is removed at exit; the gpg agent
# started for `pass` is stopped. Targets (issue 3): ours <= 1.5x floor, and
# pass >= 20x ours.
set -euo pipefail

runs=${1:-300}
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}

echo "building release binaries..." >&2
cargo build --quiet --release --manifest-path "$repo/Cargo.toml" -p devc-helper -p devc-vault-cli
bin=$target/release
helper=$bin/docker-credential-devc-encrypted
cli=$bin/devc-vault

tmp=$(mktemp -d "${TMPDIR:-/tmp}/devc-bench.XXXXXX")
chmod 700 "$tmp"
cleanup() {
	if [ -d "$tmp/gnupg" ]; then
		GNUPGHOME=$tmp/gnupg gpgconf --kill all >/dev/null 2>&1 || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

server=bench.example:5000
printf '%s' "$server" >"$tmp/get.in"

# --- ours: a vault opened by a key file, the key-file source only -----------
mkdir -m 700 "$tmp/docker" "$tmp/xdg"
export DOCKER_CONFIG=$tmp/docker
export DEVC_VAULT=$tmp/docker/.credentials.enc
export DEVC_VAULT_KEY_FILE=$tmp/key
export DEVC_VAULT_KEY_ORDER=file
export XDG_CONFIG_HOME=$tmp/xdg
"$cli" init --key-file "$DEVC_VAULT_KEY_FILE" >/dev/null
printf '{"ServerURL":"%s","Username":"bench","Secret":"bench-secret"}' "$server" | "$helper" store
"$helper" get <"$tmp/get.in" | grep -q bench-secret

# --- floor: git credential-store with one plaintext line --------------------
printf 'https://bench:bench-secret@%s\n' "$server" >"$tmp/git-credentials"
chmod 600 "$tmp/git-credentials"
printf 'protocol=https\nhost=%s\n\n' "$server" >"$tmp/git.in"
git credential-store --file "$tmp/git-credentials" get <"$tmp/git.in" | grep -q bench-secret

# --- pass: docker-credential-pass with a throwaway gpg key ------------------
have_pass=0
if command -v docker-credential-pass >/dev/null && command -v pass >/dev/null && command -v gpg >/dev/null; then
	export GNUPGHOME=$tmp/gnupg PASSWORD_STORE_DIR=$tmp/pass
	mkdir -m 700 "$GNUPGHOME"
	gpg --batch --quiet --pinentry-mode loopback --passphrase '' \
		--quick-gen-key 'devc-vault bench <bench@devc-vault.invalid>' default default never 2>/dev/null
	fpr=$(gpg --list-keys --with-colons | awk -F: '/^fpr/ { print $10; exit }')
	pass init "$fpr" >/dev/null
	printf '{"ServerURL":"%s","Username":"bench","Secret":"bench-secret"}' "$server" | docker-credential-pass store
	docker-credential-pass get <"$tmp/get.in" | grep -q bench-secret
	have_pass=1
else
	echo "docker-credential-pass, pass or gpg missing: skipping the pass column" >&2
fi

names=(ours floor)
progs=("$helper get" "git credential-store --file $tmp/git-credentials get")
inputs=("$tmp/get.in" "$tmp/git.in")
if [ "$have_pass" = 1 ]; then
	names+=(pass)
	progs+=("docker-credential-pass get")
	inputs+=("$tmp/get.in")
fi

# One round = one call of each command, in turn, so that load from anything
# else on the machine falls on all of them alike. Each call is timed from
# this shell (fork, exec, run, exit: what a client pays) with bash's
# microsecond clock, which costs no process. (hyperfine 1.15 cannot feed
# stdin without a shell, and its shell-time subtraction is coarser than
# the ~1 ms being measured.)
run_one() { # name, program words, input file
	local s e
	s=$EPOCHREALTIME
	$2 <"$3" >/dev/null
	e=$EPOCHREALTIME
	echo "$1 ${s/[.,]/} ${e/[.,]/}" >>"$tmp/times"
}
echo "timing $runs rounds (+10 warm-up) of: ${names[*]}" >&2
for ((r = 0; r < runs + 10; r++)); do
	for i in "${!names[@]}"; do
		if ((r < 10)); then
			${progs[$i]} <"${inputs[$i]}" >/dev/null
		else
			run_one "${names[$i]}" "${progs[$i]}" "${inputs[$i]}"
		fi
	done
done

python3 - "$tmp/times" "$runs" "${progs[@]}" <<'PY'
import statistics, sys
path, runs, progs = sys.argv[1], sys.argv[2], sys.argv[3:]
times = {}
for line in open(path):
    name, s, e = line.split()
    times.setdefault(name, []).append((int(e) - int(s)) / 1000.0)
names = list(times)
med = {n: statistics.median(times[n]) for n in names}
print("median wall time of one whole `get` call (%s interleaved rounds):" % runs)
for n, prog in zip(names, progs):
    t = sorted(times[n])
    p10, p90 = t[len(t) // 10], t[len(t) * 9 // 10]
    print("  %-6s %8.3f ms   (p10 %.3f, p90 %.3f)   %s" % (n, med[n], p10, p90, prog.split()[0].rsplit("/", 1)[-1] + " " + " ".join(prog.split()[1:2])))
ours, floor = med["ours"], med["floor"]
print()
print("  ours / git credential-store = %.2fx   (target <= 1.5x: %s)" % (ours / floor, "met" if ours <= 1.5 * floor else "MISSED"))
if "pass" in med:
    print("  pass / ours                 = %.1fx   (target >= 20x: %s)" % (med["pass"] / ours, "met" if med["pass"] >= 20 * ours else "MISSED"))
PY
