#!/usr/bin/env bash
# Where luavirt's time goes in the benchmark's slow cases (README, "Benchmark"), on luavirt's
# side only. Run as root after tools/bench.sh (it builds luavirt and installs what is needed):
#
#   tools/bench/profile.sh snapshot          timeline of a live snapshot of 2 of 4 disks (a)
#   tools/bench/profile.sh snapshot DEPTH    the same for 1 disk on a chain of DEPTH images (g)
#   tools/bench/profile.sh define N          one `define` with N domains defined (c)
#   tools/bench/profile.sh policy N          the Lua policy over N domains, dry run and applied (f)
#
# A timeline (strace) shows, in ms from luavirt's start, each process luavirt runs and how
# long it takes, each QMP command it sends and each fsync. Counts are syscalls (strace -c)
# and XML documents parsed by the host and by the QEMU driver (perf uprobes on
# luavirt_plugin_api::xml::parse::parse_document). Everything happens in a temporary folder,
# removed at the end.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/../.."
REPO=$PWD
. tools/bench/common.sh
. tools/bench/snapshots.sh
. tools/bench/scale.sh
. tools/bench/policy.sh

LUAVIRT=${CARGO_TARGET_DIR:-$REPO/target}/release/luavirt
PREFIX=lvprof-$$-

