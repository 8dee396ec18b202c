
import ZSmalloc

// Until the HTTP layer lands, the executable prints what it would serve and exits.
let pool = ZsPool(pageSize: 4096)
print("zramd: listen 127.0.0.1:7070, device zram0, disksize 1073741824, comp_algorithm lz4")
print("zramd: allocator \(pool.classCount) size classes, huge class above \(pool.hugeClassSize) bytes")

