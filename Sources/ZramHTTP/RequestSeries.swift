import Synchronization
import ZSync

/// Requests answered by route and status, and their durations by route, counted without a
/// lock: every request passes here.
final class RequestSeries: Sendable {
    /// One route's counters: requests by status code and the duration histogram.
    final class Route: @unchecked Sendable {
        // `@unchecked Sendable`: `byStatus` is only ever accessed atomically.
        let name: String
        let durations: LockFreeHistogram
        /// Indexed by status code (100...599); anything else counts at 0.
        private let byStatus: UnsafeMutablePointer<Atomic<Int>>
        static let statusSlots = 600

        init(_ name: String, bounds: [Duration]) {
            self.name = name
            durations = LockFreeHistogram(bounds: bounds)
            byStatus = .allocate(capacity: Self.statusSlots)
            for i in 0..<Self.statusSlots { (byStatus + i).initialize(to: Atomic(0)) }
        }

        deinit {
            byStatus.deinitialize(count: Self.statusSlots)
            byStatus.deallocate()
        }

        @inline(__always) func count(status: Int) {
            byStatus[(100..<Self.statusSlots).contains(status) ? status : 0].add(1, ordering: .relaxed)
        }

        /// (status, requests) for every status seen.
        var statuses: [(Int, Int)] {
            (0..<Self.statusSlots).compactMap { status in
                let n = byStatus[status].load(ordering: .relaxed)
                return n > 0 ? (status, n) : nil
            }
        }
    }

    /// The router's routes, most frequent first: looked up by a linear scan that takes no
    /// lock (literal strings compare by their bits first). Read-only after init.
    private let known: [Route]
    /// Any other route (none today), made on first use.
    private let others = Locked<[String: Route]>([:])
    private let bounds: [Duration]

    init(routes: [String], bounds: [Duration]) {
        self.bounds = bounds
        known = routes.map { Route($0, bounds: bounds) }
    }

    /// Counts one answered request.
    @inline(__always)
    func record(route: String, status: Int, nanoseconds: UInt64) {
        let series = known.first { $0.name == route } ?? other(route)
        series.count(status: status)
        series.durations.record(nanoseconds: nanoseconds)
    }

    private func other(_ route: String) -> Route {
        others.withLock { made in
            if let found = made[route] { return found }
            let series = Route(route, bounds: bounds)
            made[route] = series
            return series
        }
    }

    /// Every route that answered a request, in a stable order.
    var routes: [Route] {
        (known + others.withLock { Array($0.values) }).filter { $0.durations.count > 0 }.sorted { $0.name < $1.name }
    }
}
