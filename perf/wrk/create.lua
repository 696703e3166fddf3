-- create: POST /api/users with unique emails (run prefix, thread id, counter).
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

local headers = common.headers({ ["Content-Type"] = "application/json" })

function init(args)
  common.init()
end

function request()
  local n = common.next_counter()
  local body = string.format('{"name": "Bench User %d", "email": "%s"}', n, common.email(n))
  return wrk.format("POST", "/api/users", headers, body)
end
