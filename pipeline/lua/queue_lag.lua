-- KEYS: a stage's stream; ARGV: its consumer group, count no further than this (0: all).
return waiting(KEYS[1], ARGV[1], tonumber(ARGV[2]))
