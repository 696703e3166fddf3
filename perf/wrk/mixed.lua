-- mixed: 80% GET of Zipf-skewed ids, 8% list, 5% create, 5% PATCH with
-- If-Match: * (Zipf-skewed ids), 2% DELETE of an id this thread created
-- (from the Location of its 201s), or a random id when it has none.
-- 404 and 412 are expected (deleted users) and counted as 4xx.
-- Make common.lua (next to this script) requirable, whatever the cwd.
local here = debug.getinfo(1, "S").source:match("^@?(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("common")
common.install()

local json_headers = common.headers({ ["Content-Type"] = "application/json" })
local patch_headers = common.headers({
  ["Content-Type"] = "application/merge-patch+json",
  ["If-Match"] = "*",
})
local next_zipf_rank
local created = {}

function init(args)
  common.init()
  next_zipf_rank = common.zipf_sampler(common.users, common.zipf_s)
end

local function zipf_id()
  return common.rank_to_id(next_zipf_rank())
end

function request()
  local draw = math.random()
  if draw < 0.80 then
    return wrk.format("GET", "/api/users/" .. zipf_id())
  elseif draw < 0.88 then
    local after = math.random(0, math.max(common.users - 50, 0))
    return wrk.format("GET", "/api/users?limit=50&after=" .. common.cursor(after))
  elseif draw < 0.93 then
    local n = common.next_counter()
    local body = string.format('{"name": "Mixed User %d", "email": "%s"}', n, common.email(n))
    return wrk.format("POST", "/api/users", json_headers, body)
  elseif draw < 0.98 then
    local body = string.format('{"name": "Mixed Patch %d"}', common.next_counter())
    return wrk.format("PATCH", "/api/users/" .. zipf_id(), patch_headers, body)
  end
  local victim = table.remove(created) or common.random_id()
  return wrk.format("DELETE", "/api/users/" .. victim)
end

function response(status, headers, body)
  common.count(status)
  if status == 201 then
    local location = headers["Location"] or headers["location"] or ""
    local new_id = tonumber(location:match("(%d+)$") or "")
    if new_id then created[#created + 1] = new_id end
  end
end
