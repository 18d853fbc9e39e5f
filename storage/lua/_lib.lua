-- Shared helpers, prepended to every editq script when it is loaded, after the generated
-- prelude (storage/redis.py `prelude`): `P` (the prefix, ARGV[1]), the key builders `K`
-- (storage/keys.py) and the record builders `R` (storage/records.py). Scripts spell no key or
-- record themselves. editq runs on one Redis (not Cluster).

-- editq's clock offset (ms), passed second by every caller and taken out of ARGV so each
-- script's own arguments keep their places.
local CLOCK_OFFSET = tonumber(table.remove(ARGV, 2)) or 0

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + CLOCK_OFFSET
end

local function int(n)
  return string.format('%d', n)
end

local function num(n)
  return string.format('%.17g', n)
end

-- Civil date (UTC) of a unix time in ms: 'YYYY-MM-DD', 'YYYY-MM' (H. Hinnant's algorithm).
local function civil(ms)
  local z = math.floor(ms / 86400000) + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02d', y, m, d), string.format('%04d-%02d', y, m)
end

-- The first budget of tenant t that `amount` more would overshoot, as
-- {period, limit, remaining}, or nil when every budget has room.
local function over_budget(t, keys, amount)
  local limits = redis.call('HMGET', K.tenant(t), 'budget_day', 'budget_month', 'budget_total')
  local periods = {'day', 'month', 'total'}
  for i = 1, 3 do
    local limit = tonumber(limits[i] or '')
    if limit then
      local b = redis.call('HMGET', keys[i], 'reserved', 'spent')
      local used = (tonumber(b[1] or '0') or 0) + (tonumber(b[2] or '0') or 0)
      if used + amount > limit then
        return {periods[i], limit, math.max(0, limit - used)}
      end
    end
  end
  return nil
end

local function bucket_keys(t, day, month)
  return {K.budget_day(t, day), K.budget_month(t, month), K.budget_total(t)}
end

local function hget_all(key)
  local flat = redis.call('HGETALL', key)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  return h
end

-- Put a tenant on the fair-queue ring if it is not there (start-time fair queueing).
local function activate(t)
  if redis.call('ZSCORE', K.fair(), t) then return end
  local weight = tonumber(redis.call('HGET', K.tenant(t), 'weight') or '1') or 1
  if weight <= 0 then weight = 1 end
  local burst = tonumber(redis.call('HGET', K.fair_cfg(), 'burst') or '10') or 10
  local clock = tonumber(redis.call('GET', K.fair_clock()) or '0') or 0
  local saved = tonumber(redis.call('HGET', K.fair_vt(), t) or '0') or 0
  local vt = math.max(saved, clock - burst / weight)
  redis.call('ZADD', K.fair(), num(vt), t)
end

local function wake()
  redis.call('LPUSH', K.wake(), '1')
  redis.call('LTRIM', K.wake(), 0, 0)
end

local function enqueue(t, id, prio, head)
  if head then
    redis.call('LPUSH', K.queue(t, prio), id)
  else
    redis.call('RPUSH', K.queue(t, prio), id)
  end
  activate(t)
  wake()
end

-- The account a job was admitted to ('' before its first admission).
local function account_of(t, id)
  return redis.call('HGET', K.job(t, id), 'account') or ''
end

local function drop_slot(t, id)
  redis.call('ZREM', K.inflight(), R.slot(t, id))
  local a = account_of(t, id)
  if a ~= '' then redis.call('ZREM', K.account_inflight(a), R.slot(t, id)) end
  redis.call('ZREM', K.running(t), id)
end

-- Metrics (storage/metrics.py exposes them; editq/telemetry.py defines them). A name or label
-- count the Python side does not define is skipped rather than failing the transition.
local function count_metric(name, by, ...)
  if R.metric_labels[name] ~= select('#', ...) then return end
  redis.call('HINCRBY', K.metrics(), R.metric(name, ...), by)
end

local function observe_metric(name, value, ...)
  local bounds = R.metric_buckets[name]
  if not bounds or R.metric_labels[name] ~= select('#', ...) then return end
  local index = #bounds
  for i, bound in ipairs(bounds) do
    if value <= bound then
      index = i - 1
      break
    end
  end
  local labels = {...}
  labels[#labels + 1] = index
  redis.call('HINCRBY', K.metrics(), R.metric(name, unpack(labels)), 1)
  labels[#labels] = R.metric_sum
  redis.call('HINCRBYFLOAT', K.metrics(), R.metric(name, unpack(labels)), num(value))
end

local FINAL = {succeeded = true, failed = true, canceled = true, expired = true}

-- A job's first start (its queue wait) and its end (status, model, age) in the metrics.
local function measure(job, status, now)
  local created = tonumber(job['created_at'] or '')
  local age = created and math.max(0, (now - created) / 1000)
  if status == 'running' then
    if age then observe_metric('editq_job_queue_seconds', age, job['priority'] or '') end
  elseif FINAL[status] then
    count_metric('editq_jobs_finished', 1, status, job['model'] or '')
    if age then observe_metric('editq_job_duration_seconds', age, status) end
  end
end

-- Append a status change to the job's event stream and, if the job's webhook listens for
-- it, to the outbox (the schedule), where a dispatcher turns it into a delivery.
local function emit(t, id, job, status, now, reason)
  local key = K.events(t, id)
  redis.call('XADD', key, 'MAXLEN', '~', '200', '*', 'status', status, 'at', int(now),
             'reason', reason or '')
  local ttl = tonumber(job['retention_s'] or '0') or 0
  if ttl > 0 then redis.call('EXPIRE', key, ttl) end
  measure(job, status, now)
  local event = 'edit.' .. status
  if status == 'running' then event = 'edit.started' end
  local url = job['webhook_url'] or ''
  local events = job['webhook_events'] or ''
  if url ~= '' and string.find(events, '"' .. event .. '"', 1, true) then
    redis.call('ZADD', K.schedule(), int(now), R.event(t, id, event))
  end
end

-- The lane a job's money moves in: 'economy' (batch prices) or 'interactive'.
local function lane_of(job)
  if job['lane'] == 'economy' then return 'economy' end
  return 'interactive'
end

-- A tenant's credits: the balance (top-ups less charges) and what its jobs hold of it.
local function credit_state(t)
  local c = redis.call('HMGET', K.credits(t), 'balance', 'reserved')
  return tonumber(c[1] or '0') or 0, tonumber(c[2] or '0') or 0
end

-- Give back a job's credit reservation and charge `charged` of it, never more than it held,
-- so the balance cannot go below what other jobs hold. Returns charged, held (nil, nil for a
-- job on no plan).
local function settle_credits(t, job, charged)
  local held = tonumber(job['credits_reserved'] or '')
  if not held then return nil, nil end
  local take = math.min(math.max(charged or 0, 0), held)
  redis.call('HINCRBY', K.credits(t), 'reserved', int(-held))
  if take > 0 then redis.call('HINCRBY', K.credits(t), 'balance', int(-take)) end
  return take, held
end

-- Move a job's reservation out of its budget buckets (and its credits' hold, on a plan) and
-- record what was spent, at the prices of the job's lane. kind: 'settled' (actual > 0 or the
-- call was made) or 'released' (nothing billed). credits: what the job is charged on its plan
-- (0 unless it succeeded).
local function settle(t, id, job, actual, kind, usage, now, note, credits)
  local reserved = tonumber(job['reserved'] or '0') or 0
  if (job['settled'] or '') == '1' then return 0 end
  local keys = bucket_keys(t, job['budget_day'], job['budget_month'])
  for _, k in ipairs(keys) do
    redis.call('HINCRBY', k, 'reserved', int(-reserved))
    if actual > 0 then redis.call('HINCRBY', k, 'spent', int(actual)) end
  end
  local model = job['model'] or ''
  local ukey = K.usage(t, job['budget_day'])
  if actual > 0 then
    redis.call('HINCRBY', ukey, R.usage_field(model, 'spent'), int(actual))
    count_metric('editq_cost_usd', int(actual), model)
  end
  redis.call('HINCRBY', ukey, R.usage_field(model, kind), 1)
  redis.call('EXPIRE', ukey, 400 * 86400)
  local charged, held = settle_credits(t, job, credits)
  if held and (credits or 0) > held then
    note = (note or '') .. (note and note ~= '' and '; ' or '') .. 'credits capped at the reservation'
  end
  local entry = {'job', id, 'kind', kind, 'amount', int(actual), 'released', int(reserved),
                 'model', model, 'usage', usage or '', 'day', job['budget_day'], 'at', int(now),
                 'note', note or '', 'lane', lane_of(job)}
  if held then
    for _, v in ipairs({'credits', int(charged), 'credits_released', int(held)}) do
      entry[#entry + 1] = v
    end
    redis.call('HSET', K.job(t, id), 'credits_charged', int(charged))
  end
  redis.call('XADD', K.ledger(t), '*', unpack(entry))
  redis.call('HSET', K.job(t, id), 'settled', '1', 'actual', int(actual))
  return actual
end

-- A run that ended without settling (its worker was lost, or Redis failed under it) after its
-- provider call went out: the provider may have billed that call although its result is gone.
-- Record it: 'lost_call' with its usage and price when the worker wrote them (charged to the
-- budgets' spend, since the provider bills it), else 'unknown_charge' with the attempt.
local function lost_call(t, id, job, now)
  local attempt = job['calling'] or ''
  if attempt == '' then return end
  local usage, actual = job['call_usage'] or '', tonumber(job['call_actual'] or '') or 0
  local kind, note = 'unknown_charge', 'attempt ' .. attempt ..
    ': the run was lost during its provider call; the provider may have billed it'
  local model = job['model'] or ''
  if usage ~= '' then
    kind, note = 'lost_call', 'attempt ' .. attempt .. ': billed, but the run was lost before settling'
    for _, k in ipairs(bucket_keys(t, job['budget_day'], job['budget_month'])) do
      if actual > 0 then redis.call('HINCRBY', k, 'spent', int(actual)) end
    end
    local ukey = K.usage(t, job['budget_day'])
    if actual > 0 then
      redis.call('HINCRBY', ukey, R.usage_field(model, 'spent'), int(actual))
      count_metric('editq_cost_usd', int(actual), model)
    end
    redis.call('EXPIRE', ukey, 400 * 86400)
  end
  redis.call('XADD', K.ledger(t), '*', 'job', id, 'kind', kind, 'amount', int(actual),
             'released', '0', 'model', model, 'usage', usage, 'day', job['budget_day'] or '',
             'at', int(now), 'note', note, 'lane', lane_of(job))
  redis.call('HDEL', K.job(t, id), 'calling', 'call_usage', 'call_actual')
end

local function call_done(t, id)
  redis.call('HDEL', K.job(t, id), 'calling', 'call_usage', 'call_actual')
end

local function retain(t, id, job)
  local ttl = tonumber(job['retention_s'] or '0') or 0
  if ttl > 0 then redis.call('EXPIRE', K.job(t, id), ttl) end
end

-- Put job t/id in the economy lane's collection and make sure a collection is scheduled: when
-- the oldest waiting job has waited `window` ms, or at once when `max_jobs` wait.
local function econ_enqueue(t, id, now, window, max_jobs)
  redis.call('ZADD', K.econ_pending(), 'NX', int(now), R.slot(t, id))
  local oldest = redis.call('ZRANGE', K.econ_pending(), 0, 0, 'WITHSCORES')
  local due = tonumber(oldest[2]) + window
  if redis.call('ZCARD', K.econ_pending()) >= max_jobs then due = now end
  local current = tonumber(redis.call('ZSCORE', K.schedule(), R.collect()) or '')
  if not current or due < current then redis.call('ZADD', K.schedule(), int(due), R.collect()) end
end

-- A job of economy batch b no longer waits for its result (canceled or expired). Once none
-- does, the batch's poller is due at once: it cancels the batch at the provider.
local function econ_left(b, now)
  local key = K.econ_batch(b)
  if redis.call('EXISTS', key) == 0 then return end
  if redis.call('HINCRBY', key, 'open', -1) <= 0 then
    redis.call('ZADD', K.schedule(), int(now), R.batch(b))
  end
end
