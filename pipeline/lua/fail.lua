-- Fails the job with a readable reason and acknowledges the entry; with a dead-letter
-- stream, first copies the entry there (copy, then ack: never the other way round).
-- KEYS: job hash, its events channel, this stage's stream, dead-letter stream, jobs index
-- ARGV: group, consumer, entry id, stage, run, now, reason, dead-letter ('1'/'0'),
--       deliveries, job id
if not owns(KEYS[3], ARGV[1], ARGV[2], ARGV[3]) then return 'lost' end
if ARGV[8] == '1' then
  redis.call('XADD', KEYS[4], '*', 'job_id', ARGV[10], 'run', ARGV[5], 'stage', ARGV[4],
    'entry_id', ARGV[3], 'deliveries', ARGV[9], 'reason', ARGV[7], 'failed_at', ARGV[6])
end
local state = job_state(ARGV[5])
if state == 'ok' then
  local s = ARGV[4]
  set_status(KEYS[5], 'failed')
  redis.call('HSET', KEYS[1], 'error', ARGV[7],
    'stage_detail', s .. ' failed', s .. '.status', 'failed', s .. '.finished_at', ARGV[6],
    'updated_at', ARGV[6])
  redis.call('PUBLISH', KEYS[2], 'failed')
end
redis.call('XACK', KEYS[3], ARGV[1], ARGV[3])
return state
