--- Makes local scratch disks independent-nonpersistent and keeps them out of migration;
--- every other writable disk migrates.
---
---   luavirt run scripts/scratch_local.lua [--prefix /local/]... [--set migrate] [DOMAIN...]
local lv = require("luavirt")
local args = require("policy.args")
local scratch = require("policy.scratch")

local opts, names = args.parse({ ... }, { prefix = "list", set = "string" })
for _, dom in ipairs(args.domains(lv.connect(), names)) do
  -- `--prefix` (repeatable) names the local folders; the policy calls them prefixes.
  local r = scratch.apply(dom, { prefixes = opts.prefix, set = opts.set })
  for _, c in ipairs(r.modes) do print(string.format("%s: disk %s %s -> %s", dom:name(), c.disk, c.from, c.to)) end
  if #r.migrate.added + #r.migrate.removed > 0 then
    print(string.format("%s: migrate +[%s] -[%s]", dom:name(), table.concat(r.migrate.added, ","), table.concat(r.migrate.removed, ",")))
  end
end
