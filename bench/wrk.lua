-- wrk script for every operation of the benchmark; BENCH_OP picks one:
--   get     GET  /api/tasks/{random seeded id of the user}
--   list    GET  /api/tasks?limit=20
--   filtered GET /api/tasks?status=pending&tag=work&sort=due_at&limit=20
--   search  GET  /api/tasks?q=task%2012&limit=20
--   filtered_nocount, search_nocount: the same two with Prefer: count=none (no total)
--   create  POST /api/tasks            {"title": "bench task"}
--   update  PUT  /api/tasks/{random seeded id of the user}  {"title": "bench N"}, N random
--   create_keyed  POST /api/tasks with a fresh Idempotency-Key each time (the recorded path)
--   patch_if PATCH /api/tasks/{random seeded id} {"title": "bench N"} with If-Match: the
--           task's current ETag, from BENCH_VERSIONS (a file of "id version" lines written
--           just before the step) and then from this thread's answers. Each thread takes its
--           own ids and never has one task in flight twice, so no tag goes stale
--   changes GET /api/tasks/changes?since=S&limit=100, S a random point of the user's feed
--           (within the positions of its seeded tasks, from BENCH_FEEDS)
--   shared_get, shared_list, shared_create: get, list (?list_id=S) and create in the shared
--           list of the user's group, from BENCH_SHARED ("list:lo-hi" per user)
-- Each request goes out as one of the seeded users, picked at random.
-- BENCH_TOKENS: the users' bearer tokens, space-separated.
-- BENCH_IDS: each user's seeded ids as LO-HI, space-separated, in the same order.
--
-- Latency is measured here, not taken from wrk: before done() sees them, wrk "corrects" its
-- latency numbers for coordinated omission (stats_correct: made-up samples for every slow
-- request), which inflates the mean and percentiles of a closed-loop run, and this version's
-- Lua cannot read the histogram to undo it. So every request carries a unique X-Request-Id,
-- which the service echoes; response() pairs it with the time request() sent it.
--
-- done() prints one machine-readable line starting with "BENCH ".

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local now_ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_ts)
  return tonumber(now_ts.tv_sec) * 1e6 + tonumber(now_ts.tv_nsec) / 1e3
end

local op = os.getenv("BENCH_OP") or "get"

-- setup() runs in the main Lua state, once per thread; done() reads the threads' results.
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_no", #threads)
end

-- Per thread (globals, so that done() can read them with thread:get):
hist = {}      -- latency in whole microseconds -> how many requests took it
unpaired = 0   -- responses whose X-Request-Id was not one this thread sent

local users = {} -- { headers = {...}, lo = n, hi = n }
local sent = {}  -- X-Request-Id -> when it was sent
local seq = 0
local etags = {} -- task id -> the ETag this thread last saw for it (patch_if)
local patching = {} -- X-Request-Id -> the task id it patches (patch_if)
local busy = {} -- task id -> true while this thread has a patch of it in flight
local thread_count = tonumber(os.getenv("BENCH_THREADS") or "1")

-- A random seeded id of user u that belongs to this thread (ids split by residue).
local function own_id(u)
  local span = math.floor((u.hi - u.lo + 1) / thread_count)
  return u.lo + (thread_no - 1) + thread_count * math.random(0, span - 1)
end

