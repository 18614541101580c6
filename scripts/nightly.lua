--- Nightly snapshots with retention: takes `nightly-<date>` of each domain and keeps the
--- newest N of them (default 7), deleting older ones oldest first.
---
---   luavirt run scripts/nightly.lua [--keep N] [--disk-set NAME] [--disk-only] [DOMAIN...]
local lv = require("luavirt")
local args = require("policy.args")
local retention = require("policy.retention")

local opts, names = args.parse({ ... }, { keep = "number", disk_set = "string", disk_only = "flag", prefix = "string" })
for _, dom in ipairs(args.domains(lv.connect(), names)) do
  local snap, deleted = retention.run(dom, opts)
  print(string.format("%s: took %s", dom:name(), snap:name()))
  for _, d in ipairs(deleted) do print(string.format("%s: deleted %s", dom:name(), d)) end
end
