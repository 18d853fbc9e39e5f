-- Create a tenant: its name in the tenant set and its record, together or not at all.
-- ARGV: prefix, tenant, then the record's field/value pairs.
-- Returns 1 if created, 0 if the name is taken (nothing written).
local t = ARGV[2]
if redis.call('SADD', K.tenants(), t) == 0 then return 0 end
redis.call('HSET', K.tenant(t), unpack(ARGV, 3))
return 1
