import CSQLite
import ZSync
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension BackingStore {
    /// Resolves a `backing_dev` name to an absolute path inside `inDataDir`, or throws
    /// `.invalidPath` (EINVAL).
    ///
    /// Accepted: a plain file name or a relative path below the data directory (its parent
    /// directories must exist), or an absolute path that lies inside the data directory.
    /// Refused: an empty name, NUL bytes, any `..` component, a name naming the data
    /// directory itself or a directory, an absolute path outside, a symbolic link (the
    /// file itself, its `-wal`/`-shm` companions, or a parent directory) that leads outside
    /// the data directory, a dangling symbolic link, names longer than PATH_MAX.
    ///
    /// The result is canonical (symbolic links in the directory part resolved). A check alone
    /// cannot stop someone with write access to the data directory from swapping a link in
    /// before the open: so the data directory is registered with `DataDirectory`, and every
    /// later open of the result (the store's, SQLite's, a dictionary's) walks it component
    /// by component without following any link.
    public static func resolve(name: String, inDataDir dataDir: String) throws(BackingError) -> String {
        guard !name.isEmpty else { throw .invalidPath("backing device name is empty") }
        guard !name.utf8.contains(0), !dataDir.utf8.contains(0) else {
            throw .invalidPath("backing device name contains a NUL byte")
        }
        guard name.utf8.count < Int(PATH_MAX) else { throw .invalidPath("backing device name is too long") }
        guard let root = realPath(dataDir) else {
            throw .invalidPath("data directory \(dataDir) does not exist: \(FileGuard.errnoText())")
        }
        guard isDirectory(root) else { throw .invalidPath("data directory \(dataDir) is not a directory") }
        // From here on every open below it walks from its descriptor (see `DataDirectory`).
        DataDirectory.register(root)

        // The part of `name` below the data directory, as components.
        var relative: Substring
        if name.hasPrefix("/") {
            // An absolute path is fine only if it lies inside the data directory, as written
            // or after resolving the data directory's own links.
            let spelled = dataDir.hasSuffix("/") ? dataDir : dataDir + "/"
            if name.hasPrefix(root == "/" ? "/" : root + "/") {
                relative = name.dropFirst(root == "/" ? 1 : root.count + 1)
            } else if name.hasPrefix(spelled) {
                relative = name.dropFirst(spelled.count)
            } else {
                throw .invalidPath("\(name) is outside the data directory \(dataDir)")
            }
        } else {
            relative = Substring(name)
        }
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true)
        guard let last = parts.last else { throw .invalidPath("\(name) names the data directory itself") }
        if parts.contains("..") { throw .invalidPath("\(name) contains a '..' component") }
        if last == "." || relative.hasSuffix("/") { throw .invalidPath("\(name) names a directory, not a file") }

        // The directory part must exist and, links resolved, stay inside the data directory.
        let parentComponents = parts.dropLast().filter { $0 != "." }
        let parentSpelled = ([root] + parentComponents.map(String.init)).joined(separator: "/")
        guard let parent = realPath(parentSpelled) else {
            throw .invalidPath("directory of \(name) does not exist inside the data directory")
        }
        guard inside(parent, root) else {
            throw .invalidPath("\(name) leads outside the data directory through a symbolic link")
        }
        guard isDirectory(parent) else { throw .invalidPath("directory of \(name) is not a directory") }
        let candidate = (parent == "/" ? "" : parent) + "/" + last

        // The file and SQLite's companion files: a link must resolve, and stay inside.
        var resolved = candidate
        for (index, file) in [candidate, candidate + "-wal", candidate + "-shm"].enumerated() {
            var st = stat()
            guard lstat(file, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFLNK {
                guard let target = realPath(file) else {
                    throw .invalidPath("\(name): \(file) is a dangling symbolic link")
                }
                guard inside(target, root) else {
                    throw .invalidPath("\(name): \(file) is a symbolic link leading outside the data directory")
                }
                if index == 0 { resolved = target }
            } else if index == 0 && (st.st_mode & S_IFMT) == S_IFDIR {
                throw .invalidPath("\(name) is a directory")
            }
        }
        if isDirectory(resolved) { throw .invalidPath("\(name) is a directory") }
        guard resolved != root else { throw .invalidPath("\(name) names the data directory itself") }
        return resolved
    }

    private static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    private static func inside(_ path: String, _ root: String) -> Bool {
        path == root || path.hasPrefix(root == "/" ? "/" : root + "/")
    }

    private static func realPath(_ path: String) -> String? { canonicalPath(path) }
}

