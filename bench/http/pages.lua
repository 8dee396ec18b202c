-- Shared by the zramd wrk scripts: the sample pages and the slot range.
-- ZBENCH_PAGES: a file of whole 4096-byte pages; ZBENCH_SLOTS: how many slots hold pages.
local M = {}
M.page_size = 4096
M.slots = tonumber(os.getenv("ZBENCH_SLOTS") or "14336")
local f = assert(io.open(os.getenv("ZBENCH_PAGES"), "rb"))
local data = f:read("*a")
f:close()
M.pages = {}
for i = 0, math.floor(#data / M.page_size) - 1 do
  M.pages[#M.pages + 1] = data:sub(i * M.page_size + 1, (i + 1) * M.page_size)
end
function M.random_page() return M.pages[math.random(#M.pages)] end
function M.random_slot(span) return math.random(0, M.slots - (span or 1)) end
return M
