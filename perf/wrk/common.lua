-- Helpers shared by the benchmark's wrk scripts (perf/bench.py runs them).
--
-- Configuration comes from the environment, so that one script serves the
-- service and the reference alike:
--   PERF_USERS        seeded ids are 1..PERF_USERS (default 100000)
--   PERF_HOT_COUNT    size of the hot set of get_cached (default 100)
--   PERF_RUN_PREFIX   unique per wrk run: keeps created emails unique
--   PERF_ZIPF_S       skew of the mixed workload's reads (default 1.1)
--   PERF_TOKEN        bearer token sent with every request, when the server wants one
--
-- Each thread counts responses by status class; done() sums the counts of
-- all threads and prints one line "PERF_RESULT {json}" that bench.py parses
-- (latencies in microseconds, from wrk's histogram).

local M = {}

local threads = {}

local function env_number(name, default)
  local value = tonumber(os.getenv(name) or "")
  if value == nil then return default end
  return value
end

M.users = env_number("PERF_USERS", 100000)
M.hot_count = math.min(env_number("PERF_HOT_COUNT", 100), M.users)
M.run_prefix = os.getenv("PERF_RUN_PREFIX") or tostring(os.time())
M.zipf_s = env_number("PERF_ZIPF_S", 1.1)
M.token = os.getenv("PERF_TOKEN")
if M.token == "" then M.token = nil end

-- Main state: number the threads and remember them for done().
function M.setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

-- Thread state: a distinct random sequence per thread and per run.
function M.init()
  s2xx, s3xx, s4xx, s5xx = 0, 0, 0, 0
  counter = 0
  math.randomseed(os.time() * 1000 + id * 7919 + math.floor(os.clock() * 1e6))
end

function M.count(status)
  if status >= 500 then s5xx = s5xx + 1
  elseif status >= 400 then s4xx = s4xx + 1
  elseif status >= 300 then s3xx = s3xx + 1
  else s2xx = s2xx + 1 end
end

function M.response(status, headers, body)
  M.count(status)
end

function M.next_counter()
  counter = counter + 1
  return counter
end

-- A uniformly random seeded id.
function M.random_id()
  return math.random(1, M.users)
end

-- The i-th id of the hot set: spread over the whole range, the same for
-- every server and run.
function M.hot_id(i)
  return (i * 997) % M.users + 1
end

-- A permutation of 1..n, so that Zipf rank 1 is not simply id 1 (which
-- would put every hot id on the first list page).
local PERMUTE = (M.users % 1000003 ~= 0) and 1000003 or 999983

function M.rank_to_id(rank)
  return ((rank - 1) * PERMUTE) % M.users + 1
end

-- Zipf-distributed ranks 1..n with exponent s: cumulative weights once per
-- thread, then a binary search per draw.
function M.zipf_sampler(n, s)
  local cdf, total = {}, 0
  for rank = 1, n do
    total = total + rank ^ (-s)
    cdf[rank] = total
  end
  return function()
    local target = math.random() * total
    local lo, hi = 1, n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cdf[mid] < target then lo = mid + 1 else hi = mid end
    end
    return lo
  end
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- base64url without padding, as the API's cursors are.
function M.b64url(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = (b == nil and 2) or (c == nil and 3) or 4
    for j = 1, chars do
      local index = math.floor(n / 64 ^ (4 - j)) % 64
      out[#out + 1] = B64:sub(index + 1, index + 1)
    end
  end
  return table.concat(out)
end

-- The opaque cursor that continues after `last_id`: base64url(b"u1:<id>").
function M.cursor(last_id)
  return M.b64url("u1:" .. tostring(last_id))
end

function M.email(n)
  return string.format("b%s-t%d-%d@bench.example.com", M.run_prefix, id, n)
end

function M.done(summary, latency, requests)
  local totals = { s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0 }
  for _, thread in ipairs(threads) do
    for key, value in pairs(totals) do
      totals[key] = value + (tonumber(thread:get(key)) or 0)
    end
  end
  local errors = summary.errors
  io.write(string.format(
    'PERF_RESULT {"requests": %d, "duration_us": %d, "p50_us": %.1f, "p90_us": %.1f, '
      .. '"p99_us": %.1f, "p999_us": %.1f, "max_us": %.1f, "mean_us": %.1f, '
      .. '"s2xx": %d, "s3xx": %d, "s4xx": %d, "s5xx": %d, "connect_errors": %d, '
      .. '"read_errors": %d, "write_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, latency.mean,
    totals.s2xx, totals.s3xx, totals.s4xx, totals.s5xx, errors.connect, errors.read,
    errors.write, errors.timeout))
end

-- Headers for wrk.format(): `extra` plus the bearer token, if any. (wrk
-- uses wrk.headers only when a request passes no headers of its own.)
function M.headers(extra)
  local headers = {}
  for name, value in pairs(extra or {}) do headers[name] = value end
  if M.token then headers["Authorization"] = "Bearer " .. M.token end
  return headers
end

-- Wire the common hooks into a script's globals.
function M.install()
  setup = M.setup
  done = M.done
  response = M.response
  if M.token then wrk.headers["Authorization"] = "Bearer " .. M.token end
end

return M
