-- Teach the shared limiter what the provider said: a success, a 429, or rate-limit headers.
-- ARGV: prefix, kind ('ok'|'rate_limited'|'quota'|'auth'), images, retry_after_ms,
--       limit_requests, remaining_requests, limit_images, remaining_images,
--       ipm_cfg, rpm_cfg, pause_ms (quota/auth pauses), reason
-- Returns {ipm_eff, rpm_eff, paused_until}.
local kind, images, retry_after = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local limit_req, remaining_req = tonumber(ARGV[5]), tonumber(ARGV[6])
local limit_img, remaining_img = tonumber(ARGV[7]), tonumber(ARGV[8])
local ipm_cfg, rpm_cfg, pause_ms, reason = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11]), ARGV[12]
local now = now_ms()
local lim = P .. ':lim'
local s = hget_all(lim)
local ipm = tonumber(s['ipm_eff'] or '') or ipm_cfg
local rpm = tonumber(s['rpm_eff'] or '') or rpm_cfg
ipm, rpm = math.min(ipm, ipm_cfg), math.min(rpm, rpm_cfg)
local paused = tonumber(s['paused_until'] or '0') or 0
local okkey = lim .. ':ok'
local sec = math.floor(now / 1000)

-- The provider's own figures, when it sends them, cap what editq tries.
if limit_req and limit_req > 0 then redis.call('HSET', lim, 'learned_rpm', int(limit_req)) end
if limit_img and limit_img > 0 then redis.call('HSET', lim, 'learned_ipm', int(limit_img)) end
local function pause(ms, why)
  if now + ms > paused then
    paused = now + ms
    redis.call('HSET', lim, 'paused_until', int(paused), 'pause_reason', why)
  end
end
if remaining_req and remaining_req <= 0 and limit_req and limit_req > 0 then
  pause(math.ceil(60000 / limit_req), 'rate_limited')
end
if remaining_img and remaining_img <= 0 and limit_img and limit_img > 0 then
  pause(math.ceil(60000 / limit_img), 'rate_limited')
end

if kind == 'ok' then
  redis.call('HINCRBY', okkey, tostring(sec), images)
  redis.call('HINCRBY', okkey, 'r' .. tostring(sec), 1)
  local last_429 = tonumber(s['last_429'] or '0') or 0
  local last_change = tonumber(s['last_change'] or '0') or 0
  -- Probe back up: +2% of the configured rate every 5 s without a 429 in the last 10 s.
  if now - last_429 >= 10000 and now - last_change >= 5000 then
    if ipm < ipm_cfg or rpm < rpm_cfg then
      ipm = math.min(ipm_cfg, ipm + math.max(1, ipm_cfg * 0.02))
      rpm = math.min(rpm_cfg, rpm + math.max(1, rpm_cfg * 0.02))
      redis.call('HSET', lim, 'last_change', int(now))
    end
  end
elseif kind == 'rate_limited' then
  pause(math.max(retry_after, 100), 'rate_limited')
  local last_cut = tonumber(s['last_cut'] or '0') or 0
  if now - last_cut >= 2000 then
    -- Goodput over the last 30 s while we were hitting the limit is the provider's real rate.
    local imgs, reqs = 0, 0
    local flat = redis.call('HGETALL', okkey)
    for i = 1, #flat, 2 do
      local f = flat[i]
      if string.sub(f, 1, 1) == 'r' then
        local at = tonumber(string.sub(f, 2))
        if at < sec - 60 then redis.call('HDEL', okkey, f)
        elseif at >= sec - 30 then reqs = reqs + tonumber(flat[i + 1]) end
      else
        local at = tonumber(f)
        if at < sec - 60 then redis.call('HDEL', okkey, f)
        elseif at >= sec - 30 then imgs = imgs + tonumber(flat[i + 1]) end
      end
    end
    local seen_ipm, seen_rpm = imgs * 2, reqs * 2
    if seen_ipm > 0 and seen_ipm < ipm then ipm = math.max(1, seen_ipm * 0.97) else ipm = math.max(1, ipm * 0.8) end
    if seen_rpm > 0 and seen_rpm < rpm then rpm = math.max(1, seen_rpm * 0.97) else rpm = math.max(1, rpm * 0.8) end
    redis.call('HSET', lim, 'last_cut', int(now), 'last_change', int(now))
  end
  redis.call('HSET', lim, 'last_429', int(now), 'img_tat', int(paused), 'req_tat', int(paused))
elseif kind == 'quota' or kind == 'auth' then
  pause(pause_ms, reason)
  redis.call('HSET', lim, 'pause_reason', reason, 'paused_until', int(math.max(paused, now + pause_ms)))
end
redis.call('HSET', lim, 'ipm_eff', num(ipm), 'rpm_eff', num(rpm))
redis.call('EXPIRE', okkey, 120)
return {num(ipm), num(rpm), int(paused)}
