-- Applies one recording of metrics, once: a client that resends the call after losing the
-- reply finds its token taken and changes nothing.
-- KEYS: metrics hash, the recording's token key
-- ARGV: seconds the token is kept, then per increment: field, 'i' (whole) or 'f', amount
if not redis.call('SET', KEYS[2], '', 'NX', 'EX', ARGV[1]) then return 0 end
for i = 2, #ARGV, 3 do
  if ARGV[i + 1] == 'i' then
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 2])
  else
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 2])
  end
end
return 1
