-- Extend the lease of a running job, if this run still owns it.
-- ARGV: prefix, tenant, job_id, token, lease_ms. Returns 1 if renewed.
local t, id, token, lease = ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local key = K.job(t, id)
local st = redis.call('HMGET', key, 'status', 'token')
if st[2] ~= token or (st[1] ~= 'running' and st[1] ~= 'canceled') then return 0 end
local until_ms = now_ms() + lease
redis.call('HSET', key, 'lease_until', int(until_ms))
redis.call('ZADD', K.inflight(), 'XX', int(until_ms), R.slot(t, id))
local a = account_of(t, id)
if a ~= '' then redis.call('ZADD', K.account_inflight(a), 'XX', int(until_ms), R.slot(t, id)) end
redis.call('ZADD', K.running(t), 'XX', int(until_ms), id)
return 1
