--- Policy: local scratch disks are independent-nonpersistent (their changes vanish when the
--- domain stops, snapshots leave them out) and stay out of migration; every other writable
--- disk is persistent and migrates.
local classify = require("policy.classify")
local modes = require("policy.modes")
local sets = require("policy.sets")

local M = {}

--- Applies the policy to `dom`. `opts.prefixes` overrides which folders are local, and
--- `opts.set` the migration set's name (default "migrate"). Returns what changed.
function M.apply(dom, opts)
  opts = opts or {}
  local is_scratch = function(d) return classify.is_writable(d) and classify.is_local(d, opts.prefixes) end
  local changes = modes.apply(dom, {
    { match = is_scratch, mode = modes.INDEPENDENT_NONPERSISTENT },
  })
  local moved = sets.sync(dom, opts.set or "migrate", function(d)
    return classify.is_writable(d) and not is_scratch(d)
  end)
  return { modes = changes, migrate = moved }
end

return M
