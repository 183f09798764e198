-- wrk script of bench/load.py: requests from a file (METHOD<TAB>PATH<TAB>BODY per line),
-- shared round-robin or, with BENCH_ONCE=1, each sent once (split between the threads);
-- each thread stops after BENCH_MAX responses. Prints one "BENCH_RESULT {json}" line.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    table.insert(fields, field)
  end
  return fields
end

local function decode_headers(text)
  local headers = {}
  for key, value in text:gmatch('"([^"]+)"%s*:%s*"([^"]*)"') do
    headers[key] = value
  end
  return headers
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS"))
  local once = os.getenv("BENCH_ONCE") == "1"
  max_responses = tonumber(os.getenv("BENCH_MAX"))
  responses = 0
  failures = 0
  position = 0
  base_headers = decode_headers(os.getenv("BENCH_HEADERS"))
  prepared = {}
  local line_number = 0
  for line in io.lines(os.getenv("BENCH_REQUESTS")) do
    if not once or line_number % nthreads == index then
      local fields = split(line)
      local headers = {}
      for key, value in pairs(base_headers) do headers[key] = value end
      local body = fields[3]
      if body == "" then
        body = nil
      else
        headers["Content-Type"] = "application/json"
      end
      table.insert(prepared, wrk.format(fields[1], fields[2], headers, body))
    end
    line_number = line_number + 1
  end
  if once then
    max_responses = math.min(max_responses, #prepared)
  end
  spare = wrk.format("GET", "/healthz", base_headers, nil)
end

function request()
  position = position + 1
  if position > max_responses then
    -- The share is used up; requests still in flight finish, these extra ones are cheap.
    return spare
  end
  return prepared[((position - 1) % #prepared) + 1]
end

function response(status, headers, body)
  responses = responses + 1
  if status >= 400 then
    failures = failures + 1
  end
  if responses >= max_responses then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local failed = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  for _, thread in ipairs(threads) do
    failed = failed + (thread:get("failures") or 0)
  end
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "failures": %d}\n',
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), failed))
end
