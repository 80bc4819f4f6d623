-- wrk script: POST /api/orders/ with a fresh Idempotency-Key on every request, from 1,000
-- emails and 997 client addresses in turn (X-Forwarded-For, behind the one trusted proxy).
--
-- Environment (read by every wrk thread):
--   BENCH_PRODUCTS  products to pick from at random, SKUs BENCH-0001.. (default 1000)
--   BENCH_HOT_SKU   when set, every order is for this one SKU instead
--   BENCH_RATE      requests per second for the whole run, paced (0: as fast as possible)
--   BENCH_THREADS   wrk's -t, to split the rate and the request count between threads
--   BENCH_RUN_ID    prefix of the idempotency keys, unique per run
--   BENCH_PATH      where to post (default /api/orders/; /bench/floor for the framework's floor)
-- done() prints one line "BENCH_JSON {...}" that bench/load_tools.py reads.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("thread_id", next_id)
end

local products, hot_sku, run_id, path
local interval_ms, next_due, sent
local errors_shown = 0

function init(args)
  local n_threads = tonumber(os.getenv("BENCH_THREADS") or "1")
  products = tonumber(os.getenv("BENCH_PRODUCTS") or "1000")
  path = os.getenv("BENCH_PATH") or "/api/orders/"
  hot_sku = os.getenv("BENCH_HOT_SKU")
  if hot_sku == "" then hot_sku = nil end
  run_id = (os.getenv("BENCH_RUN_ID") or "run") .. "-" .. tostring(thread_id)
  local rate = tonumber(os.getenv("BENCH_RATE") or "0")
  interval_ms = rate > 0 and (1000.0 * n_threads / rate) or 0
  sent = 0
  math.randomseed(os.time() * 100 + thread_id)
end

function delay()
  if interval_ms == 0 then return 0 end
  -- Each request claims the next slot of this thread's schedule: an arrival rate, not a
  -- think time, so a slow answer is followed by a catch-up request rather than a gap.
  local now = now_ms()
  next_due = next_due or now
  local due = next_due
  next_due = next_due + interval_ms
  return math.max(0, math.floor(due - now))
end

function request()
  sent = sent + 1
  local sku = hot_sku or string.format("BENCH-%04d", math.random(1, products))
  local body = string.format(
    '{"email":"shopper%d@example.com","lines":[{"sku":"%s","quantity":1}],"payment_method":"pm_card_visa"}',
    sent % 1000, sku)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = string.format("%s-%d", run_id, sent),
    -- 997 shoppers' addresses, as nginx would pass them on (the stack trusts one proxy): one
    -- address holding every unpaid order of a run is what the per-client cap forbids.
    ["X-Forwarded-For"] = string.format("10.0.%d.%d", math.floor((sent % 997) / 250), (sent % 997) % 250 + 1),
  }
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if status ~= 202 and errors_shown < 3 then
    errors_shown = errors_shown + 1
    io.stderr:write(string.format("BENCH_ERROR status %d: %s\n", status, string.sub(body or "", 1, 300)))
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"status_errors":%d,"timeouts":%d,"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
end
