-- wrk script for tests/bench: a small JSON POST (a Kling task submission)
-- with a bearer token, and one machine-readable summary line at the end.
-- BENCH_TOKEN: the gateway token (sk-...); the baseline gets it too and
-- passes it on unread, so both sides send the same bytes.

wrk.method = "POST"
wrk.body = '{"model_name":"kling-v1","prompt":"a red fox running through snow, cinematic","negative_prompt":"","cfg_scale":0.5,"mode":"std","duration":"5"}'
wrk.headers["Content-Type"] = "application/json"
local tok = os.getenv("BENCH_TOKEN")
if tok ~= nil and tok ~= "" then
   wrk.headers["Authorization"] = "Bearer " .. tok
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"non2xx":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
      '"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.status, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.mean, latency.max))
end
