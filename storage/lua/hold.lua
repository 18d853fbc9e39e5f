-- Reserve an amount against every budget of a tenant, before anything is stored.
-- ARGV: prefix, tenant, hold_id, amount (micro-dollars), hold_ttl_ms
-- Returns {'ok', day, month} or {'budget_exceeded', period, limit, remaining}.
local t, hold, amount, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local day, month = civil(now)
local keys = bucket_keys(t, day, month)
local over = over_budget(t, keys, amount)
if over then return {'budget_exceeded', over[1], int(over[2]), int(over[3])} end
for i = 1, 3 do
  redis.call('HINCRBY', keys[i], 'reserved', int(amount))
end
redis.call('EXPIRE', keys[1], 400 * 86400)
redis.call('EXPIRE', keys[2], 800 * 86400)
redis.call('HSET', K.hold(hold), 'tenant', t, 'amount', int(amount), 'day', day,
           'month', month)
redis.call('ZADD', K.holds(), int(now + ttl), hold)
return {'ok', day, month}
