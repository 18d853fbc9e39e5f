-- Put a tenant on a plan, or on none (''). Jobs already submitted keep the terms they hold;
-- submissions priced on the previous plan are refused by hold.lua ('plan_changed').
-- ARGV: prefix, tenant, plan
-- Returns {'ok'} | {'no_tenant'} | {'no_plan'}.
local t, plan = ARGV[2], ARGV[3]
if redis.call('EXISTS', K.tenant(t)) == 0 then return {'no_tenant'} end
if plan == '' then
  redis.call('HDEL', K.tenant(t), 'plan')
  return {'ok'}
end
if redis.call('SISMEMBER', K.plans(), plan) == 0 then return {'no_plan'} end
redis.call('HSET', K.tenant(t), 'plan', plan)
return {'ok'}
