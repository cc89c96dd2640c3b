#!/usr/bin/env bash
# Key-delivery benchmarks (issue 5, "Speed"): `docker-credential-devc-encrypted
# get` through the key file, the agent and the passphrase cache, side by side
# in one interleaved run; then agent throughput with 16 concurrent clients.
# Results go to stdout; docs/PERFORMANCE.md records them.
#
#   scripts/bench-keydelivery.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-200}"

target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p devc-vault-cli -p devc-helper
cargo build --release -q -p devc-keydelivery --example agent_throughput --example get_latency
bin="$target/release"
cli="$bin/devc-vault"
helper="$bin/docker-credential-devc-encrypted"

work="$(mktemp -d /tmp/devc-bench-kd.XXXXXX)"
agent_pid=""
cleanup() {
  [[ -n "$agent_pid" ]] && kill "$agent_pid" 2>/dev/null || true
  DEVC_VAULT_AGENT_SOCK=/nonexistent/agent.sock XDG_RUNTIME_DIR="$work/run" "$cli" lock >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -m 700 "$work/run"

# Nothing from the caller's environment may steer the helper.
unset DEVC_VAULT_KEY_FILE DEVC_VAULT_AGENT_SOCK DEVC_VAULT_KEY_ORDER DEVC_VAULT_CONFIG
export DEVC_VAULT="$work/vault/.credentials.enc" XDG_RUNTIME_DIR="$work/run" XDG_CONFIG_HOME="$work/config" HOME="$work"
key="$work/keys/key"
pass="bench passphrase"

"$cli" init --key-file "$key" >/dev/null
printf 'bench-secret' | "$cli" add docker --key-file "$key" --server ghcr.io --username bench >/dev/null
printf '%s' "$pass" | "$cli" slot add passphrase --key-file "$key" --new-passphrase-fd 0 >/dev/null

sock="$work/sock/agent.sock"
"$cli" agent --quiet --key-file "$key" --socket "$sock" &
agent_pid=$!
for _ in $(seq 100); do [[ -S "$sock" ]] && break; sleep 0.05; done

# The passphrase cache, filled ahead of time (as `devc-vault unlock` does).
printf '%s' "$pass" | DEVC_VAULT_KEY_FILE=/nonexistent DEVC_VAULT_AGENT_SOCK=/nonexistent/agent.sock \
  "$cli" unlock --passphrase-fd 0 >/dev/null

printf 'ghcr.io' >"$work/url"
# Each path must answer before it is timed.
for mode in file agent cache; do
  case $mode in
    file) env=(DEVC_VAULT_KEY_FILE="$key" DEVC_VAULT_AGENT_SOCK=/nonexistent/agent.sock) ;;
    agent) env=(DEVC_VAULT_KEY_FILE=/nonexistent DEVC_VAULT_AGENT_SOCK="$sock") ;;
    cache) env=(DEVC_VAULT_KEY_FILE=/nonexistent DEVC_VAULT_AGENT_SOCK=/nonexistent/agent.sock) ;;
  esac
  env "${env[@]}" "$helper" get <"$work/url" | grep -q '"Secret":"bench-secret"' ||
    { echo "bench: $mode path does not answer" >&2; exit 1; }
done

# Interleaved round-robin, so load on the machine hits every path alike.
"$bin/examples/get_latency" "$helper" "$work/url" "$runs" \
  "key file=DEVC_VAULT_KEY_FILE=$key,DEVC_VAULT_AGENT_SOCK=/nonexistent/agent.sock" \
  "agent=DEVC_VAULT_KEY_FILE=/nonexistent,DEVC_VAULT_AGENT_SOCK=$sock" \
  "passphrase cache=DEVC_VAULT_KEY_FILE=/nonexistent,DEVC_VAULT_AGENT_SOCK=/nonexistent/agent.sock"

echo
"$bin/examples/agent_throughput" "$sock" "$DEVC_VAULT" 16 5
"$bin/examples/agent_throughput" "$sock" "$DEVC_VAULT" 16 5 reconnect
