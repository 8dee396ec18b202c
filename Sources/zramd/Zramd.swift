import ArgumentParser

/// zramd: zram over HTTP.
@main
struct Zramd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zramd",
        abstract: "A network page cache that works like Linux zram: pages kept compressed in memory, "
            + "every zram attribute as a REST endpoint, idle pages written back to SQLite.",
        subcommands: [
            Serve.self, Stat.self, WritebackCommand.self, RecompressCommand.self, CompactCommand.self,
            IdleCommand.self, PutCommand.self, GetCommand.self,
        ],
        defaultSubcommand: Serve.self)
}
