-- update: PATCH /api/users/{id} (merge patch of the name) of random ids.
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

local headers = common.headers({ ["Content-Type"] = "application/merge-patch+json" })

function init(args)
  common.init()
end

function request()
  local body = string.format('{"name": "Patched %s %d"}', common.run_prefix, common.next_counter())
  return wrk.format("PATCH", "/api/users/" .. common.random_id(), headers, body)
end
