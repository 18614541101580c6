local policy = require("policy.qcow2_snapshots")

local function mixed(name)
  return fixture.domain{ name = name, disks = {
    { target = "vda", format = "qcow2" },
    { target = "vdb", format = "raw" },
    { target = "vdc", format = "qcow2" },
  } }
end

test("the snapshot set holds exactly the qcow2 disks", function()
  local dom = mixed("q1")
  assert_eq(policy.apply(dom), { added = { "vda", "vdc" }, removed = {} })
  assert_eq(dom:diskset("snapshot"):list(), { "vda", "vdc" })
end)

test("a snapshot takes the qcow2 disks and leaves the raw one alone", function()
  local dom = mixed("q2")
  local plan = dom:snapshot_plan{ name = "s1", disks = (function() policy.apply(dom); return dom:diskset("snapshot") end)() }
  assert_eq(plan.disks[1].snapshot, "internal")
  assert_eq(plan.disks[2].snapshot, "no")
  local snap = policy.snapshot(dom, "s1", "policy test")
  local info = snap:info()
  assert_eq(info.disks, { vda = "internal", vdb = "no", vdc = "internal" })
  assert_eq(info.description, "policy test")
  assert_true(snap:is_current())
end)
