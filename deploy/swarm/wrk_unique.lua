-- wrk: POST a PNG with a different tail on every request (bytes after the PNG's end, which
-- decoders ignore), so every request is a cache miss. IMAGE names the PNG; RUN names this
-- run: give each run its own (Lua's random numbers start from the same seed in every run,
-- so a tail made of them would repeat the last run's requests, and hit its cache entries).
local f = assert(io.open(os.getenv("IMAGE"), "rb"))
local png = f:read("*a")
f:close()
local run = assert(os.getenv("RUN"), "set RUN to a name no earlier run used")
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
function request()
  n = n + 1
  return wrk.format(nil, "/predict", nil, png .. string.format("%s-%d", run, n))
end
