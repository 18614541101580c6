-- Makes disks under the given folders independent-nonpersistent and keeps them out of the
-- "migrate" set, using the shipped policy. Try it first with --dry-run.
--   luavirt run [--dry-run] examples/lua/scratch_disks.lua /scratch/ [/local/ ...]
local lv = require("luavirt")
local scratch = require("policy.scratch")

local prefixes = { ... }
if #prefixes == 0 then prefixes = nil end
for _, dom in ipairs(lv.connect():domains()) do
  local result = scratch.apply(dom, { prefixes = prefixes })
  for _, c in ipairs(result.modes) do
    print(string.format("%s: %s is now %s", dom:name(), c.disk, c.to))
  end
end
