# (d) Block jobs on a running domain, each moving DISK_SIZE (1 GiB) of random data into a
# qcow2 image: blockcopy --wait --pivot, blockpull, active blockcommit --pivot. Each is
# compared with libvirt's same job and with `qemu-img convert -t writeback` of the same data
# into a new qcow2 (the limit: the same bytes read and written, flushed once at the end;
# convert's default cache mode never flushes, which no job on a running domain can afford).
# Random data, so no zero cluster is skipped anywhere.
# shellcheck disable=SC2016 # `...` in single quotes is markdown for the table, not a command

JOB_DIR=
JOB_NAME=

# random.raw (DISK_SIZE of random bytes) and random.qcow2 (the same data in qcow2).
make_random_data() {
  local data=$WORK/data
  [ -e "$data/random.qcow2" ] && return 0
  mkdir -p "$data"
  head -c "$DISK_SIZE" /dev/urandom >"$data/random.raw"
  qemu-img convert -f raw -O qcow2 "$data/random.raw" "$data/random.qcow2"
}

# The limit: the same data into a new qcow2 by qemu-img alone.
convert_limit() {
  local key=$1 out=$JOB_DIR/limit.qcow2
  rm -f "$out"
  timed "$key.limit" qemu-img convert -t writeback -f qcow2 -O qcow2 "$WORK/data/random.qcow2" "$out"
  rm -f "$out"
}

# --- blockcopy: each run copies the disk to a new file, pivots, and drops the old file.

copy_luavirt() {
  local from=$JOB_DIR/luavirt/disk$(($1 - 1)).qcow2
  timed copy.luavirt lv "$JOB_DIR/state" blockcopy "$JOB_NAME" vda "$JOB_DIR/luavirt/disk$1.qcow2" --wait --pivot
  rm -f "$from"
}
copy_libvirt() {
  local from=$JOB_DIR/libvirt/disk$(($1 - 1)).qcow2
  # libvirt 9.0 copies a persistent domain's disk only as a "transient job" (one that a
  # crash of the domain forgets).
  timed copy.libvirt vsh blockcopy "$JOB_NAME" vda "$JOB_DIR/libvirt/disk$1.qcow2" --wait --pivot \
    --transient-job --format qcow2
  rm -f "$from"
}
copy_limit() { convert_limit copy; }

case_blockcopy() {
  JOB_DIR=$WORK/blockcopy JOB_NAME=${PREFIX}blockcopy
  note "(d) blockcopy --wait --pivot of $DISK_SIZE of random data"
  mkdir -p "$JOB_DIR/luavirt" "$JOB_DIR/libvirt"
  cp "$WORK/data/random.qcow2" "$JOB_DIR/luavirt/disk0.qcow2"
  cp "$WORK/data/random.qcow2" "$JOB_DIR/libvirt/disk0.qcow2"
  start_both "$JOB_DIR/state" "$JOB_NAME" "$JOB_DIR" vda:qcow2:@SIDE@/disk0.qcow2
  alternate copy_luavirt copy_libvirt copy_limit
  stop_both "$JOB_DIR/state" "$JOB_NAME"
  rm -rf "$JOB_DIR/luavirt" "$JOB_DIR/libvirt"
  row "(d) \`blockcopy --wait --pivot\`, $DISK_SIZE of random data" copy.luavirt \
    '`virsh blockcopy --wait --pivot --transient-job`' copy.libvirt
  row "(d) \`blockcopy --wait --pivot\`, $DISK_SIZE of random data" copy.luavirt \
    '`qemu-img convert -t writeback` (the limit)' copy.limit
}

# --- blockpull: each run starts the domain on a new empty overlay of the random image and
# pulls all of it into the overlay.

pull_side() {
  local side=$1
  stop_side "$side" "$JOB_DIR/state" "$JOB_NAME"
  rm -f "$JOB_DIR/$side/top.qcow2"
  qemu-img create -q -f qcow2 -b "$WORK/data/random.qcow2" -F qcow2 "$JOB_DIR/$side/top.qcow2"
  start_side "$side" "$JOB_DIR/state" "$JOB_NAME" "$JOB_DIR"
  if [ "$side" = luavirt ]; then
    timed pull.luavirt lv "$JOB_DIR/state" blockpull "$JOB_NAME" vda --wait
  else
    timed pull.libvirt vsh blockpull "$JOB_NAME" vda --wait
  fi
}
pull_luavirt() { pull_side luavirt; }
pull_libvirt() { pull_side libvirt; }
pull_limit() { convert_limit pull; }

