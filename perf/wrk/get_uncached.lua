-- get_uncached: GET /api/users/{id} of uniformly random ids over all seeded
-- users; with 100k ids and a cache per worker process, most reads miss.
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

function init(args)
  common.init()
end

function request()
  return wrk.format("GET", "/api/users/" .. common.random_id())
end
