-- get_cached: GET /api/users/{id} over a small hot set (PERF_HOT_COUNT ids),
-- so that the service answers from its per-process cache; the reference
-- reads the same ids from PostgreSQL (hot in shared buffers) every time.
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

function init(args)
  common.init()
end

function request()
  local id = common.hot_id(math.random(0, common.hot_count - 1))
  return wrk.format("GET", "/api/users/" .. id)
end
