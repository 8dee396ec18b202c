import ZSync
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// zramd's `application_id` in the SQLite header ("zram"): marks files this module created,
/// so an unrelated file named as `backing_dev` is refused instead of wiped.
let zramdApplicationID: UInt32 = 0x7A72_616D

/// The store's own descriptor on the backing file. It
/// - holds an exclusive `flock` for the store's lifetime (a second store on the same
///   file, in this process or another, gets EBUSY — zram opens its backing device O_EXCL);
/// - remembers the file's identity (device, inode) so a removed or replaced file is noticed.
///
/// `flock` locks are independent of the POSIX (fcntl) locks SQLite takes, so this
/// descriptor does not disturb SQLite's locking. It is closed only after every SQLite
/// connection on the file is closed (closing any descriptor of a file drops the
/// process's POSIX locks on it).
final class FileGuard: Sendable {
    let path: String
    /// The descriptor, -1 once closed. Its lock covers only the few syscalls that use it
    /// (fstat/stat/access/ftruncate/close), never SQLite I/O, so a status check can never
    /// fstat a descriptor number that `closeDescriptor` has just released for reuse.
    private let fd: Locked<Int32>
    private let device: UInt64
    private let inode: UInt64

    /// What the file held when the store opened it.
    enum Previous: Sendable {
        case created
        case empty
        /// A store of ours: the bytes of the file and its write-ahead log.
        case zramdStore(bytes: Int64)
    }

    let previous: Previous

    init(path: String) throws(BackingError) {
        self.path = path
        var st = stat()
        if lstat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFLNK {
                throw .invalidArgument("backing file \(path) is a symbolic link")
            }
            if (st.st_mode & S_IFMT) != S_IFREG {
                throw .invalidArgument("backing file \(path) is not a regular file")
            }
        }
        let existed = lstat(path, &st) == 0
        // Walked below the data directory: no symbolic link at any component (`DataDirectory`).
        let descriptor = DataDirectory.open(path, O_RDWR | O_CREAT | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw .io("cannot open backing file \(path): \(FileGuard.errnoText())")
        }
        var ok = false
        defer { if !ok { close(descriptor) } }
        if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
            throw .busy("backing file \(path) is in use by another backing store")
        }
        guard fstat(descriptor, &st) == 0 else {
            throw .io("cannot stat backing file \(path): \(FileGuard.errnoText())")
        }
        device = UInt64(st.st_dev)
        inode = UInt64(st.st_ino)
        if !existed {
            previous = .created
        } else if st.st_size == 0 {
            previous = .empty
        } else {
            var header = [UInt8](repeating: 0, count: 100)
            let n = header.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, 100, 0) }
            let magic = Array("SQLite format 3".utf8) + [0]
            guard n == 100, Array(header[0..<16]) == magic else {
                throw .invalidArgument(
                    "\(path) exists and is not a SQLite database; refusing to overwrite it (remove it first)")
            }
            let appID = header[68..<72].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard appID == zramdApplicationID else {
                throw .invalidArgument(
                    "\(path) is a SQLite database that zramd did not create; refusing to overwrite it")
            }
            // The write-ahead log holds the pages written since the last checkpoint.
            var wal = stat()
            let walBytes = stat(path + "-wal", &wal) == 0 ? Int64(wal.st_size) : 0
            previous = .zramdStore(bytes: Int64(st.st_size) + walBytes)
        }
        fd = Locked(descriptor)
        ok = true
    }

    deinit { closeDescriptor() }

    /// Closes the descriptor (drops the flock). Call only after every SQLite connection is closed.
    func closeDescriptor() {
        fd.withLock { descriptor in
            if descriptor >= 0 { close(descriptor) }
            descriptor = -1
        }
    }

    /// Empties the file: the previous run's contents do not survive (see docs/BACKING_STORE.md).
    /// Removes the old `-wal`/`-shm` first so SQLite cannot replay an old log into the new file.
    func discardContents() throws(BackingError) {
        for suffix in ["-wal", "-shm", "-journal"] {
            if DataDirectory.unlink(path + suffix) != 0 && errno != ENOENT {
                throw .io("cannot remove \(path + suffix): \(FileGuard.errnoText())")
            }
        }
        if fd.withLock({ ftruncate($0, 0) }) != 0 {
            throw .io("cannot truncate backing file \(path): \(FileGuard.errnoText())")
        }
    }

    /// Why the file can no longer be used, or nil while it is healthy.
    /// `forWrite` also checks that it can still be written (EACCES/EPERM/EROFS, e.g. `chattr +i`).
    func problem(forWrite: Bool) -> String? {
        fd.withLock { descriptor in check(descriptor, forWrite: forWrite) }
    }

    private func check(_ descriptor: Int32, forWrite: Bool) -> String? {
        guard descriptor >= 0 else { return "backing store is closed" }
        var st = stat()
        if fstat(descriptor, &st) == 0, st.st_nlink == 0 {
            return "backing file \(path) was removed while in use"
        }
        if stat(path, &st) != 0 {
            return "backing file \(path) is gone: \(FileGuard.errnoText())"
        }
        if UInt64(st.st_dev) != device || UInt64(st.st_ino) != inode {
            return "backing file \(path) was replaced by another file while in use"
        }
        if forWrite {
            for file in [path, path + "-wal"] where access(file, F_OK) == 0 {
                if access(file, W_OK) != 0 {
                    return "backing file \(file) is not writable: \(FileGuard.errnoText())"
                }
            }
        }
        return nil
    }

    static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }
}
