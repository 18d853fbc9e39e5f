-- Give back a hold that will not become a job (the submission failed, or its API died).
-- ARGV: prefix, hold_id. Returns 1 if released, 0 if it was already gone.
local hold = ARGV[2]
local h = hget_all(K.hold(hold))
redis.call('ZREM', K.holds(), hold)
if not h['tenant'] then return 0 end
for _, k in ipairs(bucket_keys(h['tenant'], h['day'], h['month'])) do
  redis.call('HINCRBY', k, 'reserved', int(-tonumber(h['amount'])))
end
if (h['plan'] or '') ~= '' then
  redis.call('HINCRBY', K.credits(h['tenant']), 'reserved', int(-tonumber(h['credits'] or '0')))
end
redis.call('DEL', K.hold(hold))
return 1
