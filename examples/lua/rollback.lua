-- Reverts a domain to its current snapshot (the one its state descends from), or to the
-- snapshot named.
--   luavirt run examples/lua/rollback.lua DOMAIN [SNAPSHOT]
local lv = require("luavirt")
local name, wanted = ...
assert(name, "usage: rollback.lua DOMAIN [SNAPSHOT]")

local dom = lv.connect():domain(name)
local snap = wanted and dom:find_snapshot(wanted) or dom:current_snapshot()
if not snap then error("domain " .. name .. " has no snapshot to roll back to") end
snap:revert()
print(string.format("%s is back at %s (%s)", name, snap:name(), dom:state()))
