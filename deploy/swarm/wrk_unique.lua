-- wrk: POST a PNG with a different tail on every request (bytes after the PNG's end, which
-- decoders ignore), so every request is a cache miss. IMAGE names the PNG.
local f = assert(io.open(os.getenv("IMAGE"), "rb"))
local png = f:read("*a")
f:close()
local n = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
function request()
  n = n + 1
  return wrk.format(nil, "/predict", nil, png .. string.format("%d-%d", math.random(1e9), n))
end
