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
    /// The result is canonical (symbolic links in the directory part resolved), so the
    /// store can open it with `O_NOFOLLOW`. Like any check-then-open, it cannot stop
    /// someone with write access to the data directory from swapping a link in between;
    /// the store's own open refuses a symbolic link at the final component.
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
