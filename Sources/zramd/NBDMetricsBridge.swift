import ZramHTTP
import ZramNBD

extension NBDMetrics {
    /// The NBD front end's counters as `/metrics` series (read at every scrape).
    @Sendable func series() -> [ExternalSeries] {
        var all: [ExternalSeries] = []
        for c in commands {
            let labels = [("command", c.command)]
            all.append(
                ExternalSeries(name: "zramd_nbd_requests_total", help: "NBD requests answered, by command", labels: labels, value: c.requests, counter: true))
            all.append(
                ExternalSeries(
                    name: "zramd_nbd_bytes_total", help: "NBD bytes read, written or covered, by command", labels: labels, value: c.bytes, counter: true))
            all.append(
                ExternalSeries(
                    name: "zramd_nbd_errors_total", help: "NBD requests answered with an error, by command", labels: labels, value: c.errors, counter: true))
        }
        all.append(ExternalSeries(name: "zramd_nbd_connections", help: "NBD connections open", labels: [], value: connections, counter: false))
        all.append(
            ExternalSeries(
                name: "zramd_nbd_protocol_violations_total", help: "NBD connections closed for breaking the protocol", labels: [], value: protocolViolations,
                counter: true))
        all.append(
            ExternalSeries(
                name: "zramd_nbd_refused_connections_total", help: "NBD connections refused at the connection limit", labels: [], value: refused, counter: true)
        )
        return all
    }
}
