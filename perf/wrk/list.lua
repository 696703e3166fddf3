-- list: GET /api/users?limit=50&after=<cursor of a random id>.
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

function init(args)
  common.init()
end

function request()
  local after = math.random(0, math.max(common.users - 50, 0))
  return wrk.format("GET", "/api/users?limit=50&after=" .. common.cursor(after))
end
