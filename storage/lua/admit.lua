-- Admission: pick the next job fairly and let it run if the provider limiter has room.
-- ARGV: prefix, ipm_cfg, rpm_cfg, inflight_cfg, burst_seconds, grace_ms, scan
-- Returns one of:
--   {'admitted', tenant, job_id, token, images, more} (more: 1 if another slot is free)
--   {'expired', tenant, job_id}          (deadline passed; the caller expires it)
--   {'wait', ms}                         (rate or pause; try again after ms)
--   {'full'} | {'empty'} | {'paused', reason}
local ipm_cfg, rpm_cfg = tonumber(ARGV[2]), tonumber(ARGV[3])
local inflight_cfg, burst_s = tonumber(ARGV[4]), tonumber(ARGV[5])
local grace, scan = tonumber(ARGV[6]), tonumber(ARGV[7])
local now = now_ms()
local lim = K.limiter()
local state = hget_all(lim)

local paused = tonumber(state['paused_until'] or '0') or 0
if paused > now then
  if (state['pause_reason'] or '') ~= '' and (state['pause_reason'] or '') ~= 'rate_limited' then
    return {'paused', state['pause_reason']}
  end
  return {'wait', int(paused - now)}
end

-- Capacity: live provider leases against the account cap and the live worker slots.
local live = redis.call('ZCOUNT', K.inflight(), '(' .. int(now), '+inf')
local slots = 0
local workers = redis.call('ZRANGEBYSCORE', K.workers(), '(' .. int(now), '+inf')
for _, w in ipairs(workers) do
  slots = slots + (tonumber(redis.call('HGET', K.worker_slots(), w) or '0') or 0)
end
local cap = math.min(inflight_cfg, slots)
if live >= cap then return {'full'} end

local ipm = math.min(ipm_cfg, tonumber(state['ipm_eff'] or '') or ipm_cfg)
local rpm = math.min(rpm_cfg, tonumber(state['rpm_eff'] or '') or rpm_cfg)
local learned_ipm = tonumber(state['learned_ipm'] or '')
local learned_rpm = tonumber(state['learned_rpm'] or '')
if learned_ipm then ipm = math.min(ipm, learned_ipm) end
if learned_rpm then rpm = math.min(rpm, learned_rpm) end

-- GCRA: how long until `n` units fit, given a rate per minute and a burst in seconds.
local function gcra(tat_field, rate, n)
  local interval = 60000 / rate
  local burst = math.max(n, math.floor(rate * burst_s / 60))
  local tat = math.max(tonumber(state[tat_field] or '0') or 0, now)
  local new_tat = tat + n * interval
  local wait = new_tat - burst * interval - now
  return wait, new_tat
end

local candidates = redis.call('ZRANGE', K.fair(), 0, scan - 1, 'WITHSCORES')
for i = 1, #candidates, 2 do
  local t, vt = candidates[i], tonumber(candidates[i + 1])
  local tenant = K.tenant(t)
  local cap_t = tonumber(redis.call('HGET', tenant, 'max_running') or '0') or 0
  local busy = cap_t > 0 and redis.call('ZCOUNT', K.running(t), '(' .. int(now), '+inf') >= cap_t
  if not busy then
    local id, prio = nil, nil
    for _, p in ipairs({K.lane('interactive'), K.lane('batch')}) do
      while true do
        local head = redis.call('LINDEX', K.queue(t, p), 0)
        if not head then break end
        local st = redis.call('HGET', K.job(t, head), 'status')
        if st == 'queued' then id, prio = head, p; break end
        redis.call('LPOP', K.queue(t, p))
      end
      if id then break end
    end
    if not id then
      redis.call('ZREM', K.fair(), t)
      redis.call('HSET', K.fair_vt(), t, num(vt))
    else
      local job = redis.call('HMGET', K.job(t, id), 'images', 'deadline')
      local n = tonumber(job[1] or '1') or 1
      local deadline = tonumber(job[2] or '')
      if deadline and deadline <= now then
        redis.call('LPOP', K.queue(t, prio))
        return {'expired', t, id}
      end
      local wait_i, tat_i = gcra('img_tat', ipm, n)
      local wait_r, tat_r = gcra('req_tat', rpm, 1)
      local wait = math.max(wait_i, wait_r)
      if wait > 0 then return {'wait', int(math.ceil(wait))} end
      redis.call('LPOP', K.queue(t, prio))
      local token = int(redis.call('INCR', K.sequence()))
      redis.call('HSET', K.job(t, id), 'token', token, 'admitted_at', int(now))
      redis.call('ZADD', K.inflight(), int(now + grace), R.slot(t, id))
      redis.call('ZADD', K.running(t), int(now + grace), id)
      redis.call('HSET', lim, 'img_tat', num(tat_i), 'req_tat', num(tat_r))
      local sec = tostring(math.floor(now / 1000))
      redis.call('HINCRBY', K.limiter_sent(), 'i' .. sec, n)
      redis.call('HINCRBY', K.limiter_sent(), 'r' .. sec, 1)
      redis.call('EXPIRE', K.limiter_sent(), 120)
      local weight = tonumber(redis.call('HGET', tenant, 'weight') or '1') or 1
      if weight <= 0 then weight = 1 end
      local next_vt = vt + n / weight
      redis.call('SET', K.fair_clock(), num(vt))
      if redis.call('LLEN', K.queue(t, K.lane('interactive'))) + redis.call('LLEN', K.queue(t, K.lane('batch'))) > 0 then
        redis.call('ZADD', K.fair(), num(next_vt), t)
      else
        redis.call('ZREM', K.fair(), t)
        redis.call('HSET', K.fair_vt(), t, num(next_vt))
      end
      local more = 0
      if live + 1 < cap then more = 1 end
      return {'admitted', t, id, token, int(n), more}
    end
  end
end
if redis.call('ZCARD', K.fair()) == 0 then return {'empty'} end
return {'full'}
