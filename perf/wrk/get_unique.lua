-- get_unique: GET /api/users/{id} where no id is asked twice, so that every
-- request is a cache miss for the service (on a freshly started service).
-- Ids follow a fixed permutation of 1..PERF_USERS (common.rank_to_id). A run
-- owns the PERF_ID_SPAN positions from PERF_ID_OFFSET on (the benchmark gives
-- each round its own span); wrk thread t of PERF_THREADS walks its own
-- block of that span, so no two threads or rounds ask the same id while a
-- thread sends fewer than PERF_ID_SPAN / PERF_THREADS requests (past that
-- it wraps around its block).
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

local function env_integer(name, default)
  return math.floor(tonumber(os.getenv(name) or "") or default)
end

local offset = env_integer("PERF_ID_OFFSET", 0)
local span = math.max(1, env_integer("PERF_ID_SPAN", common.users))
local block = math.max(1, math.floor(span / math.max(1, env_integer("PERF_THREADS", 1))))

function init(args)
  common.init()
end

function request()
  local k = (common.next_counter() - 1) % block
  local position = offset + (id - 1) * block + k
  return wrk.format("GET", "/api/users/" .. common.rank_to_id(position % common.users + 1))
end
