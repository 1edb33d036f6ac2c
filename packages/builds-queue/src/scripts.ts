// The Lua scripts run on the builds queue's keys. ioredis runs each by EVALSHA (defined
// with `defineCommand`) and loads it again after a Redis restart.

/*
 * One atomic step per delivery. A delivery id already recorded returns the job ids it
 * queued and changes nothing. A build not queued before whose flake already has its cap
 * of builds waiting refuses the whole delivery, recording nothing (a resend may succeed
 * once workers took some). Otherwise the delivery is recorded with its job ids, and each
 * build not queued before is marked queued, counted as waiting, and becomes its flake's
 * latest build.
 *   KEYS: delivery key, then per build its queued marker, its flake's latest key and its
 *         flake's waiting set
 *   ARGV: ttl, now (ms), then per build its job id and its flake's cap of waiting builds
 * Returns { recorded job ids, space-separated } for a known delivery; { false, '!', build
 * index (1-based), builds waiting } for a refused one; else per build "=" (queued before)
 * or the previous latest job id ("" when none).
 */
export const RECORD_DELIVERY = `
local known = redis.call('GET', KEYS[1])
if known then return { known } end
local builds = (#KEYS - 1) / 3
for i = 1, builds do
  if redis.call('EXISTS', KEYS[3 * i - 1]) == 0 then
    local waiting = redis.call('ZCARD', KEYS[3 * i + 1])
    if waiting >= tonumber(ARGV[2 + 2 * i]) then return { false, '!', i, waiting } end
  end
end
local ids = {}
for i = 1, builds do ids[i] = ARGV[1 + 2 * i] end
redis.call('SET', KEYS[1], table.concat(ids, ' '), 'EX', ARGV[1])
local out = { false }
for i = 1, builds do
  if redis.call('SET', KEYS[3 * i - 1], '1', 'NX', 'EX', ARGV[1]) then
    out[#out + 1] = redis.call('SET', KEYS[3 * i], ARGV[1 + 2 * i], 'GET') or ''
    redis.call('ZADD', KEYS[3 * i + 1], ARGV[2], ARGV[1 + 2 * i])
    redis.call('EXPIRE', KEYS[3 * i + 1], ARGV[1])
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
