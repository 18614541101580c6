--- Command-line arguments of policy scripts: `--name value`, `--flag`, and the rest.
local M = {}

--- Parses `args` against `spec` (`{ keep = "number", prefix = "list", dry = "flag" }`).
--- Returns the options and the positional arguments; an unknown option is an error.
function M.parse(args, spec)
  local opts, rest = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w_-]+)$")
    if name then
      local key = name:gsub("-", "_")
      local kind = spec[key]
      if not kind then error("unknown option --" .. name, 2) end
      if kind == "flag" then
        opts[key] = true
      else
        local v = args[i + 1]
        if v == nil then error("option --" .. name .. " needs a value", 2) end
        if kind == "number" then
          v = tonumber(v) or error("option --" .. name .. " takes a number, not " .. v, 2)
        end
        if kind == "list" then
          opts[key] = opts[key] or {}
          table.insert(opts[key], v)
        else
          opts[key] = v
        end
        i = i + 1
      end
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

--- The domains a policy works on: those named, or every domain of `conn`.
function M.domains(conn, names)
  if #names == 0 then return conn:domains() end
  local out = {}
  for i, n in ipairs(names) do out[i] = conn:domain(n) end
  return out
end

return M
