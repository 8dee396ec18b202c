-- PUT 64 sample pages at a random start.
package.path = os.getenv("ZBENCH_LUA") .. "/?.lua;" .. package.path
local pages = require("pages")
local bodies = {}
for b = 1, 16 do
  local parts = {}
  for i = 1, 64 do parts[i] = pages.random_page() end
  bodies[b] = table.concat(parts)
end
request = function()
  return wrk.format("PUT", "/dev/zram0/pages?from=" .. pages.random_slot(64), nil, bodies[math.random(#bodies)])
end
