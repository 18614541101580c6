-- Moves a running domain's disk to new storage without stopping it: copies the disk,
-- showing progress, and switches the domain to the copy.
--   luavirt run examples/lua/move_disk.lua DOMAIN DISK /new/storage/disk.qcow2
local lv = require("luavirt")
local name, disk, dest = ...
assert(dest, "usage: move_disk.lua DOMAIN DISK DEST")

local dom = lv.connect():domain(name)
local job = dom:block_copy{ disk = disk, dest = dest }
job:wait{
  pivot = true,
  on_progress = function(done, total, stage)
    if total > 0 then print(string.format("%s %d%%", stage, done * 100 // total)) end
  end,
}
print(string.format("%s's %s now lives in %s", name, disk, dom:disk(disk).path))
