-- Idempotency-Key, per tenant: claim a key for a request, or let it go if the request failed.
-- ARGV: prefix, tenant, key_hash, fingerprint, mode ('begin'|'abort'), lock_ttl_s
-- begin returns {'new'} | {'in_flight'} | {'mismatch'} | {'replay', status, body}
local t, k, fp, mode, ttl = ARGV[2], ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local key = K.idempotency(t, k)
local h = redis.call('HMGET', key, 'state', 'fingerprint', 'status', 'body')
if mode == 'abort' then
  if h[1] == 'in_flight' and h[2] == fp then redis.call('DEL', key) end
  return {'ok'}
end
if not h[1] then
  redis.call('HSET', key, 'state', 'in_flight', 'fingerprint', fp)
  redis.call('EXPIRE', key, ttl)
  return {'new'}
end
if h[2] ~= fp then return {'mismatch'} end
if h[1] == 'in_flight' then return {'in_flight'} end
return {'replay', h[3], h[4]}
