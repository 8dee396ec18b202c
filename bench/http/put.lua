-- PUT a random sample page into a random slot.
package.path = os.getenv("ZBENCH_LUA") .. "/?.lua;" .. package.path
local pages = require("pages")
request = function()
  return wrk.format("PUT", "/dev/zram0/pages/" .. pages.random_slot(), nil, pages.random_page())
end
