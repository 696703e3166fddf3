-- get_unique: GET /api/users/{id} where no id is asked twice, so that every
-- request is a cache miss for the service (on a freshly started service).
-- Ids follow a fixed permutation of 1..PERF_USERS (common.rank_to_id), from
-- position PERF_ID_OFFSET on (the benchmark moves it past every id already
-- asked in earlier rounds); wrk thread t of PERF_THREADS takes positions
-- t, t + PERF_THREADS, ... After PERF_USERS requests the walk wraps around.
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

local offset = math.floor(tonumber(os.getenv("PERF_ID_OFFSET") or "") or 0)
local stride = math.max(1, math.floor(tonumber(os.getenv("PERF_THREADS") or "") or 1))

function init(args)
  common.init()
end

function request()
  local position = offset + (id - 1) + stride * (common.next_counter() - 1)
  return wrk.format("GET", "/api/users/" .. common.rank_to_id(position % common.users + 1))
end
