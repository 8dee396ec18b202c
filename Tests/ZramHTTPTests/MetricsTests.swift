import Testing

@testable import ZramHTTP

/// The lock-free series behind `/metrics`: what is recorded is what the exposition says.
struct MetricsTests {
    @Test func histogramBucketsAreCumulativeWithSumAndCount() {
        let histogram = LockFreeHistogram(bounds: [.microseconds(10), .microseconds(100)])
        for nanos: UInt64 in [5_000, 10_000, 50_000, 2_000_000] { histogram.record(nanoseconds: nanos) }
        var text = ""
        histogram.render("t_seconds", labels: "route=\"x\"", into: &text)
        #expect(
            text == """
                t_seconds_bucket{route="x",le="1e-05"} 2
                t_seconds_bucket{route="x",le="0.0001"} 3
                t_seconds_bucket{route="x",le="+Inf"} 4
                t_seconds_sum{route="x"} 0.002065
                t_seconds_count{route="x"} 4

                """)
    }
}

/// The request series counted from many threads at once (run under ThreadSanitizer).
struct ConcurrentMetricsTests {
    @Test func requestsCountByRouteAndStatusFromManyThreads() async {
        let series = RequestSeries(routes: ["page_get", "page_put"], bounds: [.microseconds(10)])
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<4 {
                group.addTask {
                    for i in 0..<1000 {
                        series.record(route: thread % 2 == 0 ? "page_get" : "made_up", status: i % 2 == 0 ? 200 : 404, nanoseconds: 1)
                    }
                }
            }
        }
        let routes = Dictionary(uniqueKeysWithValues: series.routes.map { ($0.name, $0) })
        #expect(routes.keys.sorted() == ["made_up", "page_get"], "a route that answered nothing is not shown")
        #expect(routes["page_get"]!.statuses.map { $0.0 } == [200, 404])
        #expect(routes["page_get"]!.statuses.map { $0.1 } == [1000, 1000])
        #expect(routes["made_up"]!.durations.count == 2000)
    }
}
