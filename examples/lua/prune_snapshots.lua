-- Keeps the newest N snapshots of every domain whose names start with a prefix and deletes
-- the others, oldest first (each delete keeps the remaining snapshots' data).
--   luavirt run [--dry-run] examples/lua/prune_snapshots.lua [KEEP] [PREFIX]
local lv = require("luavirt")
local retention = require("policy.retention")
local keep, prefix = ...
keep = tonumber(keep or "7")

for _, dom in ipairs(lv.connect():domains()) do
  for _, gone in ipairs(retention.prune(dom, keep, prefix)) do
    print(string.format("%s: deleted %s", dom:name(), gone))
  end
end
