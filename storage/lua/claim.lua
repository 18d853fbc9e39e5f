-- Claim a due schedule entry for lease_ms: only one dispatcher gets it; if its holder dies,
-- the entry falls due again when the lease ends.
-- ARGV: prefix, member, lease_ms. Returns 1 if claimed.
local member, lease = ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local score = tonumber(redis.call('ZSCORE', K.schedule(), member) or '')
if not score or score > now then return 0 end
redis.call('ZADD', K.schedule(), int(now + lease), member)
return 1
