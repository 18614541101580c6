local retention = require("policy.retention")

local function nightly(dom, day, keep)
  return retention.run(dom, { keep = keep, now = os.time{ year = 2026, month = 11, day = day, hour = 2 } })
end

test("keeps the newest snapshots and deletes the oldest first", function()
  local dom = fixture.domain{ name = "n1", disks = { { target = "vda" }, { target = "vdb", format = "raw" } } }
  for day = 1, 4 do nightly(dom, day, 10) end
  assert_eq(#retention.ours(dom), 4)
  local _, deleted = nightly(dom, 5, 2)
  assert_eq(deleted, { "nightly-20261101-020000", "nightly-20261102-020000", "nightly-20261103-020000" })
  local names = {}
  for i, s in ipairs(retention.ours(dom)) do names[i] = s:name() end
  assert_eq(names, { "nightly-20261104-020000", "nightly-20261105-020000" })
end)

test("snapshots of other names are left alone", function()
  local dom = fixture.domain{ name = "n2", disks = { { target = "vda" } } }
  dom:snapshot{ name = "before-upgrade" }
  nightly(dom, 1, 1)
  nightly(dom, 2, 1)
  local all = {}
  for i, s in ipairs(dom:snapshots()) do all[i] = s:name() end
  assert_eq(all, { "before-upgrade", "nightly-20261102-020000" })
end)

test("the raw disk's external snapshots merge back when pruned", function()
  local dom = fixture.domain{ name = "n3", disks = { { target = "vda", format = "raw" } } }
  local raw = dom:disk("vda").path
  nightly(dom, 1, 1)
  assert_ne(dom:disk("vda").path, raw)
  nightly(dom, 2, 1)
  nightly(dom, 3, 0)
  assert_eq(#dom:snapshots(), 0)
  assert_eq(dom:disk("vda").path, raw)
  assert_eq(dom:disk("vda").format, "raw")
end)