# A live snapshot's timeline: each line is "+ms what". qemu-img and other processes are
# followed (seccomp-filtered, so only the traced calls stop them) to name them.
timeline() {
  strace -f --seccomp-bpf -tt -s 4096 -e trace=execve,connect,sendto,fsync,exit_group -o "$WORK/trace" "$@" \
    >/dev/null
  awk '
    function ms(t,  p) { split(t, p, ":"); return (p[1] * 3600 + p[2] * 60 + p[3]) * 1000 }
    function say(what) { flush(); print at what }
    # Runs of fsyncs are shown as one line.
    function flush() {
      if (fsyncs) printf "%s%d fsync(s) until %+.1f ms\n", fsync_at, fsyncs, last_fsync
      fsyncs = 0
    }
    { now = ms($2); if (NR == 1) t0 = now; at = sprintf("%+8.1f ms  ", now - t0) }
    NR == 1 { print at "luavirt starts"; next }
    /execve\(/ && / = 0$/ {
      match($0, /\[.*\]/); started[$1] = now
      cmd = substr($0, RSTART + 1, RLENGTH - 2); gsub(/", "/, " ", cmd); gsub(/"/, "", cmd)
      say("process " $1 ": " cmd); next }
    /\+\+\+ exited/ && ($1 in started) { say(sprintf("process %s ends (%.1f ms)", $1, now - started[$1])); next }
    /connect\(.*qmp/ { say("QMP connection"); next }
    /sendto\(.*execute/ {
      match($0, /execute\\":\\"[a-z_-]*/); say("QMP " substr($0, RSTART + 12, RLENGTH - 12)); next }
    /fsync\(/ { if (!fsyncs) fsync_at = at; fsyncs++; last_fsync = now - t0; next }
    /exit_group/ && !($1 in started) { say("luavirt ends") }
  ' "$WORK/trace"
}

# The file offset of the first symbol matching PATTERN in the ELF file BIN (uprobes take
# offsets, nm gives addresses: they differ by the loadable segment's address minus offset).
symbol_offset() {
  local bin=$1 pattern=$2 addr type off va memsz
  addr=$(nm "$bin" | awk -v p="$pattern" '$0 ~ p { print $1; exit }')
  [ -n "$addr" ] || return 1
  addr=$((16#$addr))
  while read -r type off va _ _ memsz _; do
    [ "$type" = LOAD ] && ((addr >= va && addr < va + memsz)) && printf '0x%x\n' $((addr - va + off)) && return 0
  done < <(readelf -lW "$bin")
  return 1
}

# Runs CMD, counting the XML documents the host (luavirt) and the QEMU driver parse.
count_parses() {
  local sym='parse_document17h' host drv
  if ! host=$(symbol_offset "$LUAVIRT" "$sym") \
    || ! drv=$(symbol_offset "${LUAVIRT%/*}/libluavirt_qemu.so" "$sym"); then
    echo "  (no symbols to probe: XML parses not counted)"
    "$@" >/dev/null 2>&1
    return 0
  fi
  perf probe -q -x "$LUAVIRT" -a "hostparse=$host"
  perf probe -q -x "${LUAVIRT%/*}/libluavirt_qemu.so" -a "driverparse=$drv"
  perf stat -x, -e probe_luavirt:hostparse -e probe_libluavirt_qemu:driverparse -o "$WORK/parses" "$@" \
    >/dev/null 2>&1
  perf probe -q -d probe_luavirt:hostparse -d probe_libluavirt_qemu:driverparse
  awk -F, '/probe_luavirt/ { h = $1 } /probe_libluavirt_qemu/ { d = $1 }
    END { print "  XML documents parsed: " h " by the host, " d " by the QEMU driver" }' "$WORK/parses"
}

# Runs CMD under strace -c: the syscalls that took the most time.
count_syscalls() {
  strace -f -c -o "$WORK/syscalls" "$@" >/dev/null 2>&1
  head -n 10 "$WORK/syscalls" | sed 's/^/  /'
}

profile_snapshot() {
  local depth=${1:-} state=$WORK/snap/state uri
  SNAP_DIR=$WORK/snap SNAP_NAME=${PREFIX}snap
  uri=$(uri "$state") || exit 1
  if [ -z "$depth" ]; then
    make_images "$SNAP_DIR" 64M vda.qcow2:qcow2 vdb.qcow2:qcow2 vdc.qcow2:qcow2 vdd.qcow2:qcow2
    domain_xml "$SNAP_NAME" vda:qcow2:"$SNAP_DIR/luavirt/vda.qcow2" vdb:qcow2:"$SNAP_DIR/luavirt/vdb.qcow2" \
      vdc:qcow2:"$SNAP_DIR/luavirt/vdc.qcow2" vdd:qcow2:"$SNAP_DIR/luavirt/vdd.qcow2" >"$SNAP_DIR/luavirt.xml"
  else
    make_chain "$SNAP_DIR/luavirt" "$depth"
    domain_xml "$SNAP_NAME" "vda:qcow2:$SNAP_DIR/luavirt/img$depth.qcow2" >"$SNAP_DIR/luavirt.xml"
  fi
  start_side luavirt "$state" "$SNAP_NAME" "$SNAP_DIR"
  # A first snapshot untimed: the benchmark's runs find one or more before theirs.
  # shellcheck disable=SC2046 # two_of_four's words are separate options
  if [ -z "$depth" ]; then
    lv "$state" snapshot-create-as "$SNAP_NAME" s1 --disk-only $(two_of_four "$SNAP_DIR/luavirt" 1) >/dev/null
    echo "live external disk-only snapshot of 2 of 4 qcow2 disks:"
    timeline "$LUAVIRT" -c "$uri" snapshot-create-as "$SNAP_NAME" s2 --disk-only \
      $(two_of_four "$SNAP_DIR/luavirt" 2)
  else
    echo "live external disk-only snapshot of 1 disk on a chain of $(count "$depth" image):"
    timeline "$LUAVIRT" -c "$uri" snapshot-create-as "$SNAP_NAME" s1 --disk-only \
      --diskspec "vda,snapshot=external,file=$SNAP_DIR/luavirt/s1.qcow2"
  fi
  lv "$state" destroy "$SNAP_NAME" >/dev/null
}

profile_define() {
  local n=$1 uri
  scale_init
  uri=$(uri "$SCALE_DIR/state") || exit 1
  populate_luavirt "$n"
  pop_xml "${PREFIX}new" >"$SCALE_DIR/xml/new.xml"
  echo "define of one more domain, $(count "$n" domain) defined:"
  count_parses "$LUAVIRT" -c "$uri" define "$SCALE_DIR/xml/new.xml"
  lv "$SCALE_DIR/state" undefine "${PREFIX}new" >/dev/null
  count_syscalls "$LUAVIRT" -c "$uri" define "$SCALE_DIR/xml/new.xml"
}

profile_policy() {
  local n=$1 copy=$WORK/apply uri copy_uri
  scale_init
  uri=$(uri "$SCALE_DIR/state") || exit 1
  copy_uri=$(uri "$copy") || exit 1
  populate_luavirt "$n"
  echo "Lua policy over $(count "$n" domain), dry run:"
  # shellcheck disable=SC2046 # policy_args' words are separate arguments
  count_parses "$LUAVIRT" -c "$uri" run --dry-run $(policy_args)
  echo "the same policy applied:"
  cp -a "$SCALE_DIR/state" "$copy"
  # shellcheck disable=SC2046
  count_parses "$LUAVIRT" -c "$copy_uri" run $(policy_args)
  rm -rf "$copy"
  cp -a "$SCALE_DIR/state" "$copy"
  # shellcheck disable=SC2046
  count_syscalls "$LUAVIRT" -c "$copy_uri" run $(policy_args)
}

cleanup_profile() {
  local name
  for name in $(lv "$WORK/snap/state" list --name 2>/dev/null); do
    lv "$WORK/snap/state" destroy "$name" >/dev/null 2>&1 || true
  done
  perf probe -q -d 'probe_luavirt:*' -d 'probe_libluavirt_qemu:*' 2>/dev/null || true
  rm -rf "$WORK"
}

main() {
  [ "$(id -u)" -eq 0 ] || die "run as root (perf probes and the benchmark's setup need it)"
  [ -x "$LUAVIRT" ] || die "no $LUAVIRT: run tools/bench.sh first (or cargo build --release --workspace)"
  mkdir -p "$WORK/results"
  trap cleanup_profile EXIT
  case ${1:-} in
    snapshot) profile_snapshot "${2:-}" ;;
    define) profile_define "${2:?define needs N}" ;;
    policy) profile_policy "${2:?policy needs N}" ;;
    *) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' && exit 2 ;;
  esac
}

WORK=$(mktemp -d /var/tmp/luavirt-profile.XXXXXX)
main "$@"
