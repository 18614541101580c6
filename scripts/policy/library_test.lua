local classify = require("policy.classify")
local args = require("policy.args")

local function disk(t)
  return setmetatable(t, nil)
end

test("classify: local, network, format, bus, writable", function()
  local d = disk{ target = "vda", path = "/scratch/a.raw", format = "raw", bus = "virtio", device = "disk", type = "file", readonly = false }
  assert_true(classify.is_local(d))
  assert_false(classify.is_local(d, { "/srv/" }))
  assert_true(classify.is_format(d, "qcow2", "raw"))
  assert_false(classify.on_bus(d, "scsi"))
  assert_true(classify.is_writable(d))
  assert_false(classify.is_network(d))
  local cd = disk{ target = "hdc", device = "cdrom", readonly = true, type = "file" }
  assert_false(classify.is_writable(cd))
  assert_false(classify.is_local(cd))
end)

test("classify: predicates combine", function()
  local a = disk{ target = "vda", format = "qcow2", bus = "virtio" }
  local b = disk{ target = "sda", format = "raw", bus = "scsi" }
  local qcow2 = function(d) return classify.is_format(d, "qcow2") end
  local scsi = function(d) return classify.on_bus(d, "scsi") end
  assert_eq(classify.targets(classify.select({ a, b }, classify.any_of(qcow2, scsi))), { "vda", "sda" })
  assert_eq(classify.targets(classify.select({ a, b }, classify.all_of(qcow2, scsi))), {})
  assert_eq(classify.targets(classify.select({ a, b }, classify.none_of(qcow2))), { "sda" })
end)

test("args: options, flags, lists and the rest", function()
  local opts, rest = args.parse({ "--keep", "3", "--prefix", "/a/", "--prefix", "/b/", "--disk-only", "web1" },
    { keep = "number", prefix = "list", disk_only = "flag" })
  assert_eq(opts, { keep = 3, prefix = { "/a/", "/b/" }, disk_only = true })
  assert_eq(rest, { "web1" })
  assert_error(function() args.parse({ "--kep", "3" }, { keep = "number" }) end, "unknown option %-%-kep")
  assert_error(function() args.parse({ "--keep", "x" }, { keep = "number" }) end, "takes a number")
end)

test("modes: rules apply the first match and report changes", function()
  local modes = require("policy.modes")
  local dom = fixture.domain{ name = "m1", disks = { { target = "vda" }, { target = "vdb", format = "raw" } } }
  local changes = modes.apply(dom, {
    { match = function(d) return d.format == "raw" end, mode = modes.INDEPENDENT_PERSISTENT },
    { match = function() return true end, mode = modes.PERSISTENT },
  })
  assert_eq(changes, { { disk = "vdb", from = "persistent", to = "independent-persistent" } })
  assert_eq(dom:disk("vdb").snapshot, "no")
  assert_false(dom:disk("vdb").transient)
end)
