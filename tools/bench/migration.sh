# (e) Live migration of a running domain with one copied DISK_SIZE disk of random data and two
# shared disks, between two luavirt hosts on this machine (two state folders): luavirt copies
# only the one disk. Compared with `qemu-img convert -t writeback` of the same data (the limit:
# the same bytes read and written once), and with libvirt's `virsh migrate --live
# --copy-storage-all --migrate-disks vda`, where libvirt can migrate on one machine (it says
# whether it can; its refusal is shown). The bytes moved come from luavirt's report: the
# copied disk's image at the destination (its data) and the memory sent; they are set against
# the copied disk's allocated size.
# shellcheck disable=SC2016 # `...` in single quotes is markdown for the table, not a command

MIG_DIR=
MIG_NAME=

# One run: the domain starts at A on a fresh copy of the data, migrates to B, and B's copy
# goes again (the source keeps its definition: it starts there again next run).
mig_luavirt() {
  local a=$MIG_DIR/a b=$MIG_DIR/b to blocks size
  to=$(uri "$b") || exit 1
  lv "$a" start "$MIG_NAME" >/dev/null
  timed migrate.luavirt lv "$a" migrate "$MIG_NAME" "$to" --live --migrate-disks vda
  # The data moved: what the copy's image holds at the destination.
  if read -r blocks size < <(stat -c '%b %B' "$b/images/$MIG_NAME/vda.qcow2" 2>/dev/null); then
    echo $((blocks * size)) >>"$WORK/results/migrate.bytes"
  fi
  [ "$(lv "$b" domstate "$MIG_NAME" 2>/dev/null)" = running ] || note "the migrated domain does not run at B"
  # Without --persistent the domain is gone at B once it stops; its copy goes too.
  lv "$b" destroy "$MIG_NAME" >/dev/null 2>&1 || true
  rm -rf "$b/images"
}

mig_limit() {
  local out=$MIG_DIR/limit.qcow2
  rm -f "$out"
  timed migrate.limit qemu-img convert -t writeback -f qcow2 -O qcow2 "$WORK/data/random.qcow2" "$out"
  rm -f "$out"
}

case_migration() {
  MIG_DIR=$WORK/migration MIG_NAME=${PREFIX}migrate
  note "(e) live migration: 1 copied disk of $DISK_SIZE of random data + 2 shared disks"
  make_random_data
  mkdir -p "$MIG_DIR/a" "$MIG_DIR/b" "$MIG_DIR/img"
  cp "$WORK/data/random.qcow2" "$MIG_DIR/img/vda.qcow2"
  qemu-img create -q -f raw "$MIG_DIR/img/vdb.raw" 64M
  qemu-img create -q -f qcow2 "$MIG_DIR/img/vdc.qcow2" 64M
  domain_xml "$MIG_NAME" "vda:qcow2:$MIG_DIR/img/vda.qcow2" "vdb:raw:$MIG_DIR/img/vdb.raw" \
    "vdc:qcow2:$MIG_DIR/img/vdc.qcow2" >"$MIG_DIR/d.xml"
  lv "$MIG_DIR/a" define "$MIG_DIR/d.xml" >/dev/null
  alternate mig_luavirt mig_limit
  lv "$MIG_DIR/a" destroy "$MIG_NAME" >/dev/null 2>&1 || true
  row "(e) live \`migrate --migrate-disks vda\`: 1 copied $DISK_SIZE disk + 2 shared" migrate.luavirt \
    '`qemu-img convert -t writeback` of the disk (the limit)' migrate.limit
  local allocated moved
  allocated=$(qemu-img info --output=json "$MIG_DIR/img/vda.qcow2" | sed -n 's/.*"actual-size": \([0-9]*\).*/\1/p')
  moved=$(sort -n "$WORK/results/migrate.bytes" 2>/dev/null | tail -n 1)
  if [ -n "$allocated" ] && [ -n "$moved" ]; then
    row_note "(e) bytes moved for the copied disk (its image at the destination)" \
      "$(awk -v m="$moved" -v a="$allocated" 'BEGIN { printf "%.0f MiB of %.0f MiB allocated: %.3f×", m / 1048576, a / 1048576, m / a }')"
  fi
  # libvirt: the same request between two connections of this one host.
  local xml=$MIG_DIR/libvirt.xml
  cp "$MIG_DIR/img/vda.qcow2" "$MIG_DIR/img/vda-libvirt.qcow2"
  domain_xml "${MIG_NAME}-lv" "vda:qcow2:$MIG_DIR/img/vda-libvirt.qcow2" "vdb:raw:$MIG_DIR/img/vdb.raw" \
    "vdc:qcow2:$MIG_DIR/img/vdc.qcow2" >"$xml"
  vsh define "$xml" >/dev/null && vsh start "${MIG_NAME}-lv" >/dev/null
  # --unsafe: past its cache-mode check to what stops it on one machine.
  refused migrate.libvirt vsh migrate --live --copy-storage-all --migrate-disks vda --unsafe "${MIG_NAME}-lv" qemu:///system
  vsh destroy "${MIG_NAME}-lv" >/dev/null 2>&1 || true
  vsh undefine "${MIG_NAME}-lv" >/dev/null 2>&1 || true
  row "(e) live migration with a copied disk, on one machine" migrate.luavirt \
    '`virsh migrate --live --copy-storage-all --migrate-disks vda --unsafe`' migrate.libvirt
}
