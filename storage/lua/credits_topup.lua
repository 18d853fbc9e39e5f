-- Add credits to a tenant's balance, and record the top-up in its ledger.
-- ARGV: prefix, tenant, credits, ceiling (largest balance allowed), note
-- Returns {'ok', balance, reserved} | {'no_tenant'} | {'too_large', balance}.
local t, credits, ceiling, note = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
if redis.call('EXISTS', K.tenant(t)) == 0 then return {'no_tenant'} end
local balance, held = credit_state(t)
if balance + credits > ceiling then return {'too_large', int(balance)} end
local now = now_ms()
local day = civil(now)
balance = redis.call('HINCRBY', K.credits(t), 'balance', int(credits))
redis.call('XADD', K.ledger(t), '*', 'job', '', 'kind', 'topup', 'amount', '0', 'released', '0',
           'model', '', 'usage', '', 'day', day, 'at', int(now), 'note', note, 'credits',
           int(credits))
return {'ok', int(balance), int(held)}
