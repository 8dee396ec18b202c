import Foundation
import Testing
import ZramDevice

/// The attribute table (`ZramDevice.attributeInfo`) is the one list of attributes: the
/// contract (`api/openapi.yaml`) and the reference (`docs/ATTRIBUTES.md`) list exactly it.
@Suite struct AttributeTableTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized

    static func text(_ path: String) throws -> String {
        try String(contentsOf: repo.appendingPathComponent(path), encoding: .utf8)
    }

    /// The names of every `enum: [...]` list of the `{attr}` parameter, in file order:
    /// the path's own list, then GET, PUT, POST and HEAD.
    static func attributeEnums() throws -> [Set<String>] {
        let yaml = try text("api/openapi.yaml")
        let start = try #require(yaml.range(of: "/sys/block/zram{id}/{attr}:"))
        let section = yaml[start.upperBound...].prefix { _ in true }
        let end = section.range(of: "\n  /sys/class/")!.lowerBound
        var lists: [Set<String>] = []
        var rest = section[..<end]
        while let parameter = rest.range(of: "name: attr"), let open = rest[parameter.upperBound...].range(of: "enum: [") {
            let close = rest[open.upperBound...].firstIndex(of: "]")!
            let names = rest[open.upperBound..<close].split(whereSeparator: { ", \n".contains($0) }).map(String.init)
            lists.append(Set(names))
            rest = rest[close...]
        }
        return lists
    }

    @Test func theContractListsExactlyTheTable() throws {
        let all = Set(ZramDevice.attributeInfo.keys)
        let readable = Set(ZramDevice.attributeInfo.values.filter { $0.access.contains(.read) }.map(\.name))
        let writable = Set(ZramDevice.attributeInfo.values.filter { $0.access.contains(.write) }.map(\.name))
        let lists = try Self.attributeEnums()
        try #require(lists.count == 5, "the path's list, then GET, PUT, POST, HEAD")
        #expect(lists[0] == all, "path: \(lists[0].symmetricDifference(all))")
        #expect(lists[1] == readable, "GET: \(lists[1].symmetricDifference(readable))")
        #expect(lists[2] == writable, "PUT: \(lists[2].symmetricDifference(writable))")
        #expect(lists[3] == writable, "POST: \(lists[3].symmetricDifference(writable))")
        #expect(lists[4] == readable, "HEAD: \(lists[4].symmetricDifference(readable))")
    }

    @Test func theReferenceDocumentsEachAttributeOnceWithItsMode() throws {
        let doc = try Self.text("docs/ATTRIBUTES.md")
        let removed = doc.range(of: "## Removed")!.lowerBound
        let headings = doc[..<removed].split(separator: "\n").filter { $0.hasPrefix("### `") }
            .map { String($0.dropFirst(5).prefix { $0 != "`" }) }
        #expect(Set(headings) == Set(ZramDevice.attributeInfo.keys), "\(Set(headings).symmetricDifference(ZramDevice.attributeInfo.keys))")
        #expect(headings.count == Set(headings).count, "each attribute has one section")
        for info in ZramDevice.attributeInfo.values {
            let section = doc[doc.range(of: "### `\(info.name)`")!.upperBound...].prefix(400)
            let mode = info.access == [.read, .write] ? "Read/write" : info.access.contains(.read) ? "Read-only" : "Write-only"
            #expect(section.contains("**\(mode)"), "\(info.name) is \(mode)")
            #expect(section.contains("before init") == info.beforeInit, "\(info.name): before init is \(info.beforeInit)")
        }
    }

    @Test func postProcessingRunsInTheBackgroundAndOnlyIt() {
        let maintenance = Set(ZramDevice.attributeInfo.values.filter { $0.cost == .maintenance }.map(\.name))
        #expect(maintenance == ["idle", "recompress", "writeback", "compact"])
        let extensions = Set(ZramDevice.attributeInfo.values.filter(\.isExtension).map(\.name))
        #expect(extensions == ["auto_writeback", "promotion", "eviction", "tier_stat"])
    }
}
