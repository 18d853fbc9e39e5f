-- Teach an account's limiter what the provider said: a success, a 429, a failure that pauses
-- the account, or rate-limit headers.
-- ARGV: prefix, account, kind ('ok'|'rate_limited'|'quota'|'auth'|'server_error'|'headers'),
--       images, retry_after_ms, limit_requests, remaining_requests, limit_images,
--       remaining_images, ipm_cfg, rpm_cfg, pause_ms (first pause of a failing account),
--       reason, burst_seconds, pause_max_ms, error_threshold
-- A paused account takes no new work until its pause lapses; then admission lets one call
-- through, whose success ends the pause (and whose failure pauses it twice as long).
-- Returns {ipm_eff, rpm_eff, paused_until}.
local account, kind, images, retry_after = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local limit_req, remaining_req = tonumber(ARGV[6]), tonumber(ARGV[7])
local limit_img, remaining_img = tonumber(ARGV[8]), tonumber(ARGV[9])
local ipm_cfg, rpm_cfg, pause_ms, reason = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12]), ARGV[13]
local burst_s = tonumber(ARGV[14]) or 1
local pause_max, threshold = tonumber(ARGV[15]) or pause_ms, tonumber(ARGV[16]) or 5
local now = now_ms()
local lim = K.limiter(account)
local s = hget_all(lim)
local ipm = tonumber(s['ipm_eff'] or '') or ipm_cfg
local rpm = tonumber(s['rpm_eff'] or '') or rpm_cfg
ipm, rpm = math.min(ipm, ipm_cfg), math.min(rpm, rpm_cfg)
local paused = tonumber(s['paused_until'] or '0') or 0
local current = s['pause_reason'] or ''
local HARD = {insufficient_quota = true, provider_auth_failed = true, server_errors = true}
local sec = math.floor(now / 1000)

-- Pause the account for good reason: first for pause_ms, doubling at each relapse.
local function hard_pause(why)
  if HARD[current] and paused > now then return end
  local pauses = tonumber(s['pauses'] or '0') or 0
  local ms = math.min(pause_max, pause_ms * 2 ^ pauses)
  paused, current = now + ms, why
  redis.call('HSET', lim, 'paused_until', int(paused), 'pause_reason', why, 'pauses', pauses + 1,
             'paused_at', int(now), 'errors', 0)
end

-- The provider's own figures, when it sends them, cap what editq tries.
if limit_req and limit_req > 0 then redis.call('HSET', lim, 'learned_rpm', int(limit_req)) end
if limit_img and limit_img > 0 then redis.call('HSET', lim, 'learned_ipm', int(limit_img)) end
local function pause(ms, why)
  if HARD[current] then return end
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
  if HARD[current] and paused <= now then
    -- the probe went through: the account is back
    redis.call('HSET', lim, 'pause_reason', '', 'paused_until', '0', 'pauses', 0)
    current = ''
  end
  if (s['errors'] or '0') ~= '0' then redis.call('HSET', lim, 'errors', 0) end
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
  local rej = K.limiter_rejected(account)
  redis.call('HINCRBY', rej, 'i' .. tostring(sec), math.max(1, images))
  redis.call('HINCRBY', rej, 'r' .. tostring(sec), 1)
  redis.call('EXPIRE', rej, 120)
  local last_cut = tonumber(s['last_cut'] or '0') or 0
  if now - last_cut >= 1000 then
    -- The provider rejects at arrival, so what it accepted over the last few seconds of
    -- sending (sent minus rejected) is its real rate. Trust it once 2 s have been seen.
    local window = 5
    local sent = redis.call('HGETALL', K.limiter_sent(account))
    local rejected = redis.call('HGETALL', rej)
    local first = sec
    local totals = {i = 0, r = 0, ri = 0, rr = 0}
    for i = 1, #sent, 2 do
      local at = tonumber(string.sub(sent[i], 2))
      if at > sec - window then
        if at < first then first = at end
        local k = string.sub(sent[i], 1, 1)
        totals[k] = totals[k] + tonumber(sent[i + 1])
      end
    end
    for i = 1, #rejected, 2 do
      local at = tonumber(string.sub(rejected[i], 2))
      if at > sec - window then
        local k = 'r' .. string.sub(rejected[i], 1, 1)
        totals[k] = totals[k] + tonumber(rejected[i + 1])
      end
    end
    local span = sec - first + (now % 1000) / 1000
    local accepted_ipm = math.max(0, totals.i - totals.ri) * 60 / math.max(span, 0.001)
    local accepted_rpm = math.max(0, totals.r - totals.rr) * 60 / math.max(span, 0.001)
    -- Cut by at most 10% per second of 429s, and no lower than what the provider accepted
    -- (which underestimates it only when editq was not sending enough to find out).
    local function cut(current, accepted)
      local floor = current * 0.9
      if span >= 2 then floor = math.max(floor, math.min(current, accepted * 0.97)) end
      return math.max(1, floor)
    end
    ipm, rpm = cut(ipm, accepted_ipm), cut(rpm, accepted_rpm)
    redis.call('HSET', lim, 'last_cut', int(now), 'last_change', int(now))
  end
  -- Resume at the steady rate when the pause ends: the provider's bucket is empty, so no burst.
  local function no_burst(rate)
    local interval = 60000 / rate
    local burst = math.max(1, math.floor(rate * burst_s / 60))
    return paused + (burst - 1) * interval
  end
  redis.call('HSET', lim, 'last_429', int(now), 'img_tat', num(no_burst(ipm)), 'req_tat', num(no_burst(rpm)))
elseif kind == 'quota' or kind == 'auth' then
  hard_pause(reason)
elseif kind == 'server_error' then
  if redis.call('HINCRBY', lim, 'errors', 1) >= threshold or (HARD[current] and paused <= now) then
    hard_pause('server_errors')
  end
end
redis.call('HSET', lim, 'ipm_eff', num(ipm), 'rpm_eff', num(rpm))
return {num(ipm), num(rpm), int(paused)}
