/**
 * The RedisStore's writes as Lua scripts: each runs atomically, checks first, then writes the data,
 * INCRs the revision and XADDs the batch to the feed (entry id `<rev>-0`), all in one step.
 *
 * Every script gets the same KEYS (REDIS_KEYS, in order) and ARGV[1] = feed MAXLEN, ARGV[2] =
 * fencing token ('' for none), ARGV[3] = the prefix of blob keys; its own arguments follow. The
 * batch's changes are JSON built by the caller; a script picks among prepared pieces where the
 * outcome is only known inside it. A refusal is an error reply `<CODE> <message>`, CODE being a
 * ServingError code or FENCED.
 *
 * Layout (hashes unless said): apps name→app JSON; app-policy name→{policy,policyParams};
 * versions vkey→version JSON; replicas vkey→n; resources vkey→{cpus,memoryMb}; model-types
 * model→input type; model-counts model→versions; current model→version; links app→[models];
 * autoscaling model→settings; rev (string); feed (stream); leader:token (string, written by the
 * lease); blob-refs hash→versions using it; blob:<hash> (string); state key→value, and
 * app-state:<app> for `app/<app>/…` keys (dropped with the application).
 */

export const REDIS_KEYS = [
  'apps', 'app-policy', 'versions', 'replicas', 'resources', 'model-types', 'model-counts', 'current',
  'links', 'autoscaling', 'rev', 'feed', 'leader:token', 'blob-refs',
] as const;

const PRELUDE = `
local K = {}
for i, name in ipairs({${REDIS_KEYS.map((k) => `'${k}'`).join(', ')}}) do K[name] = KEYS[i] end
local function commit(changes)
  local rev = redis.call('INCR', K['rev'])
  redis.call('XADD', K['feed'], 'MAXLEN', '~', ARGV[1], rev .. '-0', 'c', changes)
  return rev
end
local function fenced()
  if ARGV[2] ~= '' and redis.call('GET', K['leader:token']) ~= ARGV[2] then
    return redis.error_reply('FENCED fencing token ' .. ARGV[2] .. ' is stale')
  end
end
`;

const script = (body: string) => PRELUDE + body;

