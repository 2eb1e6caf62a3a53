-- wrk script: POST /predict with one headline per request, cycling through a file of JSON bodies
-- (one per line, path in the env var WRK_BODIES); prints a JSON summary line at the end.
local bodies = {}
for line in io.lines(os.getenv("WRK_BODIES")) do bodies[#bodies + 1] = line end
local counter = 0

function setup(thread)
  thread:set("offset", math.random(#bodies))
end

function request()
  counter = counter + 1
  local body = bodies[(counter + (offset or 0)) % #bodies + 1]
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %.3f, "p50_ms": %.2f, "p90_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f, "mean_ms": %.2f, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3, latency.mean / 1e3, e.status,
    e.connect + e.read + e.write + e.timeout))
end
