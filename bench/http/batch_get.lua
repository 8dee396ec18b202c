-- GET 64 consecutive pages from a random start.
package.path = os.getenv("ZBENCH_LUA") .. "/?.lua;" .. package.path
local pages = require("pages")
request = function()
  return wrk.format("GET", "/dev/zram0/pages?from=" .. pages.random_slot(64) .. "&count=64")
end