function init(args)
  math.randomseed(os.time() * 1000 + thread_no)
  for token in string.gmatch(os.getenv("BENCH_TOKENS") or "", "%S+") do
    users[#users + 1] = { headers = { Authorization = "Bearer " .. token } }
  end
  local i = 0
  for lo, hi in string.gmatch(os.getenv("BENCH_IDS") or "", "(%d+)-(%d+)") do
    i = i + 1
    users[i].lo, users[i].hi = tonumber(lo), tonumber(hi)
  end
  assert(#users > 0 and i == #users, "BENCH_TOKENS and BENCH_IDS must name the same users")
  i = 0
  for lo, hi in string.gmatch(os.getenv("BENCH_FEEDS") or "", "(%d+)-(%d+)") do
    i = i + 1
    users[i].feed_lo, users[i].feed_hi = tonumber(lo), tonumber(hi)
  end
  i = 0
  for list, lo, hi in string.gmatch(os.getenv("BENCH_SHARED") or "", "(%d+):(%d+)-(%d+)") do
    i = i + 1
    users[i].shared, users[i].shared_lo, users[i].shared_hi = list, tonumber(lo), tonumber(hi)
  end
  if op == "patch_if" then
    local file = assert(io.open(assert(os.getenv("BENCH_VERSIONS"), "BENCH_VERSIONS"), "r"))
    for id, version in file:read("*a"):gmatch("(%d+) (%d+)") do
      etags[tonumber(id)] = '"' .. id .. '-' .. version .. '"'
    end
    file:close()
  end
  if op == "create" or op == "update" or op == "create_keyed" or op == "patch_if"
      or op == "shared_create" then
    for _, u in ipairs(users) do u.headers["Content-Type"] = "application/json" end
  end
end

function request()
  local u = users[math.random(#users)]
  seq = seq + 1
  local id = "bench-" .. thread_no .. "-" .. seq
  u.headers["X-Request-Id"] = id
  local req
  if op == "list" then
    req = wrk.format("GET", "/api/tasks?limit=20", u.headers)
  elseif op == "filtered" then
    req = wrk.format("GET", "/api/tasks?status=pending&tag=work&sort=due_at&limit=20", u.headers)
  elseif op == "search" then
    req = wrk.format("GET", "/api/tasks?q=task%2012&limit=20", u.headers)
  elseif op == "filtered_nocount" or op == "search_nocount" then
    u.headers["Prefer"] = "count=none"
    local path = op == "search_nocount" and "/api/tasks?q=task%2012&limit=20"
      or "/api/tasks?status=pending&tag=work&sort=due_at&limit=20"
    req = wrk.format("GET", path, u.headers)
    u.headers["Prefer"] = nil
  elseif op == "create" then
    req = wrk.format("POST", "/api/tasks", u.headers, '{"title":"bench task"}')
  elseif op == "get" then
    req = wrk.format("GET", "/api/tasks/" .. math.random(u.lo, u.hi), u.headers)
  elseif op == "create_keyed" then
    u.headers["Idempotency-Key"] = id .. "-" .. math.random(1, 1000000000)
    req = wrk.format("POST", "/api/tasks", u.headers, '{"title":"bench task"}')
    u.headers["Idempotency-Key"] = nil
  elseif op == "patch_if" then
    local task = own_id(u)
    while busy[task] do task = own_id(u) end
    busy[task] = true
    u.headers["If-Match"] = etags[task]
    patching[id] = task
    req = wrk.format("PATCH", "/api/tasks/" .. task, u.headers,
                     '{"title":"bench ' .. math.random(1, 1000000000) .. '"}')
    u.headers["If-Match"] = nil
  elseif op == "changes" then
    local since = math.random(u.feed_lo - 1, math.max(u.feed_lo - 1, u.feed_hi - 100))
    req = wrk.format("GET", "/api/tasks/changes?limit=100&since=" .. since, u.headers)
  elseif op == "shared_get" then
    req = wrk.format("GET", "/api/tasks/" .. math.random(u.shared_lo, u.shared_hi), u.headers)
  elseif op == "shared_list" then
    req = wrk.format("GET", "/api/tasks?limit=20&list_id=" .. u.shared, u.headers)
  elseif op == "shared_create" then
    req = wrk.format("POST", "/api/tasks", u.headers,
                     '{"title":"bench task","list_id":' .. u.shared .. '}')
  elseif op == "update" then
    req = wrk.format("PUT", "/api/tasks/" .. math.random(u.lo, u.hi), u.headers,
                     '{"title":"bench ' .. math.random(1, 1000000000) .. '"}')
  else
    error("unknown BENCH_OP " .. op)
  end
  sent[id] = now_us()
  return req
end

-- Non-2xx/3xx answers are counted by wrk itself (summary.errors.status).
function response(status, headers, body)
  local id = headers["x-request-id"] or headers["X-Request-Id"]
  local at = id and sent[id]
  if not at then
    unpaired = unpaired + 1
    return
  end
  sent[id] = nil
  local task = patching[id]
  if task then
    patching[id] = nil
    busy[task] = nil
    local etag = headers["etag"] or headers["ETag"]
    if etag then etags[task] = etag end
  end
  local us = math.floor(now_us() - at)
  hist[us] = (hist[us] or 0) + 1
end

function done(summary, latency, requests)
  local merged, unmatched = {}, 0
  for _, thread in ipairs(threads) do
    for us, n in pairs(thread:get("hist")) do merged[us] = (merged[us] or 0) + n end
    unmatched = unmatched + thread:get("unpaired")
  end
  local values, count, sum = {}, 0, 0
  for us, n in pairs(merged) do
    values[#values + 1] = us
    count, sum = count + n, sum + us * n
  end
  table.sort(values)
  -- Nearest-rank percentiles.
  local function percentile(p)
    local rank, seen = math.max(1, math.ceil(p / 100 * count)), 0
    for _, us in ipairs(values) do
      seen = seen + merged[us]
      if seen >= rank then return us end
    end
    return 0
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d timed=%d unpaired=%d busy_us=%.0f mean_us=%.1f " ..
    "p50_us=%d p95_us=%d p99_us=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, count, unmatched, sum, count > 0 and sum / count or 0,
    percentile(50), percentile(95), percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("(wrk's own numbers, corrected for coordinated omission: mean %.0f us, " ..
    "p50 %d us, p99 %d us)\n", latency.mean, latency:percentile(50), latency:percentile(99)))
end
