-- 80 % GET, 20 % PUT of single pages.
package.path = os.getenv("ZBENCH_LUA") .. "/?.lua;" .. package.path
local pages = require("pages")
request = function()
  if math.random() < 0.8 then
    return wrk.format("GET", "/dev/zram0/pages/" .. pages.random_slot())
  end
  return wrk.format("PUT", "/dev/zram0/pages/" .. pages.random_slot(), nil, pages.random_page())
end
