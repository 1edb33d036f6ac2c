// The Lua scripts run on the builds queue's keys. ioredis runs each by EVALSHA (defined
// with `defineCommand`) and loads it again after a Redis restart.

/*
 * One atomic step per delivery. A delivery id already recorded returns the job ids it
 * queued and changes nothing. Otherwise the delivery is recorded with its job ids, and
 * each build not queued before is marked queued and becomes its flake's latest build.
 *   KEYS: delivery key, then per build its queued marker and its flake's latest key
 *   ARGV: ttl, then per build its job id
 * Returns { recorded job ids, space-separated } for a known delivery, else per build "="
 * (queued before) or the previous latest job id ("" when none).
 */
export const RECORD_DELIVERY = `
local known = redis.call('SET', KEYS[1], table.concat(ARGV, ' ', 2), 'NX', 'GET', 'EX', ARGV[1])
if known then return { known } end
local out = { false }
for i = 1, (#KEYS - 1) / 2 do
  if redis.call('SET', KEYS[2 * i], '1', 'NX', 'EX', ARGV[1]) then
    out[#out + 1] = redis.call('SET', KEYS[2 * i + 1], ARGV[1 + i], 'GET') or ''
  else
    out[#out + 1] = '='
  end
end
return out
`;

// The flake lock is released and renewed only by its owner: a lock that expired and was
// taken by another worker must not be released or extended by the one that lost it.
export const RELEASE_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
export const RENEW_LOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;
