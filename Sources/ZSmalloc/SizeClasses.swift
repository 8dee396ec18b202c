/// The shape of one size class: object size, zspage chain length, objects per zspage.
public struct ClassShape: Equatable, Sendable {
    /// Bytes per object slot.
    public let size: Int
    /// Chunks (pages) per zspage.
    package let chainLength: Int
    /// Objects that fit in one zspage.
    package let objectsPerZspage: Int

    /// True when a zspage holds one object: the page is stored whole, as zsmalloc's huge class.
    package var isHuge: Bool { objectsPerZspage == 1 }
}

/// The class table of a pool: nominal classes every `step` bytes from `minSize` to the page
/// size, each with the chain length that wastes least, neighbours of equal shape merged.
struct SizeClassTable: Sendable {
    static let minSize = 32
    static let step = 16

    /// The surviving (merged) classes, smallest first.
    let shapes: [ClassShape]
    /// For each nominal class, the index into `shapes` that serves it.
    let nominalToClass: [Int32]
    /// The largest object size stored in a class holding more than one object per zspage.
    let hugeClassSize: Int

    init(pageSize: Int, maxChain: Int) {
        let nominalCount = (pageSize - Self.minSize) / Self.step + 1
        var shapes: [ClassShape] = []
        var nominalToClass = [Int32](repeating: 0, count: nominalCount)
        // Walk from the largest size down, as the kernel does: a class merges into the
        // next larger surviving class when both have the same chain length and capacity.
        var reversed: [ClassShape] = []
        for nominal in stride(from: nominalCount - 1, through: 0, by: -1) {
            let size = nominal == nominalCount - 1 ? pageSize : Self.minSize + nominal * Self.step
            let shape = Self.bestShape(size: size, pageSize: pageSize, maxChain: maxChain)
            if let last = reversed.last, last.chainLength == shape.chainLength,
                last.objectsPerZspage == shape.objectsPerZspage
            {
                // served by `last`
            } else {
                reversed.append(shape)
            }
            nominalToClass[nominal] = Int32(reversed.count - 1)
        }
        shapes = reversed.reversed()
        let top = Int32(shapes.count - 1)
        for i in nominalToClass.indices { nominalToClass[i] = top - nominalToClass[i] }
        self.shapes = shapes
        self.nominalToClass = nominalToClass
        hugeClassSize = shapes.last(where: { !$0.isHuge })?.size ?? 0
    }

    /// The chain length in 1...maxChain whose zspage wastes the smallest fraction.
    static func bestShape(size: Int, pageSize: Int, maxChain: Int) -> ClassShape {
        var best = ClassShape(size: size, chainLength: 1, objectsPerZspage: pageSize / size)
        var bestUsed = 0.0
        for chain in 1...maxChain {
            let bytes = chain * pageSize
            let objects = bytes / size
            let used = Double(objects * size) / Double(bytes)
            if used > bestUsed {
                best = ClassShape(size: size, chainLength: chain, objectsPerZspage: objects)
                bestUsed = used
            }
        }
        return best
    }

    /// The class index that serves an object of `length` bytes (1...pageSize).
    @inline(__always) func classIndex(for length: Int) -> Int {
        let nominal = length <= Self.minSize ? 0 : (length - Self.minSize + Self.step - 1) / Self.step
        return Int(nominalToClass[min(nominal, nominalToClass.count - 1)])
    }
}
