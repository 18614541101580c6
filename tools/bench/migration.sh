# (e) Live migration. luavirt has no migration yet (issue 10), so nothing is measured; the
# row says so.
#
# >>> PLACE FOR THE MIGRATION CASE (issue 10 / issue 16) <<<
# Once `luavirt migrate` exists, measure here, alternating as the other cases do:
#   - a running domain with 1 copied DISK_SIZE disk of random data (make_random_data) and 2
#     shared disks; luavirt migrates it to a second state folder (a second "host" on this
#     machine: qemu:///session?state=DIR2), copying only the one disk;
#   - time, and bytes moved (QEMU's `query-migrate` ram.transferred plus the disk mirror's
#     job length), against the copied disk's allocated bytes (`qemu-img info --output=json`,
#     actual-size): the target is <= 1.05 x;
#   - the limit: `qemu-img convert -t writeback` of that disk (convert_limit);
#   - libvirt: `virsh migrate --live --copy-storage-all --migrate-disks vda` between two
#     libvirt connections, where libvirt can do that on one machine; else say why not.
case_migration() {
  note "(e) live migration: not measured: luavirt has no migration yet (issue 10)"
  row_note "(e) live migration, 1 copied $DISK_SIZE disk + 2 shared disks" \
    "not measured: luavirt has no migration yet (issue 10)"
}
