-- Counts the domains of several hosts at once; a host that cannot be reached is reported and
-- the others are counted all the same. Without arguments: this host.
--   luavirt run examples/lua/fleet_inventory.lua qemu:///session qemu+ssh://root@hostb/session
local lv = require("luavirt")

local uris = { ... }
if #uris == 0 then uris = { lv.connect():uri() } end
local report = lv.connect_all(uris):apply(function(conn)
  local running = 0
  local doms = conn:domains()
  for _, dom in ipairs(doms) do
    if dom:state() == "running" then running = running + 1 end
  end
  return string.format("%d domain(s), %d running", #doms, running)
end)
for _, h in ipairs(report.hosts) do
  print(h.uri .. ": " .. (h.ok and h.result or ("failed: " .. h.error.message)))
end
print(report.summary)
