-- nginx's ceiling for batch-sized bodies: GET one static 64-page (256 KiB) file.
request = function() return wrk.format("GET", "/batch.bin") end
