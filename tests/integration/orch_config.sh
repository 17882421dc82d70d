#!/bin/bash
# orch_config: bad configurations (an unknown key, a wrong type, a missing
# vault directory, a bad value) make `vaultfs run`, `status` and `bucket
# setup` exit non-zero with a message naming the key; the stateDir lock
# lets one `vaultfs run` at a time run jobs while `status` still reads;
# command-line mistakes; status of an empty journal.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"

mkdir -p "$T/vault"

# expect_config_error 'JSON' REGEX: every command refuses it, naming the key
expect_config_error() {
	local json=$1 re=$2 cmd
	write_config "$T/bad.json" "$json"
	for cmd in "run --once" status "bucket setup"; do
		# shellcheck disable=SC2086
		expect_fail vf $cmd --config "$T/bad.json"
		expect_grep "$re" "$FAIL_OUT"
	done
	[ ! -e "$T/state" ] || die "a refused config still created its stateDir"
}

expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\", \"vualts\": [] }" \
	'config: unknown key "vualts" \(did you mean "vaults"\?\)'
expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"compression\": { \"lvl\": 3 } }" \
	'unknown key "compression.lvl"'
expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"autoDeleteSnapshot\": \"false\" }" \
	'config: autoDeleteSnapshot: must be true or false'
expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"concurrency\": { \"jobs\": \"three\" } }" \
	'concurrency.jobs'
expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/no-such-vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\" }" \
	'config: vaults\[0\]\.path: .*no-such-vault.*(No such file|not a directory)'
expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\",
  \"compression\": { \"codec\": \"gzip\", \"level\": 12 } }" \
	'compression.level'
expect_config_error "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"s3://Bad_Bucket\", \"stateDir\": \"$T/state\" }" \
	'destination'
printf '{ "vaults": [ ' >"$T/broken.json"
expect_fail vf run --once --config "$T/broken.json"
expect_grep 'config' "$FAIL_OUT"
expect_fail vf run --once --config "$T/no-such-config.json"
expect_grep 'no-such-config.json' "$FAIL_OUT"
log "bad configurations are refused, naming the key"

# command lines
expect_fail vf run --once --bogus
expect_fail vf run --once extra-argument
expect_fail vf run --retry-failed --config "$T/bad.json"
expect_grep 'retry-failed goes with --once' "$FAIL_OUT"
expect_fail vf bucket
expect_fail vf bucket frobnicate
expect_fail vf status --bogus
vf run --help | grep -q -- '--once' || die "run --help does not mention --once"
vf status --help | grep -q -- '--json' || die "status --help does not mention --json"
vf bucket --help | grep -q 'setup' || die "bucket --help does not mention setup"
for c in run status bucket; do
	vf --help | grep -qE "^ +$c " || die "vaultfs --help does not list $c"
done

# a good config; status of an empty journal
write_config "$T/good.json" "{ \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/store\", \"stateDir\": \"$T/state\" }"
vf status --config "$T/good.json" >"$T/status.out"
expect_grep '^no jobs yet' "$T/status.out"
[ "$(vf status --config "$T/good.json" --json | tr -d ' \n')" = "[]" ] || die "status --json of nothing is not []"

# the lock: a daemon holds the stateDir; a second run is refused, status reads
start_daemon "$T/good.json"
expect_fail vf run --once --config "$T/good.json"
expect_grep "another vaultfs \(pid [0-9]+\) holds $T/state/lock" "$FAIL_OUT"
vf status --config "$T/good.json" >/dev/null || die "status fails while a daemon runs"
stop_daemon TERM
expect_grep 'Terminated: stopping' "$T/daemon.err"
vf_run --once --config "$T/good.json"
expect_grep '^queued 0 recovery points' "$RUN_OUT"
log "one vaultfs per stateDir; status reads without the lock; SIGTERM stops the daemon"
