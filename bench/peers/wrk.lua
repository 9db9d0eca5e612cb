-- wrk script: POST a different PNG from a pack on every request, as multipart field `file`.
--
-- The pack (bench/peers/pack.py) is a file of length-prefixed PNGs. Environment:
--   PACK_PATH    the pack file
--   PACK_OFFSET  byte offset of the slice's first PNG
--   PACK_COUNT   PNGs in the slice (1: the same image every time)
--   WRK_THREADS  wrk's -t, so each thread keeps every n-th PNG of the slice
--   BODY_FORMAT  `multipart` (default) or `v2`: an Open Inference Protocol request with
--                Triton's binary extension, the PNG as a BYTES input named `image`, the
--                body tritonclient's InferenceServerClient.infer sends (bench/peers/v2.py
--                checks the two byte for byte)
-- A thread that has sent its whole share starts again from its first PNG and counts a wrap:
-- for a cache that is a hit, so the caller sizes slices to never wrap and checks `wrapped`.
-- done() prints one JSON line, prefixed "WRK_JSON ", for bench/load/wrk.py.

local BOUNDARY = "mlserve-bench-7f3a9c2e41d5"
local PREFIX = "--" .. BOUNDARY .. "\r\n"
  .. 'Content-Disposition: form-data; name="file"; filename="image.png"\r\n'
  .. "Content-Type: image/png\r\n\r\n"
local SUFFIX = "\r\n--" .. BOUNDARY .. "--\r\n"

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function read_u32(fh)
  local b = fh:read(4)
  local b1, b2, b3, b4 = b:byte(1, 4)
  return ((b1 * 256 + b2) * 256 + b3) * 256 + b4
end

function init(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  local count = tonumber(os.getenv("PACK_COUNT"))
  local fh = assert(io.open(os.getenv("PACK_PATH"), "rb"))
  fh:seek("set", tonumber(os.getenv("PACK_OFFSET")))
  images = {}
  for k = 0, count - 1 do
    local length = read_u32(fh)
    if count == 1 or k % nthreads == id then
      table.insert(images, fh:read(length))
    else
      fh:seek("cur", length)
    end
  end
  fh:close()
  cursor, sent, wrapped, bad = 0, 0, 0, 0
  v2 = os.getenv("BODY_FORMAT") == "v2"
  wrk.method = "POST"
  if v2 then
    wrk.headers["Content-Type"] = "application/octet-stream"
  else
    wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. BOUNDARY
  end
end

local function u32le(n)
  return string.char(n % 256, math.floor(n / 256) % 256, math.floor(n / 65536) % 256,
    math.floor(n / 16777216) % 256)
end

-- The JSON header tritonclient writes for one BYTES input and one binary output, around
-- the input's size (tests/unit/model_api/test_v2_codec.py compares it with tritonclient's).
local V2_HEAD = '{"inputs":[{"name":"image","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":'
local V2_TAIL = '}}],"outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}'

function v2_request(png)
  local header = V2_HEAD .. (#png + 4) .. V2_TAIL
  local headers = {["Inference-Header-Content-Length"] = tostring(#header)}
  return wrk.format(nil, nil, headers, header .. u32le(#png) .. png)
end

function request()
  cursor = cursor + 1
  if cursor > #images then
    cursor = 1
    wrapped = wrapped + 1
  end
  sent = sent + 1
  if v2 then
    return v2_request(images[cursor])
  end
  return wrk.format(nil, nil, nil, PREFIX .. images[cursor] .. SUFFIX)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local sent, wrapped, bad, images = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    sent = sent + thread:get("sent")
    wrapped = wrapped + thread:get("wrapped")
    bad = bad + thread:get("bad")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"responses": %d, "duration_us": %d, "non2xx": %d, "sent": %d, "wrapped": %d, '
      .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "timeouts": %d, '
      .. '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, bad, sent, wrapped,
    e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
