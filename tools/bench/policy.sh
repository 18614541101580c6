# (f) A Lua policy over POLICY_DOMAINS defined domains with 4 disks each, as a dry run and
# applied: wall time and peak memory. The policy is the shipped scripts/scratch_local.lua:
# each domain's scratch disk (vdd) becomes independent-nonpersistent and leaves the
# "migrate" disk set, which the other three join; so an applied run changes every domain.
# libvirt has no counterpart (a virsh loop would be a different program), so there is no
# comparison column.

# --prefix names the population's scratch folder, which is also among the policy's default
# local folders (scratch_local.lua ignores --prefix today: it passes `prefix`, and
# policy.scratch reads `prefixes`).
policy_args() { echo "$REPO/scripts/scratch_local.lua --prefix /scratch/lvbench/"; }

# GNU time runs luavirt itself (it cannot run the shell function lv).
policy_dry_run() {
  local uri
  uri=$(uri "$SCALE_DIR/state") || exit 1
  # shellcheck disable=SC2046 # policy_args' words are separate arguments
  timed_with_memory policy.dry "$LUAVIRT" -c "$uri" run --dry-run $(policy_args)
}

# Each applied run works on a fresh copy of the population (made untimed), since a second
# run over the same domains would find nothing to change. Only the first APPLY_RUNS runs
# apply: over 10,000 domains one takes about 2.5 minutes.
policy_apply() {
  local copy=$WORK/policy-apply uri
  (($1 <= APPLY_RUNS)) || return 0
  rm -rf "$copy"
  cp -a "$SCALE_DIR/state" "$copy"
  uri=$(uri "$copy") || exit 1
  # shellcheck disable=SC2046
  timed_with_memory policy.apply "$LUAVIRT" -c "$uri" run $(policy_args)
  rm -rf "$copy"
}

case_policy() {
  note "(f) Lua policy over $(count "$POLICY_DOMAINS" domain) with 4 disks each"
  scale_init
  populate_luavirt "$POLICY_DOMAINS"
  alternate policy_dry_run policy_apply
  local over
  over="over $(count "$POLICY_DOMAINS" domain) × 4 disks"
  row "(f) Lua policy \`scratch_local.lua\` $over, \`run --dry-run\`" policy.dry '—' -
  row "(f) the same policy applied (\`run\`: changes every domain; $(count "$APPLY_RUNS" run))" \
    policy.apply '—' -
}
