#!/usr/bin/env bash
# Benchmark (issue 16): luavirt against libvirt 9.0 (virsh) and qemu-img on this machine.
# Installs what is missing (QEMU 7.2 through tools/setup.sh, libvirt through
# tools/bench/libvirt.sh), builds luavirt in release mode, runs each case RUNS times,
# alternating luavirt and its comparison, and prints a markdown table of medians, spreads
# (min–max) and ratios luavirt/comparison, with a description of the machine. It reports; it
# never fails on a time. Run as root (libvirtd, apt-get). The cases are in tools/bench/.
#
#   tools/bench.sh [--runs N] [--cases a,b,c,d,e,f,g] [--sizes 1,100,10000]
#                  [--depths 1,50,199,200] [--disk-size 1G] [--policy-domains 10000]
#                  [--apply-runs 1]
#
# --apply-runs: runs of the applied Lua policy over 10,000 domains, which takes about 2.5
# minutes each (see the README); its dry run takes --runs runs like everything else.
#
# Everything happens in a temporary folder (luavirt state folders of its own, images) and in
# libvirt domains named lvbench-PID-*; all of it, and every QEMU started, is removed at the
# end, also on Ctrl-C. KEEP_WORK=1 keeps the folder's files (each run's time is in results/).
set -euo pipefail
export LC_ALL=C # EPOCHREALTIME and awk must use a decimal point
cd "$(dirname "$0")/.."
REPO=$PWD

RUNS=5
CASES=a,b,c,d,e,f,g
SIZES=1,100,10000
# 199: the deepest chain libvirt 9.0 snapshots (it refuses more than 200 images with the
# new overlay); 200 shows that refusal.
DEPTHS=1,50,199,200
DISK_SIZE=1G
POLICY_DOMAINS=10000
APPLY_RUNS=1

usage() {
  sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

parse_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --runs) RUNS=$2 ;;
      --cases) CASES=$2 ;;
      --sizes) SIZES=$2 ;;
      --depths) DEPTHS=$2 ;;
      --disk-size) DISK_SIZE=$2 ;;
      --policy-domains) POLICY_DOMAINS=$2 ;;
      --apply-runs) APPLY_RUNS=$2 ;;
      -h | --help) usage ;;
      *) echo "bench: unknown option $1" >&2 && usage ;;
    esac
    shift 2 || usage
  done
  [[ $RUNS =~ ^[1-9][0-9]*$ ]] || die "--runs takes a positive number, not '$RUNS'"
  [[ $APPLY_RUNS =~ ^[0-9]+$ ]] || die "--apply-runs takes a number, not '$APPLY_RUNS'"
}

. tools/bench/common.sh
. tools/bench/libvirt.sh
. tools/bench/snapshots.sh
. tools/bench/scale.sh
. tools/bench/blockjobs.sh
. tools/bench/migration.sh
. tools/bench/policy.sh

# GNU time measures the policy's peak memory.
install_tools() {
  [ -x /usr/bin/time ] && return 0
  note "installing GNU time"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q time >/dev/null
}

build() {
  note "building luavirt (release)"
  cargo build --release --workspace --locked >&2
  LUAVIRT=${CARGO_TARGET_DIR:-$REPO/target}/release/luavirt
  [ -x "$LUAVIRT" ] || die "no $LUAVIRT after the build"
}

# Removes whatever this run made: luavirt's running domains (through luavirt), libvirt's
# lvbench-PID-* domains (through virsh), any QEMU still running on an image in WORK (by its
# pid: a luavirt killed at the wrong moment could leave one), then the folder.
cleanup() {
  set +e
  trap - EXIT INT TERM
  # A Ctrl-C lands in the middle of a command whose output goes elsewhere (`timed`); the
  # trap runs with those redirections, so take back the script's own output first.
  exec 1>&3 2>&4
  [ -n "${WORK:-}" ] && [ -d "$WORK" ] || return 0
  note "cleaning up"
  local state name pid
  for state in "$WORK"/*/state; do
    [ -d "$state" ] || continue
    for name in $(lv "$state" list --name 2>/dev/null); do
      lv "$state" destroy "$name" >/dev/null 2>&1
    done
  done
  for name in $(vsh list --name 2>/dev/null | grep "^$PREFIX"); do
    vsh destroy "$name" >/dev/null 2>&1
  done
  vsh list --all --name 2>/dev/null | grep "^$PREFIX" | sed 's/^/undefine --snapshots-metadata /' \
    | vsh >/dev/null 2>&1
  for pid in $(pgrep -f -- "$WORK/"); do
    kill "$pid" 2>/dev/null
  done
  if [ -n "${KEEP_WORK:-}" ]; then
    note "kept $WORK (results/ holds each run's time in microseconds)"
  else
    rm -rf "$WORK"
  fi
}

machine_description() {
  local cpu mem os
  cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)
  mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  os=$(. /etc/os-release && echo "$PRETTY_NAME")
  echo "- Machine: $cpu, $(nproc) cores, $mem memory; $os, kernel $(uname -r)"
  echo "- QEMU: $(qemu-system-x86_64 --version | head -n 1 | sed 's/QEMU emulator //') (TCG);" \
    "qemu-img $(qemu-img --version | head -n 1 | sed 's/.*version //')"
  echo "- libvirt: $(libvirtd --version | sed 's/.* //') (libvirtd, virsh $(virsh --version))"
  echo "- luavirt: $("$LUAVIRT" --version | sed 's/.* //') at $(git -C "$REPO" rev-parse --short HEAD)" \
    "($(git -C "$REPO" log -1 --format=%cs)), release build"
  echo "- Run: $(date -u '+%Y-%m-%d %H:%M UTC'), $RUNS runs per case ($APPLY_RUNS of the applied policy);" \
    "load average $LOAD_AT_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
}

report() {
  echo
  echo "## luavirt benchmark"
  echo
  machine_description
  echo
  echo "| case | luavirt median (min–max) | compared with | comparison median (min–max) | luavirt / comparison |"
  echo "|---|---|---|---|---|"
  # By case letter; the rows of a case stay in the order they were measured.
  sort -s -k2,2 "$WORK/table.md"
}

has_case() { [[ ,$CASES, == *",$1,"* ]]; }

main() {
  parse_args "$@"
  [ "$(id -u)" -eq 0 ] || die "run as root: libvirtd runs as root here, and missing packages come from apt-get"
  tools/setup.sh
  libvirt_ready
  install_tools
  build
  LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
  exec 3>&1 4>&2 # the script's own output, for cleanup
  WORK=$(mktemp -d /var/tmp/luavirt-bench.XXXXXX)
  PREFIX=lvbench-$$-
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  mkdir "$WORK/results"
  : >"$WORK/table.md"

  # Cheap cases first; the population of (c) stays for (f).
  has_case a && case_live_snapshot
  has_case b && case_mixed_snapshot
  has_case g && case_chain_depth
  has_case d && case_blockjobs
  has_case e && case_migration
  has_case c && case_scale
  has_case f && case_policy

  local out=${CARGO_TARGET_DIR:-$REPO/target}/bench-last.md
  report | tee "$out"
  note "table kept in $out"
}

main "$@"
