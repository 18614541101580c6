# What every benchmark case uses: messages, the two front ends (luavirt and virsh), domain
# XML, timing, statistics and the result table. Sourced by tools/bench.sh, which sets
# WORK (the temporary folder), RUNS, LUAVIRT (the release binary) and PREFIX (this run's
# libvirt name prefix) before any case runs.
# shellcheck disable=SC2016 # `...` in single quotes is markdown for the table, not a command

note() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

# --- the two front ends -------------------------------------------------------------------

# luavirt on its own state folder: `lv STATE VERB ARGS...`. Every case has its own folder, so
# nothing here ever sees (or changes) the machine's real luavirt domains.
lv() {
  local state=$1 uri
  shift
  uri=$(uri "$state") || exit 1
  "$LUAVIRT" -c "$uri" "$@"
}

# The URI of luavirt's host on state folder STATE, which must lie in WORK (a safety net: no
# typo here may ever reach a real state folder). It runs in a subshell, so callers check its
# status: `uri=$(uri "$state") || exit 1`.
uri() {
  [[ $1 == "$WORK"/?* ]] || die "luavirt state folder '$1' is outside $WORK"
  echo "qemu:///session?state=$1"
}

# virsh on the system libvirtd (the one tools/bench/libvirt.sh starts).
vsh() { virsh -q -c qemu:///system "$@"; }

# Domain XML as luavirt's own tests write it (tests/src/lib.rs `domain_xml`): TCG, 64 MiB, no
# OS, virtio disks: `domain_xml [--uuid UUID] NAME DISK...`, each DISK TARGET:FORMAT:PATH.
# Builtins only: the scale case writes tens of thousands of these.
domain_xml() {
  local uuid='' name disk target format path rest
  if [ "$1" = --uuid ]; then
    uuid="  <uuid>$2</uuid>"$'\n'
    shift 2
  fi
  name=$1
  shift
  printf "<domain type='qemu'>\n  <name>%s</name>\n%s" "$name" "$uuid"
  printf "  <memory unit='MiB'>64</memory>\n  <vcpu>1</vcpu>\n"
  printf "  <os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n  <devices>\n"
  for disk in "$@"; do
    target=${disk%%:*} rest=${disk#*:}
    format=${rest%%:*} path=${rest#*:}
    printf "    <disk type='file' device='disk'>\n      <driver name='qemu' type='%s'/>\n" "$format"
    printf "      <source file='%s'/>\n      <target dev='%s' bus='virtio'/>\n    </disk>\n" "$path" "$target"
  done
  printf "  </devices>\n</domain>\n"
}

# Defines and starts the same domain NAME on both sides: luavirt in STATE, libvirt on the
# system libvirtd. In each DISK (as for domain_xml) @SIDE@ stands for DIR/luavirt or
# DIR/libvirt: each side has its own images, made by the caller. The XML stays in
# DIR/luavirt.xml and DIR/libvirt.xml for start_side; it has a UUID, since libvirt takes a
# redefinition without one for a second domain of the same name.
start_both() {
  local state=$1 name=$2 dir=$3 uuid
  shift 3
  read -r uuid </proc/sys/kernel/random/uuid
  domain_xml --uuid "$uuid" "$name" "${@//@SIDE@/$dir/luavirt}" >"$dir/luavirt.xml"
  domain_xml --uuid "$uuid" "$name" "${@//@SIDE@/$dir/libvirt}" >"$dir/libvirt.xml"
  start_side luavirt "$state" "$name" "$dir"
  start_side libvirt "$state" "$name" "$dir"
}

# Stops the domain on both sides (the images stay; the cleanup removes them).
stop_both() {
  stop_side luavirt "$1" "$2"
  stop_side libvirt "$1" "$2"
}

# (Re)defines domain NAME on SIDE (luavirt, in STATE, or libvirt) from DIR/SIDE.xml and
# starts it: after a pivot or a snapshot, this puts it back on the images the XML names.
start_side() {
  local side=$1 state=$2 name=$3 dir=$4
  if [ "$side" = luavirt ]; then
    lv "$state" define "$dir/luavirt.xml" >/dev/null
    lv "$state" start "$name" >/dev/null
  else
    vsh define "$dir/libvirt.xml" >/dev/null
    vsh start "$name" >/dev/null
  fi
}

# Stops domain NAME on SIDE if it runs.
stop_side() {
  local side=$1 state=$2 name=$3
  if [ "$side" = luavirt ]; then
    lv "$state" destroy "$name" >/dev/null 2>&1 || true
  else
    vsh destroy "$name" >/dev/null 2>&1 || true
  fi
}

# --- timing -------------------------------------------------------------------------------

# Runs CMD and appends its wall time (microseconds, from bash's own clock: no extra process
# in the measurement) to $WORK/results/KEY. A command that fails leaves its error in
# KEY.error instead; the benchmark reports it and goes on.
timed() {
  local key=$1 t0 t1
  shift
  t0=$EPOCHREALTIME
  if "$@" >/dev/null 2>"$WORK/last.err"; then
    t1=$EPOCHREALTIME
    echo $((${t1/./} - ${t0/./})) >>"$WORK/results/$key"
  else
    note "$key failed: $(tail -n 1 "$WORK/last.err")"
    tail -n 1 "$WORK/last.err" >"$WORK/results/$key.error"
  fi
}

# Like `timed`, also keeping the command's peak memory (GNU time's maximum resident set
# size, KiB) in KEY.rss.
timed_with_memory() {
  local key=$1
  shift
  timed "$key" /usr/bin/time -q -a -o "$WORK/results/$key.rss" -f %M "$@"
}

# Runs CMD, which is expected to fail, and keeps its error message in KEY.refused.
refused() {
  local key=$1
  shift
  if "$@" >/dev/null 2>"$WORK/last.err"; then
    echo "(it did not refuse)" >"$WORK/results/$key.refused"
  else
    grep -v '^$' "$WORK/last.err" | tail -n 1 >"$WORK/results/$key.refused"
  fi
}

# Calls each SIDE function with the run number, RUNS times, rotating which side goes first
# so that neither always runs on a warmer (or more loaded) machine.
alternate() {
  local sides=("$@") n=$# r i
  for ((r = 1; r <= RUNS; r++)); do
    for ((i = 0; i < n; i++)); do
      "${sides[(i + r) % n]}" "$r"
    done
  done
}

# --- statistics and the table ---------------------------------------------------------------

# "median min max" of the microseconds in FILE.
stats() {
  sort -n "$1" | awk '{ v[NR] = $1 }
    END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'
}

# Microseconds as people read them, in the unit that suits the median: "0.8 ms",
# "64.2 ms", "812 ms", "12.34 s", "1635 s"; `human MEDIAN MIN MAX` gives "812 ms (700–900)".
human() {
  awk -v median="$1" -v min="${2:-}" -v max="${3:-}" '
    function show(us) {
      v = s ? us / 1e6 : us / 1e3
      return sprintf(s && v < 9.995 ? "%.2f" : v < 99.95 ? "%.1f" : "%.0f", v)
    }
    BEGIN {
      s = median >= 1e6
      printf "%s %s", show(median), s ? "s" : "ms"
      if (min != "") printf " (%s–%s)", show(min), show(max)
    }'
}

# The table cell for KEY: "median (min–max)", the failure, or the refusal.
cell() {
  local f=$WORK/results/$1 median min max
  if [ -s "$f" ]; then
    read -r median min max < <(stats "$f")
    human "$median" "$min" "$max"
    [ ! -s "$f.rss" ] || printf ', peak RSS %s MiB' "$(sort -n "$f.rss" | awk 'END { printf "%.0f", $1 / 1024 }')"
  elif [ -s "$f.refused" ]; then
    printf 'refused: `%s`' "$(cat "$f.refused")"
  elif [ -s "$f.error" ]; then
    printf 'failed: `%s`' "$(cat "$f.error")"
  else
    printf 'not measured'
  fi
}

# "1 domain", "10,000 domains": N and NOUN, with thousands separated and a plural.
count() {
  local n=$1 noun=$2
  [ "$n" -eq 1 ] || noun+=s
  printf '%s %s' "$(sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$n")" "$noun"
}

# luavirt's median over the comparison's, when both were measured.
ratio() {
  local l=$WORK/results/$1 c=$WORK/results/$2
  if [ -s "$l" ] && [ -s "$c" ]; then
    awk -v l="$(stats "$l" | cut -d' ' -f1)" -v c="$(stats "$c" | cut -d' ' -f1)" 'BEGIN { printf "%.2f", l / c }'
  else
    printf '—'
  fi
}

# Adds a row to the table: CASE, luavirt's KEY, what it is compared with, and that KEY (or
# "-" for no comparison).
row() {
  local case=$1 lkey=$2 what=$3 ckey=$4 comparison='—'
  [ "$ckey" = - ] || comparison=$(cell "$ckey")
  printf '| %s | %s | %s | %s | %s |\n' \
    "$case" "$(cell "$lkey")" "$what" "$comparison" "$(ratio "$lkey" "$ckey")" >>"$WORK/table.md"
}

# A row that says why a case was not measured.
row_note() {
  printf '| %s | %s | | | |\n' "$1" "$2" >>"$WORK/table.md"
}
