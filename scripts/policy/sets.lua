--- Choosing disk sets: make a named set hold exactly the disks a predicate picks.
local M = {}

--- Makes disk set `name` of `dom` exactly the disks for which `pred` holds.
--- Returns `{ added = {...}, removed = {...} }` (targets).
function M.sync(dom, name, pred)
  local set = dom:diskset(name)
  local result = { added = {}, removed = {} }
  for _, disk in ipairs(dom:disks()) do
    local want = pred(disk)
    if want and set:add(disk.target) then
      result.added[#result.added + 1] = disk.target
    elseif not want and set:remove(disk.target) then
      result.removed[#result.removed + 1] = disk.target
    end
  end
  return result
end

return M
