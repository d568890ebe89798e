-- Shared prelude of the scripts (prepended to each by pipeline/store.py, after the
-- constants it writes from pipeline/types.py: STATUS, the core job statuses; TERMINAL,
-- the set of those a job never leaves; STAGE, the stage statuses).
-- Every script takes its arguments as one JSON object, ARGV[1] (A below), and is given
-- every key it touches in KEYS. Where there is a job, KEYS[1] is its hash.
local A = cjson.decode(ARGV[1])

-- Returns 'ok', or why the job must not be touched: 'gone' (deleted or expired),
-- 'terminal' (completed, failed or cancelled), 'stale' (a newer run of the job superseded
-- the message's run).
local function job_state(run)
  if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
  local h = redis.call('HMGET', KEYS[1], 'status', 'run')
  if TERMINAL[h[1]] then return 'terminal' end
  if run ~= nil and tonumber(h[2]) ~= run then return 'stale' end
  return 'ok'
end

-- Progress never moves backwards: keep the larger of the stored and the new value.
local function raise_field(field, value)
  local current = tonumber(redis.call('HGET', KEYS[1], field) or '0') or 0
  if tonumber(value) > current then redis.call('HSET', KEYS[1], field, value) end
end

local function owns(stream, group, consumer, id)
  local p = redis.call('XPENDING', stream, group, id, id, 1, consumer)
  return #p > 0
end

-- Every status has an index of its jobs beside the jobs index, scored like it by creation
-- time, so that counting and listing the jobs of one status never reads every job. A
-- status changes only here, moving the job between indexes in the same step. Which index
-- the job leaves depends on the status stored in its hash, so the scripts that change a
-- status are given every status's index: A.status_keys maps each status to its key's
-- position in KEYS.
local function set_status(index, status)
  local id = redis.call('HGET', KEYS[1], 'id')
  local old = redis.call('HGET', KEYS[1], 'status')
  if old and A.status_keys[old] then redis.call('ZREM', KEYS[A.status_keys[old]], id) end
  redis.call('HSET', KEYS[1], 'status', status)
  local created = redis.call('ZSCORE', index, id)
  if created then redis.call('ZADD', KEYS[A.status_keys[status]], created, id) end
end

-- The expiry index says when the job's hash expires, ttl seconds from now, on the
-- server's clock like the expiry itself.
local function note_expiry(expiry, ttl)
  local now = redis.call('TIME')
  local at = tonumber(now[1]) + tonumber(now[2]) / 1e6 + tonumber(ttl)
  redis.call('ZADD', expiry, at, redis.call('HGET', KEYS[1], 'id'))
end

-- The job's hash expires ttl seconds from now.
local function expire_job(expiry, ttl)
  redis.call('EXPIRE', KEYS[1], ttl)
  note_expiry(expiry, ttl)
end

-- A job created with an API key is also in its owner's index (KEYS[A.owner_key]), so that
-- a client's listing reads only its own jobs; the owner joins the set of owners.
local function index_owner(index, owners)
  local h = redis.call('HMGET', KEYS[1], 'id', 'owner')
  if not h[2] or not A.owner_key then return end
  redis.call('ZADD', KEYS[A.owner_key], redis.call('ZSCORE', index, h[1]), h[1])
  redis.call('SADD', owners, h[2])
end