/// `realpath(3)`, or nil when the path (or a link in it) does not resolve.
private func canonicalPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

/// Opens files inside data directories without following any symbolic link.
///
/// `BackingStore.resolve` checks a name, but the file is opened later: a symbolic link
/// swapped in between, at the file or at any parent directory, would lead outside. So every
/// open of a path inside a registered data directory walks it from the directory's own
/// descriptor one component at a time with `openat(…, O_NOFOLLOW)`: a link at any
/// component fails the open (ELOOP or ENOTDIR) instead of being followed, and `..` is
/// refused outright, so the file opened is the one at that path below the directory, or
/// none. SQLite's files (the database, its `-wal`, `-shm` and `-journal`) take the same
/// route: `install` replaces the `open` and `unlink` system calls of SQLite's unix VFS
/// (`xSetSystemCall`, SQLite's supported hook) with these walks. Paths outside every data
/// directory are opened as before.
public enum DataDirectory {
    /// Canonical data directories (`realpath`), registered by `BackingStore.resolve`.
    private static let roots = Locked<Set<String>>([])

    /// Walks every later open of a path below `root` (canonical, no trailing slash).
    package static func register(_ root: String) {
        _ = sqliteHooks
        roots.withLock { _ = $0.insert(root) }
    }

    /// The registered directory that `path` lies below, and the components after it.
    static func split(_ path: String) -> (root: String, parts: [Substring])? {
        let known = roots.withLock { $0 }
        for root in known where path.hasPrefix(root == "/" ? "/" : root + "/") {
            let rest = path.dropFirst(root == "/" ? 1 : root.count + 1)
            return (root, rest.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." })
        }
        return nil
    }

    /// `open(2)` of `path`, walking it when it lies below a registered data directory.
    /// Returns the descriptor or -1 with `errno` set.
    public static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        guard let (root, parts) = split(path) else { return Glibc.open(path, flags | O_CLOEXEC, mode) }
        return walk(root, parts) { directory, leaf in openat(directory, leaf, flags | O_NOFOLLOW | O_CLOEXEC, mode) }
    }

    /// `unlink(2)` of `path`, walking it when it lies below a registered data directory.
    public static func unlink(_ path: String) -> Int32 {
        guard let (root, parts) = split(path) else { return Glibc.unlink(path) }
        return walk(root, parts) { directory, leaf in unlinkat(directory, leaf, 0) }
    }

    /// Opens each directory of `parts` below `root` with O_NOFOLLOW, then runs `last` on the
    /// final directory's descriptor and the last component.
    private static func walk(_ root: String, _ parts: [Substring], _ last: (Int32, String) -> Int32) -> Int32 {
        guard let leaf = parts.last, !parts.contains("..") else {
            errno = parts.isEmpty ? EISDIR : EACCES
            return -1
        }
        var directory = Glibc.open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard directory >= 0 else { return -1 }
        for part in parts.dropLast() {
            let next = openat(directory, String(part), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            let saved = errno
            close(directory)
            guard next >= 0 else {
                errno = saved
                return -1
            }
            directory = next
        }
        let result = last(directory, String(leaf))
        let saved = errno
        close(directory)
        errno = saved
        return result
    }

    /// Installs the walks as SQLite's `open` and `unlink`, once, before the first store.
    private static let sqliteHooks: Void = {
        guard let unix = sqlite3_vfs_find("unix"), let set = unix.pointee.xSetSystemCall else {
            preconditionFailure("SQLite has no unix VFS")
        }
        let open: @convention(c) (UnsafePointer<CChar>?, Int32, Int32) -> Int32 = { path, flags, mode in
            guard let path else {
                errno = EFAULT
                return -1
            }
            return DataDirectory.open(String(cString: path), flags, mode_t(mode))
        }
        let unlink: @convention(c) (UnsafePointer<CChar>?) -> Int32 = { path in
            guard let path else {
                errno = EFAULT
                return -1
            }
            return DataDirectory.unlink(String(cString: path))
        }
        precondition(set(unix, "open", unsafeBitCast(open, to: sqlite3_syscall_ptr.self)) == SQLITE_OK)
        precondition(set(unix, "unlink", unsafeBitCast(unlink, to: sqlite3_syscall_ptr.self)) == SQLITE_OK)
    }()
}
