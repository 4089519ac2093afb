-- wrk script of `npm run bench`: authenticated API requests, an exact number of them.
-- Usage: wrk … -s bench/api.lua <url> -- <requests per thread> <method> <path> <tokens file> [activity <events per
--   request> <members> <occurred_at> <nonce>]
-- Each request carries the next token of the file (one JWT per line), so the load is spread over many users (the
-- per-user rate limit holds for each). With `activity`, the body is a fresh batch of `api_calls` events of amount 1 for
-- random members `member-0 … member-<members-1>` (ids unique per run through <nonce>), and the summary adds the
-- events the service reported as accepted.
-- Quota, parking and the summary line work as in clicks.lua; 200 counts as ok.
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local function now_ms()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  quota = tonumber(args[1])
  method, target = args[2], args[3]
  tokens = {}
  for line in io.lines(args[4]) do
    if #line > 0 then table.insert(tokens, line) end
  end
  activity = args[5] == "activity"
  if activity then
    per_request, members, occurred_at, nonce = tonumber(args[6]), tonumber(args[7]), args[8], args[9]
    math.randomseed(id * 7919 + os.time())
  end
  reserved, sent, ok, others, accepted, first, last = 0, 0, 0, 0, 0, 0, 0
end

function delay()
  if reserved < quota then
    reserved = reserved + 1
    return 0
  end
  return 100000000 -- parked until wrk ends
end

local function batch()
  local parts = {}
  for k = 1, per_request do
    parts[k] = string.format(
      '{"id":"%s-%d-%d-%d","user_id":"member-%d","metric":"api_calls","amount":1,"occurred_at":"%s"}',
      nonce, id, sent, k, math.random(0, members - 1), occurred_at)
  end
  return '{"events":[' .. table.concat(parts, ",") .. "]}"
end

function request()
  if sent == 0 then first = now_ms() end
  local headers = { ["Authorization"] = "Bearer " .. tokens[(sent + id * 997) % #tokens + 1] }
  local body = nil
  if activity then
    headers["Content-Type"] = "application/json"
    body = batch()
  end
  sent = sent + 1
  return wrk.format(method, target, headers, body)
end

function response(status, headers, body)
  if status == 200 then ok = ok + 1 else others = others + 1 end
  if activity and status == 200 then
    accepted = accepted + tonumber(string.match(body, '"accepted":(%d+)') or "0")
  end
  if ok + others == quota then
    last = now_ms()
    io.write("thread-done\n")
    io.flush()
  end
end

function done(summary, latency, requests)
  local r, o, s, a, first_all, last_all, unfinished = 0, 0, 0, 0, math.huge, 0, 0
  for _, t in ipairs(threads) do
    r = r + t:get("ok")
    o = o + t:get("others")
    s = s + t:get("sent")
    a = a + t:get("accepted")
    first_all = math.min(first_all, t:get("first"))
    if t:get("last") == 0 then unfinished = unfinished + 1 end
    last_all = math.max(last_all, t:get("last"))
  end
  io.write(string.format(
    '{"sent":%d,"requests":%d,"elapsed_ms":%.1f,"ok":%d,"others":%d,"accepted":%d,"unfinished":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d}\n',
    s, summary.requests, last_all - first_all, r, o, a, unfinished,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
