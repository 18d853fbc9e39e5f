-- Reserve an amount against every budget of a tenant, and on a plan its credits, before
-- anything is stored. The tenant's plan must still be the one the credits were priced on.
-- ARGV: prefix, tenant, hold_id, amount (micro-dollars), hold_ttl_ms, plan ('' for none),
--       credits
-- Returns {'ok', day, month} | {'budget_exceeded', period, limit, remaining}
--       | {'insufficient_credits', balance, available} | {'plan_changed', plan}.
local t, hold, amount, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local plan, credits = ARGV[6] or '', tonumber(ARGV[7] or '0') or 0
local current = redis.call('HGET', K.tenant(t), 'plan') or ''
if current ~= plan then return {'plan_changed', current} end
local now = now_ms()
local day, month = civil(now)
local keys = bucket_keys(t, day, month)
local over = over_budget(t, keys, amount)
if over then return {'budget_exceeded', over[1], int(over[2]), int(over[3])} end
if plan ~= '' then
  local balance, held = credit_state(t)
  if held + credits > balance then
    return {'insufficient_credits', int(balance), int(math.max(0, balance - held))}
  end
  redis.call('HINCRBY', K.credits(t), 'reserved', int(credits))
end
for i = 1, 3 do
  redis.call('HINCRBY', keys[i], 'reserved', int(amount))
end
redis.call('EXPIRE', keys[1], 400 * 86400)
redis.call('EXPIRE', keys[2], 800 * 86400)
redis.call('HSET', K.hold(hold), 'tenant', t, 'amount', int(amount), 'day', day,
           'month', month, 'plan', plan, 'credits', int(credits))
redis.call('ZADD', K.holds(), int(now + ttl), hold)
return {'ok', day, month}
