local scratch = require("policy.scratch")

test("local scratch disks become independent-nonpersistent and leave migration", function()
  local dom = fixture.domain{ name = "app", disks = {
    { target = "vda" },
    { target = "vdb", format = "raw", path = fixture.image{ name = "app-scratch.raw", format = "raw" } },
  } }
  -- vdb's image sits in the test's folder: treat that folder as local storage.
  local result = scratch.apply(dom, { prefixes = { fixture.dir .. "/app-scratch" } })
  assert_eq(result.modes, { { disk = "vdb", from = "persistent", to = "independent-nonpersistent" } })
  assert_eq(result.migrate, { added = { "vda" }, removed = {} })
  local disks = dom:disks()
  assert_eq(disks[1].mode, "persistent")
  assert_eq(disks[2].mode, "independent-nonpersistent")
  assert_true(disks[2].transient)
  assert_eq(dom:diskset("migrate"):list(), { "vda" })
end)

test("applying twice changes nothing more", function()
  local dom = fixture.domain{ name = "app2", disks = { { target = "vda" } } }
  scratch.apply(dom)
  local again = scratch.apply(dom)
  assert_eq(again.modes, {})
  assert_eq(again.migrate, { added = {}, removed = {} })
end)

test("a disk that stops being local rejoins migration", function()
  local dom = fixture.domain{ name = "app3", disks = { { target = "vda" } } }
  scratch.apply(dom, { prefixes = { fixture.dir } })
  assert_eq(dom:diskset("migrate"):size(), 0)
  assert_eq(dom:disk("vda").mode, "independent-nonpersistent")
  local result = scratch.apply(dom, { prefixes = { "/nowhere/" } })
  assert_eq(result.migrate.added, { "vda" })
  -- The mode of a disk no rule matches stays as it is.
  assert_eq(dom:disk("vda").mode, "independent-nonpersistent")
end)
