-- Add credits to a tenant's balance, and record the top-up in its ledger. With an
-- Idempotency-Key (its hash), the same key and request again answers what the first answered
-- and adds nothing; the same key with another request is refused.
-- ARGV: prefix, tenant, credits, ceiling (largest balance allowed), note, key_hash ('' for none),
--       fingerprint, key_ttl_s
-- Returns {'ok', balance, reserved, replayed (0|1)} | {'no_tenant'} | {'too_large', balance}
--       | {'key_reused'}.
local t, credits, ceiling, note = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local key_hash, fingerprint, ttl = ARGV[6] or '', ARGV[7] or '', tonumber(ARGV[8] or '0') or 0
if redis.call('EXISTS', K.tenant(t)) == 0 then return {'no_tenant'} end
local ikey = nil
if key_hash ~= '' then
  ikey = K.topup_idempotency(t, key_hash)
  local seen = redis.call('HMGET', ikey, 'fingerprint', 'balance', 'reserved')
  if seen[1] then
    if seen[1] ~= fingerprint then return {'key_reused'} end
    return {'ok', tonumber(seen[2]), tonumber(seen[3]), 1}
  end
end
local balance, held = credit_state(t)
if balance + credits > ceiling then return {'too_large', int(balance)} end
local now = now_ms()
local day = civil(now)
balance = redis.call('HINCRBY', K.credits(t), 'balance', int(credits))
redis.call('XADD', K.ledger(t), '*', 'job', '', 'kind', 'topup', 'amount', '0', 'released', '0',
           'model', '', 'usage', '', 'day', day, 'at', int(now), 'note', note, 'credits',
           int(credits))
if ikey then
  redis.call('HSET', ikey, 'fingerprint', fingerprint, 'balance', int(balance), 'reserved', int(held))
  redis.call('EXPIRE', ikey, ttl)
end
return {'ok', int(balance), int(held), 0}
