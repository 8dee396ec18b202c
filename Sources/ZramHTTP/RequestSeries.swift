import ZSync

/// Requests answered by route and status, and their durations by route, counted without a
/// lock: every request passes here.
final class RequestSeries: Sendable {
    /// One route's counters: requests by status code and the duration histogram.
    final class Route: Sendable {
        let name: String
        let durations: LockFreeHistogram
        /// Per-CPU counts of the statuses in `Route.statuses`.
        private let byStatus: PerCPUCounters
        /// Statuses outside `Route.statuses` (none that zramd sends today), by code.
        private let others = Locked<[Int: Int]>([:])

        /// The statuses an HTTP server commonly sends, each with a counter of its own.
        static let statuses = [
            100, 200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 406, 408, 409, 411, 412, 413, 414, 415, 416,
            422, 429, 431, 500, 501, 502, 503, 504, 507,
        ]
        /// Status code (0..<600) → its slot in `byStatus`, or `none`.
        private static let slotOf: [UInt8] = {
            var table = [UInt8](repeating: none, count: 600)
            for (slot, status) in statuses.enumerated() { table[status] = UInt8(slot) }
            return table
        }()
        private static let none: UInt8 = .max

        init(_ name: String, bounds: [Duration]) {
            self.name = name
            durations = LockFreeHistogram(bounds: bounds)
            byStatus = PerCPUCounters(slots: Self.statuses.count)
        }

        @inline(__always) func count(status: Int) {
            let slot = (0..<Self.slotOf.count).contains(status) ? Self.slotOf[status] : Self.none
            if slot != Self.none {
                byStatus.add(Int(slot), 1)
            } else {
                others.withLock { $0[status, default: 0] += 1 }
            }
        }

        /// (status, requests) for every status seen, in ascending order.
        var statuses: [(Int, Int)] {
            let common = Self.statuses.enumerated().map { ($1, byStatus.load($0)) }
            return (common + others.withLock { Array($0) }).filter { $0.1 > 0 }.sorted { $0.0 < $1.0 }
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
