# (c) `list --all`, `domblklist` and `define` with 1, 100 and 10,000 defined domains, and the
# population the Lua policy case (f) runs over. Every domain has 4 qcow2 disks: vda-vdc in
# /srv/lvbench/, vdd in /scratch/lvbench/ (local scratch storage, what the policy looks for).
# Those images are never made, nor are the folders: listing, domblklist, define and the
# policy read definitions only, on both sides. (Paths in WORK would not do: the policy counts
# everything under /var/tmp/ and /tmp/ as scratch.)
# shellcheck disable=SC2016 # `...` in single quotes is markdown for the table, not a command

SCALE_DIR=
LUAVIRT_COUNT=0 # domains defined so far on each side
LIBVIRT_COUNT=0

# Called first by the cases that use the population.
scale_init() {
  SCALE_DIR=$WORK/scale
  mkdir -p "$SCALE_DIR/xml"
}

# Population domain K's name, into variable VAR.
pop_name() { printf -v "$1" '%sp%05d' "$PREFIX" "$2"; }

# Population domain NAME's XML (with --uuid UUID for luavirt's side).
pop_xml() {
  local name=${*: -1}
  domain_xml "$@" "vda:qcow2:/srv/lvbench/$name-vda.qcow2" "vdb:qcow2:/srv/lvbench/$name-vdb.qcow2" \
    "vdc:qcow2:/srv/lvbench/$name-vdc.qcow2" "vdd:qcow2:/scratch/lvbench/$name-vdd.qcow2"
}

# Tops luavirt's population up to N domains. The definitions are written straight into the
# state folder, in its documented layout (qemu/domains/NAME.xml, byte for byte what `define`
# stores when the XML has a <uuid>, mode 0600): 10,000 `luavirt define` processes would take
# minutes, against seconds for the files. The UUID index is then dropped; luavirt rebuilds it from the definitions at
# the next define, done here untimed, and the count is checked through luavirt itself.
populate_luavirt() {
  local n=$1 state=$SCALE_DIR/state k name uuid
  ((LUAVIRT_COUNT < n)) || return 0
  note "defining $(count "$n" domain) in luavirt"
  (umask 077 && mkdir -p "$state/qemu/domains") # private, as luavirt makes its folders
  (
    umask 077
    for ((k = LUAVIRT_COUNT + 1; k <= n; k++)); do
      pop_name name "$k"
      read -r uuid </proc/sys/kernel/random/uuid
      pop_xml --uuid "$uuid" "$name" >"$state/qemu/domains/$name.xml"
    done
  )
  rm -rf "$state/qemu/uuids"
  pop_xml "${PREFIX}index" >"$SCALE_DIR/xml/index.xml"
  lv "$state" define "$SCALE_DIR/xml/index.xml" >/dev/null
  lv "$state" undefine "${PREFIX}index" >/dev/null
  LUAVIRT_COUNT=$(lv "$state" list --all --name | grep -c "^${PREFIX}p")
  [ "$LUAVIRT_COUNT" -eq "$n" ] || die "luavirt lists $LUAVIRT_COUNT population domains, not $n"
}

# Tops libvirt's population up to N domains, all defined in one virsh session (one
# process and connection for all of them, the fastest way a user has).
populate_libvirt() {
  local n=$1 k name t0
  ((LIBVIRT_COUNT < n)) || return 0
  note "defining $(count "$n" domain) in libvirt"
  for ((k = LIBVIRT_COUNT + 1; k <= n; k++)); do
    pop_name name "$k"
    pop_xml "$name" >"$SCALE_DIR/xml/$name.xml"
    echo "define $SCALE_DIR/xml/$name.xml"
  done >"$SCALE_DIR/define.virsh"
  t0=$EPOCHREALTIME
  vsh <"$SCALE_DIR/define.virsh" >/dev/null
  note "libvirt defined $(count $((n - LIBVIRT_COUNT)) domain) in $(human $((${EPOCHREALTIME/./} - ${t0/./})))"
  LIBVIRT_COUNT=$(vsh list --all --name | grep -c "^${PREFIX}p")
  [ "$LIBVIRT_COUNT" -eq "$n" ] || die "libvirt lists $LIBVIRT_COUNT population domains, not $n"
}

# Undefines libvirt's population (in one virsh session), so later cases run on a libvirtd
# without it.
unpopulate_libvirt() {
  ((LIBVIRT_COUNT > 0)) || return 0
  vsh list --all --name | grep "^${PREFIX}p" | sed 's/^/undefine /' | vsh >/dev/null
  LIBVIRT_COUNT=0
}

# The size being measured, for the side functions.
SCALE_N=

list_luavirt() { timed "list$SCALE_N.luavirt" lv "$SCALE_DIR/state" list --all; }
list_libvirt() { timed "list$SCALE_N.libvirt" vsh list --all; }

domblklist_luavirt() {
  local name
  pop_name name 1
  timed "domblklist$SCALE_N.luavirt" lv "$SCALE_DIR/state" domblklist "$name"
}
domblklist_libvirt() {
  local name
  pop_name name 1
  timed "domblklist$SCALE_N.libvirt" vsh domblklist "$name"
}

# Each run defines a new domain, then undefines it (untimed), so the count stays N.
define_luavirt() {
  pop_xml "${PREFIX}new$1" >"$SCALE_DIR/xml/new$1.xml"
  timed "define$SCALE_N.luavirt" lv "$SCALE_DIR/state" define "$SCALE_DIR/xml/new$1.xml"
  lv "$SCALE_DIR/state" undefine "${PREFIX}new$1" >/dev/null
}
define_libvirt() {
  pop_xml "${PREFIX}new$1" >"$SCALE_DIR/xml/new$1.xml"
  timed "define$SCALE_N.libvirt" vsh define "$SCALE_DIR/xml/new$1.xml"
  vsh undefine "${PREFIX}new$1" >/dev/null
}

case_scale() {
  local n
  scale_init
  for n in ${SIZES//,/ }; do
    SCALE_N=$n
    note "(c) list --all, domblklist, define with $(count "$n" domain)"
    populate_luavirt "$n"
    populate_libvirt "$n"
    alternate list_luavirt list_libvirt
    alternate domblklist_luavirt domblklist_libvirt
    alternate define_luavirt define_libvirt
    row "(c) \`list --all\`, $(count "$n" domain) defined" "list$n.luavirt" '`virsh list --all`' "list$n.libvirt"
    row "(c) \`domblklist\` of one of $(count "$n" domain)" "domblklist$n.luavirt" '`virsh domblklist`' \
      "domblklist$n.libvirt"
    row "(c) \`define\` of one more domain, $(count "$n" domain) defined" "define$n.luavirt" '`virsh define`' \
      "define$n.libvirt"
  done
  unpopulate_libvirt
}
