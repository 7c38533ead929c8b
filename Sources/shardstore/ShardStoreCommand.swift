import ArgumentParser
import ShardStore

@main
struct ShardStoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shardstore",
        abstract: "Index WebDataset tar shards in SQLite and read them like an array.",
        discussion: """
            Typical use:
              shardstore ingest ds/index.sqlite 'ds/train-{000000..000099}.tar'
              shardstore info ds/index.sqlite
              shardstore split ds/index.sqlite assign --ratio train=0.9,val=0.1 --seed 0
              shardstore get ds/index.sqlite 000123 --ext jpg -o 000123.jpg
              shardstore verify ds/index.sqlite

            Exit status: 0 on success, 1 when the command fails (the message on stderr says what failed, where, and what to do), 64 for invalid arguments.
            """,
        version: ShardStoreVersion.string,
        subcommands: [
            IngestCommand.self, InfoCommand.self, LsCommand.self, GetCommand.self, SplitCommand.self,
            MetaCommand.self, CatCommand.self, BenchCommand.self, ExportCommand.self, VerifyCommand.self,
        ]
    )
}

/// Runs `body`; on failure prints `shardstore: error: MESSAGE` to stderr and exits 1.
func reportingErrors<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let exit as ExitCode {
        throw exit
    } catch let error as ValidationError {
        throw error
    } catch {
        Terminal.error(Terminal.message(for: error))
        throw ExitCode(1)
    }
}
