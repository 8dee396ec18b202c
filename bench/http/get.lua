-- GET one random stored page.
package.path = os.getenv("ZBENCH_LUA") .. "/?.lua;" .. package.path
local pages = require("pages")
request = function()
  return wrk.format("GET", "/dev/zram0/pages/" .. pages.random_slot())
end