export const SCRIPTS = {
  // ARGV: 4 name, 5 app, 6 policy, 7 changes
  clPutApp: script(`
if redis.call('HEXISTS', K['apps'], ARGV[4]) == 1 then return redis.error_reply('ALREADY_EXISTS application ' .. ARGV[4] .. ' already exists') end
redis.call('HSET', K['apps'], ARGV[4], ARGV[5])
redis.call('HSET', K['app-policy'], ARGV[4], ARGV[6])
return commit(ARGV[7])`),

  // ARGV: 4 name, 5 changes; KEYS[n+1] the app's state hash
  clDeleteApp: script(`
redis.call('HDEL', K['apps'], ARGV[4])
redis.call('HDEL', K['app-policy'], ARGV[4])
redis.call('HDEL', K['links'], ARGV[4])
redis.call('DEL', KEYS[#KEYS])
return commit(ARGV[5])`),

  // ARGV: 4 vkey, 5 name, 6 version, 7 input type, 8 version JSON, 9 replicas, 10 resources, 11 make current (1/0), 12 artifact hash, 13 changes
  clPutVersion: script(`
if redis.call('HEXISTS', K['versions'], ARGV[4]) == 1 then
  return redis.error_reply('ALREADY_EXISTS model ' .. ARGV[5] .. ' version ' .. ARGV[6] .. ' already exists')
end
local t = redis.call('HGET', K['model-types'], ARGV[5])
if t and t ~= ARGV[7] then
  return redis.error_reply('TYPE_MISMATCH model ' .. ARGV[5] .. ' has input type ' .. t .. '; a new version cannot use ' .. ARGV[7])
end
if ARGV[12] ~= '' then
  local blob = ARGV[3] .. ARGV[12]
  if redis.call('EXISTS', blob) == 0 then
    return redis.error_reply('STORAGE_UNAVAILABLE the artifact of model ' .. ARGV[5] .. ' version ' .. ARGV[6] .. ' left Redis before its version was saved (maxmemory eviction?); deploy it again')
  end
  redis.call('PERSIST', blob)
  redis.call('HINCRBY', K['blob-refs'], ARGV[12], 1)
end
redis.call('HSET', K['versions'], ARGV[4], ARGV[8])
redis.call('HSET', K['replicas'], ARGV[4], ARGV[9])
redis.call('HSET', K['resources'], ARGV[4], ARGV[10])
redis.call('HSET', K['model-types'], ARGV[5], ARGV[7])
redis.call('HINCRBY', K['model-counts'], ARGV[5], 1)
if ARGV[11] == '1' then redis.call('HSET', K['current'], ARGV[5], ARGV[6]) end
return commit(ARGV[13])`),

  // ARGV: 4 vkey, 5 name, 6 version, 7 next vkey ('' none), 8 next version, 9 change: deleted, 10 change: current = next, 11 change: current = none
  clDeleteVersion: script(`
local vj = redis.call('HGET', K['versions'], ARGV[4])
if not vj then return commit('[' .. ARGV[9] .. ']') end
local hash = cjson.decode(vj).artifactHash
redis.call('HDEL', K['versions'], ARGV[4])
redis.call('HDEL', K['replicas'], ARGV[4])
redis.call('HDEL', K['resources'], ARGV[4])
if type(hash) == 'string' and hash ~= '' then
  if redis.call('HINCRBY', K['blob-refs'], hash, -1) <= 0 then
    redis.call('HDEL', K['blob-refs'], hash)
    redis.call('DEL', ARGV[3] .. hash)
  end
end
local changes = ARGV[9]
if redis.call('HGET', K['current'], ARGV[5]) == ARGV[6] then
  if ARGV[7] ~= '' and redis.call('HEXISTS', K['versions'], ARGV[7]) == 1 then
    redis.call('HSET', K['current'], ARGV[5], ARGV[8])
    changes = changes .. ',' .. ARGV[10]
  else
    redis.call('HDEL', K['current'], ARGV[5])
    changes = changes .. ',' .. ARGV[11]
  end
end
if redis.call('HINCRBY', K['model-counts'], ARGV[5], -1) <= 0 then
  redis.call('HDEL', K['model-counts'], ARGV[5])
  redis.call('HDEL', K['model-types'], ARGV[5])
  redis.call('HDEL', K['autoscaling'], ARGV[5])
  local all = redis.call('HGETALL', K['links'])
  for i = 1, #all, 2 do
    local kept, found = {}, false
    for _, m in ipairs(cjson.decode(all[i + 1])) do
      if m == ARGV[5] then found = true else table.insert(kept, m) end
    end
    -- cjson writes an empty table as {}, so an empty list is written by hand
    if found then redis.call('HSET', K['links'], all[i], #kept == 0 and '[]' or cjson.encode(kept)) end
  end
end
return commit('[' .. changes .. ']')`),

  // ARGV: 4 vkey, 5 name, 6 version, 7 changes
  clSetCurrent: script(`
if redis.call('HEXISTS', K['versions'], ARGV[4]) == 0 then
  return redis.error_reply('VERSION_NOT_FOUND model ' .. ARGV[5] .. ' has no version ' .. ARGV[6])
end
redis.call('HSET', K['current'], ARGV[5], ARGV[6])
return commit(ARGV[7])`),

  // ARGV: 4 vkey, 5 replicas, 6 changes
  clSetReplicas: script(`
local f = fenced()
if f then return f end
if redis.call('HEXISTS', K['versions'], ARGV[4]) == 0 then return redis.error_reply('VERSION_NOT_FOUND version ' .. ARGV[4] .. ' does not exist') end
redis.call('HSET', K['replicas'], ARGV[4], ARGV[5])
return commit(ARGV[6])`),

  // ARGV: 4 vkey, 5 resources, 6 changes
  clSetResources: script(`
if redis.call('HEXISTS', K['versions'], ARGV[4]) == 0 then return redis.error_reply('VERSION_NOT_FOUND version ' .. ARGV[4] .. ' does not exist') end
redis.call('HSET', K['resources'], ARGV[4], ARGV[5])
return commit(ARGV[6])`),

  // ARGV: 4 model, 5 settings ('' = off), 6 vkey ('' = no count), 7 count, 8 changes
  clSetAutoscaling: script(`
local f = fenced()
if f then return f end
if ARGV[5] ~= '' then
  if not redis.call('HGET', K['model-counts'], ARGV[4]) then return redis.error_reply('MODEL_NOT_FOUND model ' .. ARGV[4] .. ' does not exist') end
  redis.call('HSET', K['autoscaling'], ARGV[4], ARGV[5])
else
  redis.call('HDEL', K['autoscaling'], ARGV[4])
end
if ARGV[6] ~= '' and redis.call('HEXISTS', K['versions'], ARGV[6]) == 1 then redis.call('HSET', K['replicas'], ARGV[6], ARGV[7]) end
return commit(ARGV[8])`),

  // ARGV: 4 app, 5 models JSON, 6 changes
  clSetLinks: script(`
if redis.call('HEXISTS', K['apps'], ARGV[4]) == 0 then return redis.error_reply('APP_NOT_FOUND application ' .. ARGV[4] .. ' does not exist') end
redis.call('HSET', K['links'], ARGV[4], ARGV[5])
return commit(ARGV[6])`),

  // ARGV: 4 app, 5 policy JSON, 6 changes
  clSetPolicy: script(`
if redis.call('HEXISTS', K['apps'], ARGV[4]) == 0 then return redis.error_reply('APP_NOT_FOUND application ' .. ARGV[4] .. ' does not exist') end
redis.call('HSET', K['app-policy'], ARGV[4], ARGV[5])
return commit(ARGV[6])`),

  /** The whole registry and its revision, read in one step. */
  clSnapshot: script(`
return {
  redis.call('GET', K['rev']) or '0',
  redis.call('HGETALL', K['apps']), redis.call('HGETALL', K['app-policy']), redis.call('HGETALL', K['versions']),
  redis.call('HGETALL', K['replicas']), redis.call('HGETALL', K['resources']), redis.call('HGETALL', K['current']),
  redis.call('HGETALL', K['links']), redis.call('HGETALL', K['autoscaling']),
}`),
} as const;

export type ScriptName = keyof typeof SCRIPTS;
