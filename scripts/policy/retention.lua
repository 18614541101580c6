--- Policy: nightly snapshots with retention. Takes a snapshot named `<prefix>-<date>`, keeps
--- the newest `keep` snapshots of that prefix, and deletes the older ones oldest first. Each
--- delete keeps every other snapshot's data (luavirt merges images as needed), so deleting
--- in age order is safe whatever the tree's shape.
local M = {}

M.PREFIX = "nightly"

--- The snapshots of `dom` made by this policy, oldest first.
function M.ours(dom, prefix)
  prefix = prefix or M.PREFIX
  local out = {}
  for _, snap in ipairs(dom:snapshots()) do
    if snap:name():sub(1, #prefix + 1) == prefix .. "-" then
      out[#out + 1] = { snap = snap, time = snap:info().creation_time or 0 }
    end
  end
  -- Creation order breaks ties within a second.
  for i, o in ipairs(out) do o.order = i end
  table.sort(out, function(a, b)
    if a.time ~= b.time then return a.time < b.time end
    return a.order < b.order
  end)
  local snaps = {}
  for i, o in ipairs(out) do snaps[i] = o.snap end
  return snaps
end

--- Deletes the oldest of this policy's snapshots until `keep` remain. Returns the names deleted.
function M.prune(dom, keep, prefix)
  local ours = M.ours(dom, prefix)
  local deleted = {}
  for i = 1, #ours - keep do
    deleted[#deleted + 1] = ours[i]:name()
    ours[i]:delete()
  end
  return deleted
end

--- Takes tonight's snapshot, then prunes. `opts`: `keep` (default 7), `prefix`, `disk_set`
--- (default: the disks' own defaults), `now` (a time, for the name), `disk_only`.
function M.run(dom, opts)
  opts = opts or {}
  local prefix = opts.prefix or M.PREFIX
  local name = prefix .. "-" .. os.date("!%Y%m%d-%H%M%S", opts.now or os.time())
  local snapshot = { name = name, description = "taken by the nightly retention policy", disk_only = opts.disk_only }
  if opts.disk_set then snapshot.disk_set = opts.disk_set end
  local snap = dom:snapshot(snapshot)
  return snap, M.prune(dom, opts.keep or 7, prefix)
end

return M
