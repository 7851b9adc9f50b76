-- wrk script for tests/bench/bad_token_flood.py: post.lua's request (its
-- path in BENCH_POST_LUA), each connection waiting FLOOD_DELAY_MS before
-- its next one (0: none), so that the flood's offered rate need not
-- depend on how fast it is answered.

dofile(os.getenv("BENCH_POST_LUA"))

local d = tonumber(os.getenv("FLOOD_DELAY_MS") or "0") or 0
if d > 0 then
   function delay()
      return d
   end
end
