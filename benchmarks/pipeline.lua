-- benchmarks/pipeline.lua: a wrk script that pipelines HTTP/1.1 requests.
-- Each write carries DEPTH requests for the path given after `--` (default
-- /plaintext), so the server sees a batch per read; wrk counts every
-- response. DEPTH comes from the environment variable PIPELINE_DEPTH
-- (default 16).
--   wrk -t1 -c50 -d5s -s benchmarks/pipeline.lua http://127.0.0.1:8080 -- /plaintext
local depth = tonumber(os.getenv("PIPELINE_DEPTH") or "16")
local batch

function init(args)
  local path = args[1] or "/plaintext"
  local requests = {}
  for i = 1, depth do
    requests[i] = wrk.format("GET", path)
  end
  batch = table.concat(requests)
end

function request()
  return batch
end
