# Snapshot cases: (a) a live external disk-only snapshot of 2 of 4 qcow2 disks, (b) luavirt's
# default snapshot of a qcow2 + raw domain (libvirt refuses it), (g) a live snapshot at
# backing-chain depths. Each side has its own running domain and images; a run takes snapshot
# s<run>. In (a) and (b) the chain under the snapshotted disks grows by one image per run on
# both sides; (g) puts the domain back on its chain before each run.
# shellcheck disable=SC2016 # `...` in single quotes is markdown for the table, not a command

# The case being run, for the side functions (alternate passes them only the run number).
SNAP_DIR=
SNAP_NAME=

# Makes the same empty images for both sides: DIR/luavirt/NAME and DIR/libvirt/NAME.
# Each IMAGE is NAME:FORMAT.
make_images() {
  local dir=$1 size=$2 side image
  shift 2
  for side in luavirt libvirt; do
    mkdir -p "$dir/$side"
    for image in "$@"; do
      qemu-img create -q -f "${image#*:}" "$dir/$side/${image%%:*}" "$size"
    done
  done
}

# The --diskspec options of case (a): vda and vdb into new overlays in SIDE_DIR, vdc and vdd
# left out.
two_of_four() {
  local side_dir=$1 run=$2
  echo "--diskspec vda,snapshot=external,file=$side_dir/vda.s$run" \
    "--diskspec vdb,snapshot=external,file=$side_dir/vdb.s$run" \
    "--diskspec vdc,snapshot=no --diskspec vdd,snapshot=no"
}

# (a)
live_two_luavirt() {
  # shellcheck disable=SC2046 # two_of_four's words are separate options
  timed live2of4.luavirt lv "$SNAP_DIR/state" snapshot-create-as "$SNAP_NAME" "s$1" --disk-only \
    $(two_of_four "$SNAP_DIR/luavirt" "$1")
}
live_two_libvirt() {
  # shellcheck disable=SC2046
  timed live2of4.libvirt vsh snapshot-create-as "$SNAP_NAME" "s$1" --disk-only \
    $(two_of_four "$SNAP_DIR/libvirt" "$1")
}

case_live_snapshot() {
  SNAP_DIR=$WORK/live-2-of-4 SNAP_NAME=${PREFIX}two-of-four
  note "(a) live external disk-only snapshot of 2 of 4 qcow2 disks"
  make_images "$SNAP_DIR" 64M vda.qcow2:qcow2 vdb.qcow2:qcow2 vdc.qcow2:qcow2 vdd.qcow2:qcow2
  start_both "$SNAP_DIR/state" "$SNAP_NAME" "$SNAP_DIR" \
    vda:qcow2:@SIDE@/vda.qcow2 vdb:qcow2:@SIDE@/vdb.qcow2 vdc:qcow2:@SIDE@/vdc.qcow2 vdd:qcow2:@SIDE@/vdd.qcow2
  alternate live_two_luavirt live_two_libvirt
  stop_both "$SNAP_DIR/state" "$SNAP_NAME"
  row "(a) live external disk-only snapshot, 2 of 4 qcow2 disks, same \`--diskspec\`s" live2of4.luavirt \
    '`virsh snapshot-create-as --disk-only`' live2of4.libvirt
}

# (b) luavirt's default: memory and vda internal (qcow2), the raw vdb into an overlay.
mixed_luavirt() {
  timed mixed.luavirt lv "$SNAP_DIR/state" snapshot-create-as "$SNAP_NAME" "s$1"
}

case_mixed_snapshot() {
  SNAP_DIR=$WORK/qcow2-raw SNAP_NAME=${PREFIX}qcow2-raw
  note "(b) default snapshot of a running qcow2 + raw domain"
  make_images "$SNAP_DIR" 64M vda.qcow2:qcow2 vdb.raw:raw
  start_both "$SNAP_DIR/state" "$SNAP_NAME" "$SNAP_DIR" vda:qcow2:@SIDE@/vda.qcow2 vdb:raw:@SIDE@/vdb.raw
  alternate mixed_luavirt
  # libvirt 9.0 takes no internal snapshot of a raw disk and mixes no internal with external.
  refused mixed.libvirt vsh snapshot-create-as "$SNAP_NAME" s1
  stop_both "$SNAP_DIR/state" "$SNAP_NAME"
  row "(b) default snapshot of a running qcow2 + raw domain (luavirt: memory and vda internal, vdb external)" \
    mixed.luavirt '`virsh snapshot-create-as` (same request)' mixed.libvirt
}

# (g) A chain of DEPTH images in DIR: img1 (no backing file) <- img2 <- ... <- imgDEPTH.
make_chain() {
  local dir=$1 depth=$2 k
  mkdir -p "$dir"
  qemu-img create -q -f qcow2 "$dir/img1.qcow2" 64M
  for ((k = 2; k <= depth; k++)); do
    qemu-img create -q -f qcow2 -b "$dir/img$((k - 1)).qcow2" -F qcow2 "$dir/img$k.qcow2"
  done
}

# Each run snapshots the chain's top image: first the domain is put back on it (stopped,
# redefined, started; untimed), so every run measures DEPTH images below the new overlay.
chain_luavirt() {
  stop_side luavirt "$SNAP_DIR/state" "$SNAP_NAME"
  start_side luavirt "$SNAP_DIR/state" "$SNAP_NAME" "$SNAP_DIR"
  timed "chain$SNAP_DEPTH.luavirt" lv "$SNAP_DIR/state" snapshot-create-as "$SNAP_NAME" "s$1" --disk-only \
    --diskspec "vda,snapshot=external,file=$SNAP_DIR/luavirt/s$1.qcow2"
}
chain_libvirt() {
  stop_side libvirt "$SNAP_DIR/state" "$SNAP_NAME"
  start_side libvirt "$SNAP_DIR/state" "$SNAP_NAME" "$SNAP_DIR"
  timed "chain$SNAP_DEPTH.libvirt" vsh snapshot-create-as "$SNAP_NAME" "s$1" --disk-only \
    --diskspec "vda,snapshot=external,file=$SNAP_DIR/libvirt/s$1.qcow2"
}

case_chain_depth() {
  local depth
  for depth in ${DEPTHS//,/ }; do
    SNAP_DIR=$WORK/chain-$depth SNAP_NAME=${PREFIX}chain-$depth SNAP_DEPTH=$depth
    note "(g) live snapshot of a disk with a backing chain of $(count "$depth" image)"
    make_chain "$SNAP_DIR/luavirt" "$depth"
    make_chain "$SNAP_DIR/libvirt" "$depth"
    start_both "$SNAP_DIR/state" "$SNAP_NAME" "$SNAP_DIR" "vda:qcow2:@SIDE@/img$depth.qcow2"
    alternate chain_luavirt chain_libvirt
    stop_both "$SNAP_DIR/state" "$SNAP_NAME"
    row "(g) live external disk-only snapshot, 1 disk on a chain of $(count "$depth" image)" \
      "chain$depth.luavirt" '`virsh snapshot-create-as --disk-only`' "chain$depth.libvirt"
  done
}
