-- nginx's ceiling: GET the same 4 KiB static file.
request = function() return wrk.format("GET", "/page.bin") end
