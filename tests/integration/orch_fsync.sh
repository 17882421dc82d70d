#!/bin/bash
# orch_fsync: into a local store, every directory vaultfs creates on the
# way to an archive (RESOURCE/Y=/M=/D=/JOBID/, and the store itself) is
# made durable before the archive counts as written: after each mkdir, the
# directory it was made in is fsynced, before backup.tar.gz.partial is
# renamed to backup.tar.gz. Seen with strace (-f -y: the fds' paths).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/archive.inc"
. "$(dirname "$0")/orch.inc"
need_tools strace

mkdir -p "$T/vault"
make_tree "$T/vault/tree" 2
write_config "$T/c.json" "{
  \"vaults\": [ { \"name\": \"v\", \"path\": \"$T/vault\" } ],
  \"destination\": \"$T/a/b/store\", \"stateDir\": \"$T/state\" }"

# LeakSanitizer cannot run under ptrace (the ASan build): leaks are
# checked by every other test
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
	timeout -k 10 300 strace -f -y -qq -o "$T/strace.txt" \
	-e trace=mkdir,mkdirat,fsync,fdatasync,rename,renameat,renameat2 \
	"$VAULTFS" run --config "$T/c.json" --once >"$RUN_OUT" 2>"$RUN_ERR" ||
	{ cat "$RUN_ERR" >&2; die "vaultfs run under strace failed"; }
expect_grep '^succeeded v/tree' "$RUN_OUT"
ARCHIVE=$(find "$T/a/b/store" -name backup.tar.gz)
[ -n "$ARCHIVE" ] || die "no archive in the store"

python3 - "$T/strace.txt" "$(realpath "$T")" "$(realpath "$ARCHIVE")" <<'EOF' || die "a directory made on the way to the archive was not fsynced into its parent in time (above)"
import os, re, sys
trace, top, archive = sys.argv[1], sys.argv[2], sys.argv[3]
# join "<unfinished ...>" / "<... NAME resumed>" halves, per pid
pending, calls = {}, []
for line in open(trace):
    m = re.match(r"(\d+) +(.*)$", line.rstrip("\n"))
    if not m:
        continue
    pid, text = m.groups()
    if text.endswith("<unfinished ...>"):
        pending[pid] = text[: -len("<unfinished ...>")]
        continue
    r = re.match(r"<\.\.\. \w+ resumed>(.*)$", text)
    if r:
        text = pending.pop(pid, "") + r.group(1)
    calls.append(text)

made, fsynced, renamed = {}, [], None
for i, c in enumerate(calls):
    m = re.match(r'mkdir\("([^"]+)", [0-7]+\) += 0', c) or \
        re.match(r'mkdirat\(AT_FDCWD(?:<[^>]*>)?, "([^"]+)", [0-7]+\) += 0', c)
    if m:
        made.setdefault(m.group(1), i)
        continue
    m = re.match(r"f(?:data)?sync\(\d+<([^>]+)>\) += 0", c)
    if m:
        fsynced.append((i, m.group(1)))
        continue
    if re.match(r"rename(?:at2?)?\(", c) and c.find(archive + ".partial") >= 0 \
            and renamed is None:
        renamed = i
if renamed is None:
    sys.exit("no rename of %s.partial seen" % archive)
ours = {d: i for d, i in made.items() if d.startswith(top + "/a")}
need = [d for d in ours if archive.startswith(d + "/")]
if len(need) < 7:  # a, b, store, local, v, tree, Y=, M=, D=, JOBID
    sys.exit("only %d directories made on the way to the archive: %s" % (len(need), need))
bad = 0
for d in sorted(ours, key=ours.get):
    parent = os.path.dirname(d)
    ok = any(ours[d] < i < renamed and p == parent for i, p in fsynced)
    print("%-4s mkdir %s, fsync of %s" % ("ok" if ok else "BAD", d, parent))
    bad += not ok
sys.exit(1 if bad else 0)
EOF
log "every directory made into the store was fsynced into its parent before the archive's rename"
