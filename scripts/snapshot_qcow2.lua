--- Keeps each domain's disk set "snapshot" to its qcow2 disks; with --take NAME, also takes
--- a disk-only snapshot of them.
---
---   luavirt run scripts/snapshot_qcow2.lua [--take NAME] [DOMAIN...]
local lv = require("luavirt")
local args = require("policy.args")
local policy = require("policy.qcow2_snapshots")

local opts, names = args.parse({ ... }, { take = "string" })
for _, dom in ipairs(args.domains(lv.connect(), names)) do
  if opts.take then
    print(string.format("%s: snapshot %s of [%s]", dom:name(), policy.snapshot(dom, opts.take):name(), table.concat(dom:diskset(policy.SET):list(), ",")))
  else
    local r = policy.apply(dom)
    print(string.format("%s: snapshot set +[%s] -[%s]", dom:name(), table.concat(r.added, ","), table.concat(r.removed, ",")))
  end
end