case_blockpull() {
  JOB_DIR=$WORK/blockpull JOB_NAME=${PREFIX}blockpull
  note "(d) blockpull of $DISK_SIZE of random data"
  mkdir -p "$JOB_DIR/luavirt" "$JOB_DIR/libvirt"
  # A UUID in the XML: libvirt takes a redefinition without one for a second domain.
  local uuid
  read -r uuid </proc/sys/kernel/random/uuid
  domain_xml --uuid "$uuid" "$JOB_NAME" "vda:qcow2:$JOB_DIR/luavirt/top.qcow2" >"$JOB_DIR/luavirt.xml"
  domain_xml --uuid "$uuid" "$JOB_NAME" "vda:qcow2:$JOB_DIR/libvirt/top.qcow2" >"$JOB_DIR/libvirt.xml"
  alternate pull_luavirt pull_libvirt pull_limit
  stop_both "$JOB_DIR/state" "$JOB_NAME"
  rm -rf "$JOB_DIR/luavirt" "$JOB_DIR/libvirt"
  row "(d) \`blockpull --wait\`, $DISK_SIZE of random data" pull.luavirt '`virsh blockpull --wait`' pull.libvirt
  row "(d) \`blockpull --wait\`, $DISK_SIZE of random data" pull.luavirt \
    '`qemu-img convert -t writeback` (the limit)' pull.limit
}

# --- blockcommit: each run starts the domain on an overlay holding all the random data over
# an empty base, commits the overlay into the base and pivots to it.

commit_side() {
  local side=$1 dir=$JOB_DIR/$1
  stop_side "$side" "$JOB_DIR/state" "$JOB_NAME"
  rm -f "$dir/base.qcow2" "$dir/top.qcow2"
  qemu-img create -q -f qcow2 "$dir/base.qcow2" "$DISK_SIZE"
  qemu-img convert -f raw -O qcow2 -B "$dir/base.qcow2" -F qcow2 "$WORK/data/random.raw" "$dir/top.qcow2"
  start_side "$side" "$JOB_DIR/state" "$JOB_NAME" "$JOB_DIR"
  if [ "$side" = luavirt ]; then
    timed commit.luavirt lv "$JOB_DIR/state" blockcommit "$JOB_NAME" vda --active --pivot --wait
  else
    timed commit.libvirt vsh blockcommit "$JOB_NAME" vda --active --pivot --wait
  fi
}
commit_luavirt() { commit_side luavirt; }
commit_libvirt() { commit_side libvirt; }
commit_limit() { convert_limit commit; }

case_blockcommit() {
  JOB_DIR=$WORK/blockcommit JOB_NAME=${PREFIX}blockcommit
  note "(d) active blockcommit --pivot of $DISK_SIZE of random data"
  mkdir -p "$JOB_DIR/luavirt" "$JOB_DIR/libvirt"
  # A UUID in the XML: libvirt takes a redefinition without one for a second domain.
  local uuid
  read -r uuid </proc/sys/kernel/random/uuid
  domain_xml --uuid "$uuid" "$JOB_NAME" "vda:qcow2:$JOB_DIR/luavirt/top.qcow2" >"$JOB_DIR/luavirt.xml"
  domain_xml --uuid "$uuid" "$JOB_NAME" "vda:qcow2:$JOB_DIR/libvirt/top.qcow2" >"$JOB_DIR/libvirt.xml"
  alternate commit_luavirt commit_libvirt commit_limit
  stop_both "$JOB_DIR/state" "$JOB_NAME"
  rm -rf "$JOB_DIR/luavirt" "$JOB_DIR/libvirt"
  row "(d) \`blockcommit --active --pivot --wait\`, $DISK_SIZE of random data" commit.luavirt \
    '`virsh blockcommit --active --pivot --wait`' commit.libvirt
  row "(d) \`blockcommit --active --pivot --wait\`, $DISK_SIZE of random data" commit.luavirt \
    '`qemu-img convert -t writeback` (the limit)' commit.limit
}

case_blockjobs() {
  make_random_data
  case_blockcopy
  case_blockpull
  case_blockcommit
  rm -rf "$WORK/data"
}
