--- Disk modes by their ESX names, applied by rules. luavirt stores them as libvirt reads
--- them (`snapshot=` and `<transient/>`), on every driver.
local M = {}

M.PERSISTENT = "persistent"
M.INDEPENDENT_PERSISTENT = "independent-persistent"
M.INDEPENDENT_NONPERSISTENT = "independent-nonpersistent"

--- Applies the first matching rule to each disk of `dom`.
--- `rules` is a list of `{ match = predicate, mode = "..." }`; disks no rule matches keep
--- their mode. Returns the changes made: a list of `{ disk = target, from = m, to = m }`.
function M.apply(dom, rules)
  local changes = {}
  for _, disk in ipairs(dom:disks()) do
    for _, rule in ipairs(rules) do
      if rule.match(disk) then
        if disk.mode ~= rule.mode then
          local from = disk.mode
          disk:set_mode(rule.mode)
          changes[#changes + 1] = { disk = disk.target, from = from, to = rule.mode }
        end
        break
      end
    end
  end
  return changes
end

return M
