-- Admission: pick the next job fairly and route it to a provider account that serves its model
-- and has room now (cheapest first, then the most room left), if any.
-- ARGV: prefix, burst_seconds, grace_ms, scan, n, then n accounts of 6 values each:
--       name, ipm_cfg, rpm_cfg, inflight_cfg, models (',a,b,' or '*'), price_factor
-- Returns one of:
--   {'admitted', tenant, job_id, token, images, more, account, model, sources, mask}
--     (more: 1 if another slot is free; model, sources and mask as the job record has them, so
--     the worker can load the sources before it claims the job)
--   {'expired', tenant, job_id}          (deadline passed; the caller expires it)
--   {'wait', ms}                         (rate or pause; try again after ms)
--   {'full'} | {'empty'} | {'paused', reason} (paused: every account is)
local burst_s, grace = tonumber(ARGV[2]), tonumber(ARGV[3])
local scan, n_acc = tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()

local HARD = {insufficient_quota = true, provider_auth_failed = true, server_errors = true}

-- Each account as this round sees it; `blocked` once it has no room for anything this round.
local accounts = {}
local hard_reason = nil
local open = 0
for i = 0, n_acc - 1 do
  local base = 6 + i * 6
  local a = {name = ARGV[base], ipm_cfg = tonumber(ARGV[base + 1]), rpm_cfg = tonumber(ARGV[base + 2]),
             cap = tonumber(ARGV[base + 3]), models = ARGV[base + 4], price = tonumber(ARGV[base + 5])}
  a.lim = K.limiter(a.name)
  a.state = hget_all(a.lim)
  a.live = redis.call('ZCOUNT', K.account_inflight(a.name), '(' .. int(now), '+inf')
  local st = a.state
  local paused = tonumber(st['paused_until'] or '0') or 0
  local reason = st['pause_reason'] or ''
  if HARD[reason] then
    if paused > now then
      a.blocked, a.paused = true, true
      hard_reason = hard_reason or reason
    else
      -- The pause lapsed: one call at a time probes whether the account is back.
      a.cap = math.min(a.cap, 1)
    end
  elseif paused > now then
    a.wait = paused - now
  end
  if not a.paused then open = open + 1 end
  if a.live >= a.cap then a.blocked = true end
  local ipm = math.min(a.ipm_cfg, tonumber(st['ipm_eff'] or '') or a.ipm_cfg)
  local rpm = math.min(a.rpm_cfg, tonumber(st['rpm_eff'] or '') or a.rpm_cfg)
  a.ipm = math.min(ipm, tonumber(st['learned_ipm'] or '') or ipm)
  a.rpm = math.min(rpm, tonumber(st['learned_rpm'] or '') or rpm)
  accounts[#accounts + 1] = a
end
if open == 0 then return {'paused', hard_reason or 'paused'} end

-- Capacity: live provider leases against the live worker slots.
local live = redis.call('ZCOUNT', K.inflight(), '(' .. int(now), '+inf')
local slots = 0
local workers = redis.call('ZRANGEBYSCORE', K.workers(), '(' .. int(now), '+inf')
for _, w in ipairs(workers) do
  slots = slots + (tonumber(redis.call('HGET', K.worker_slots(), w) or '0') or 0)
end
if live >= slots then return {'full'} end

-- GCRA: how long until `n` units fit, given a rate per minute and a burst in seconds; and the
-- share of the burst still free after them (the account's room).
local function gcra(a, tat_field, rate, n)
  local interval = 60000 / rate
  local burst = math.max(n, math.floor(rate * burst_s / 60))
  local tat = math.max(tonumber(a.state[tat_field] or '0') or 0, now)
  local new_tat = tat + n * interval
  local wait = new_tat - burst * interval - now
  return wait, new_tat, (burst * interval - (new_tat - now)) / (burst * interval)
end

-- The account for a job of `n` images of `model`: nil and the shortest wait when none has room.
local function route(model, n)
  local best, best_wait = nil, nil
  for _, a in ipairs(accounts) do
    if not a.blocked and (a.models == '*' or string.find(a.models, ',' .. model .. ',', 1, true)) then
      local wait_i, tat_i, room_i = gcra(a, 'img_tat', a.ipm, n)
      local wait_r, tat_r, room_r = gcra(a, 'req_tat', a.rpm, 1)
      local wait = math.max(wait_i, wait_r, a.wait or 0)
      if wait > 0 then
        -- Blocked for the rest of the round: a smaller job behind this one must not take it.
        a.blocked = true
        if not best_wait or wait < best_wait then best_wait = wait end
      else
        local room = math.min(room_i, room_r, (a.cap - a.live) / a.cap)
        if not best or a.price < best.price or (a.price == best.price and room > best.room) then
          best = {a = a, room = room, price = a.price, tat_i = tat_i, tat_r = tat_r}
        end
      end
    end
  end
  return best, best_wait
end

local min_wait = nil
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
      local job = redis.call('HMGET', K.job(t, id), 'images', 'deadline', 'model', 'sources', 'mask')
      local n = tonumber(job[1] or '1') or 1
      local deadline = tonumber(job[2] or '')
      if deadline and deadline <= now then
        redis.call('LPOP', K.queue(t, prio))
        return {'expired', t, id}
      end
      local pick, wait = route(job[3] or '', n)
      if wait and (not min_wait or wait < min_wait) then min_wait = wait end
      -- No account has room for this job now: the tenant keeps its turn, and the next tenant
      -- may still go to an account this job cannot use.
      if pick then
        local a = pick.a
        redis.call('LPOP', K.queue(t, prio))
        local token = int(redis.call('INCR', K.sequence()))
        redis.call('HSET', K.job(t, id), 'token', token, 'admitted_at', int(now), 'account', a.name)
        redis.call('ZADD', K.inflight(), int(now + grace), R.slot(t, id))
        redis.call('ZADD', K.account_inflight(a.name), int(now + grace), R.slot(t, id))
        redis.call('ZADD', K.running(t), int(now + grace), id)
        redis.call('HSET', a.lim, 'img_tat', num(pick.tat_i), 'req_tat', num(pick.tat_r))
        local sec = tostring(math.floor(now / 1000))
        local sent = K.limiter_sent(a.name)
        redis.call('HINCRBY', sent, 'i' .. sec, n)
        redis.call('HINCRBY', sent, 'r' .. sec, 1)
        redis.call('EXPIRE', sent, 120)
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
        if live + 1 < slots then
          for _, b in ipairs(accounts) do
            local used = b.live
            if b == a then used = used + 1 end
            if not b.paused and used < b.cap then more = 1 end
          end
        end
        return {'admitted', t, id, token, int(n), more, a.name, job[3] or '', job[4] or '', job[5] or ''}
      end
    end
  end
end
if min_wait then return {'wait', int(math.ceil(min_wait))} end
if redis.call('ZCARD', K.fair()) == 0 then return {'empty'} end
return {'full'}
