-- Replace a tenant's stored webhook secrets with a re-sealed copy, only if they are still the
-- value that was read (a rotation in between wins).
-- ARGV: prefix, tenant, expected, sealed
-- Returns 1 if replaced, 0 if not.
local key = K.tenant(ARGV[2])
if redis.call('HGET', key, 'webhook_secrets') ~= ARGV[3] then return 0 end
redis.call('HSET', key, 'webhook_secrets', ARGV[4])
return 1
