-- Records the stage as done, hands the job to the next stage and acknowledges the entry,
-- all or nothing. A worker that no longer owns the entry changes nothing.
-- KEYS: job hash, its events channel, this stage's stream, next stage's stream, jobs index
-- ARGV: group, consumer, entry id, stage, run, now, next stage ('' = last), next job
--       status, overall progress, result path, seconds the next stream is kept after this
--       entry (0: for good)
if not owns(KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return 'lost' end
local state = job_state(ARGV[5])
local s = ARGV[4]
if state == 'ok' and redis.call('HGET', KEYS[1], s .. '.status') == 'done' then
  state = 'done'
end
if state == 'ok' then
  redis.call('HSET', KEYS[1], s .. '.status', 'done', s .. '.progress', '100',
    s .. '.finished_at', ARGV[6], 'updated_at', ARGV[6])
  if ARGV[7] ~= '' then
    set_status(KEYS[5], ARGV[8])
    redis.call('HSET', KEYS[1], ARGV[7] .. '.status', 'queued',
      'stage_detail', 'queued for ' .. ARGV[7])
    raise_field('progress', ARGV[9])
    redis.call('XADD', KEYS[4], '*', 'job_id', string.match(KEYS[1], '[^:]+$'), 'run', ARGV[5])
    keep_stream(KEYS[4], ARGV[11])
  else
    set_status(KEYS[5], 'completed')
    redis.call('HSET', KEYS[1], 'progress', '100', 'stage_detail', 'completed',
      'result_path', ARGV[10])
  end
  redis.call('PUBLISH', KEYS[2], 'finished')
end
redis.call('XACK', KEYS[3], ARGV[1], ARGV[3])
return state
