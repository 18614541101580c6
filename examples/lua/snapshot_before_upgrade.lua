-- Shows what a snapshot would take, then takes it: qcow2 disks internally, the others as
-- overlays, independent and transient disks left out.
--   luavirt run examples/lua/snapshot_before_upgrade.lua DOMAIN [NAME]
local lv = require("luavirt")
local name, snap = ...
assert(name, "usage: snapshot_before_upgrade.lua DOMAIN [NAME]")
snap = snap or ("before-upgrade-" .. os.date("!%Y%m%d-%H%M%S"))

local dom = lv.connect():domain(name)
local plan = dom:snapshot_plan{ name = snap }
for _, d in ipairs(plan.disks) do
  print(string.format("%s: %s (%s)", d.target, d.snapshot, d.reason))
end
dom:snapshot{ name = snap, description = "taken before an upgrade" }
print("took " .. snap)
