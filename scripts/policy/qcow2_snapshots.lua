--- Policy: snapshots take only qcow2 disks. Keeps the disk set "snapshot" to exactly the
--- writable qcow2 disks, and takes snapshots with that set.
local classify = require("policy.classify")
local sets = require("policy.sets")

local M = {}

--- Name of the set the policy maintains.
M.SET = "snapshot"

--- Makes the set "snapshot" of `dom` hold exactly its writable qcow2 disks.
function M.apply(dom)
  return sets.sync(dom, M.SET, classify.all_of(classify.is_writable, function(d) return classify.is_format(d, "qcow2") end))
end

--- Applies the policy, then takes snapshot `name` of the set's disks (disks only).
function M.snapshot(dom, name, description)
  M.apply(dom)
  return dom:snapshot{ name = name, description = description, disks = dom:diskset(M.SET), disk_only = true }
end

return M
