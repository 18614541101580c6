--- Classifying disks by what they are: where they live, their format, their bus.
--- Every function takes a disk table from `dom:disks()`; predicates combine with
--- `all_of`, `any_of` and `none_of`.
local M = {}

--- Folders whose disks count as local scratch storage unless a policy says otherwise.
M.local_prefixes = { "/local/", "/scratch/", "/var/tmp/", "/tmp/" }

--- Whether the disk's image is a file under one of `prefixes` (default: `M.local_prefixes`).
function M.is_local(disk, prefixes)
  local path = disk.path
  if not path then return false end
  for _, prefix in ipairs(prefixes or M.local_prefixes) do
    if path:sub(1, #prefix) == prefix then return true end
  end
  return false
end

--- Whether the disk is served over the network (nbd, iscsi, rbd, ...).
function M.is_network(disk)
  return disk.type == "network"
end

--- Whether the disk's image format is one of the given ones.
function M.is_format(disk, ...)
  for _, f in ipairs({ ... }) do
    if disk.format == f then return true end
  end
  return false
end

--- Whether the disk sits on one of the given buses (virtio, scsi, sata, ide, ...).
function M.on_bus(disk, ...)
  for _, b in ipairs({ ... }) do
    if disk.bus == b then return true end
  end
  return false
end

--- Whether the disk holds data a guest writes: a disk, not a CD-ROM, not read-only.
function M.is_writable(disk)
  return disk.device == "disk" and not disk.readonly and disk.path ~= nil
end

--- A predicate true when every given predicate is.
function M.all_of(...)
  local preds = { ... }
  return function(disk)
    for _, p in ipairs(preds) do
      if not p(disk) then return false end
    end
    return true
  end
end

--- A predicate true when any given predicate is.
function M.any_of(...)
  local preds = { ... }
  return function(disk)
    for _, p in ipairs(preds) do
      if p(disk) then return true end
    end
    return false
  end
end

--- A predicate true when no given predicate is.
function M.none_of(...)
  local any = M.any_of(...)
  return function(disk) return not any(disk) end
end

--- The disks for which `pred` holds, in the domain's order.
function M.select(disks, pred)
  local out = {}
  for _, d in ipairs(disks) do
    if pred(d) then out[#out + 1] = d end
  end
  return out
end

--- The targets of a list of disks.
function M.targets(disks)
  local out = {}
  for i, d in ipairs(disks) do out[i] = d.target end
  return out
end

return M
