-- Site policy for a VMware datastore: scratch disks stay independent-nonpersistent, whoever
-- edits the .vmx; snapshot names follow the site's rule. Copy to /etc/luavirt/policies/ and
-- set the datastore below (or LUAVIRT_SCRATCH_URI in the service's environment).
local lv = require("luavirt")
local URI = os.getenv("LUAVIRT_SCRATCH_URI") or "vmx:///srv/datastore1"

-- A scratch disk: its image's name says so.
local function scratch(disk)
  return disk.path ~= nil and disk.path:match("scratch") ~= nil
end

lv.on("domain:changed", function(ev)
  if ev.kind == "undefined" then return end
  for _, disk in ipairs(ev.domain:disks()) do
    if scratch(disk) and disk.mode ~= "independent-nonpersistent" then
      disk:set_mode("independent-nonpersistent")
      lv.log(ev.name .. ": scratch disk " .. disk.target .. " set back to independent-nonpersistent")
    end
  end
end, { uri = URI })

lv.on("snapshot:before", function(ev)
  local name = ev.request.name
  if name and not name:match("^[%w][%w._-]*$") then
    ev:veto("snapshot names are letters, digits, '.', '_' and '-' (got '" .. name .. "')")
    return
  end
  ev.request.description = ev.request.description or ("taken on " .. os.date("!%Y-%m-%d"))
end)
