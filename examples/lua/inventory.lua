-- Lists every domain with its state, disks, modes and disk sets.
--   luavirt run examples/lua/inventory.lua
local lv = require("luavirt")

for _, dom in ipairs(lv.connect():domains()) do
  print(string.format("%s (%s)", dom:name(), dom:state()))
  for _, d in ipairs(dom:disks()) do
    print(string.format("  %-6s %-7s %-26s %s", d.target, d.format, d.mode, d.source))
  end
  for _, set in ipairs(dom:disksets()) do
    print(string.format("  set %-10s %s", set, table.concat(dom:diskset(set):list(), " ")))
  end
end
