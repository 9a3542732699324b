import ArgumentParser
import Foundation
import MorpheusCore
import MorpheusStorage

/// `morpheus dataset …`: versioned training datasets with lineage (`docs/datasets.md`).
struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Build, list and trace versioned training datasets.",
        subcommands: [Build.self, List.self, Lineage.self, Verify.self]
    )

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build version N+1 of NAME from the committed training examples.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The dataset's name (1–64 of [A-Za-z0-9._-]).") var name: String
        @Option(help: "text, image or layout.") var modality: String
        @Option(help: "sft or preference.") var format: String
        @Option(help: "Leave out examples below this quality.") var minQuality = 0.5
        @Option(help: "Share held out for validation (by a hash of the example id).") var validation = 0.05
        @Option(help: "Seed of the split.") var seed = 42
        @Option(help: "At most this many examples.") var limit: Int?
        @Option(help: "Where versions are written (default: datasets.root of the configuration).") var root: String?
        @Flag(help: "Print the version as JSON.") var json = false

        func run() async throws {
            guard let modality = Modality(rawValue: modality) else { throw ValidationError("--modality is text, image or layout") }
            guard let format = DatasetRequest.Format(rawValue: format) else { throw ValidationError("--format is sft or preference") }
            guard DatasetRequest.isName(name) else { throw ValidationError("names are 1–64 of [A-Za-z0-9._-]") }
            guard (0...1).contains(minQuality), (0..<1).contains(validation) else { throw ValidationError("--min-quality is 0…1, --validation 0…<1") }
            let (configuration, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let request = DatasetRequest(name: name, modality: modality, format: format, minQuality: minQuality, validationShare: validation,
                                         seed: seed, limit: limit)
            let folder = URL(fileURLWithPath: root ?? configuration.datasetsRoot, isDirectory: true)
            let started = ContinuousClock.now
            let topic = ContractTopics(prefix: configuration.topicPrefix).dataset(name)
            let version = try await DatasetStore(pool: pool).build(request, root: folder, announceOn: topic) { rows in
                if rows % 100_000 == 0 { FileHandle.standardError.write(Data("\(rows) rows\n".utf8)) }
            }
            if json {
                print(version.announcement.serializedString)
                return
            }
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print("\(version.name) v\(version.version)\(version.parentVersion.map { " (parent v\($0))" } ?? ""): \(version.exampleCount) examples "
                  + "(train \(version.counts["train"] ?? 0), validation \(version.counts["validation"] ?? 0)) in \(String(format: "%.1f", seconds)) s")
            print("left out: \(version.counts["excludedLowQuality"] ?? 0) below quality \(minQuality), \(version.counts["excludedOptedOut"] ?? 0) opted out")
            print("sha256 \(version.sha256)")
            print(version.location)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every version, newest first.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "Only this dataset.") var name: String?
        @Flag(help: "Print a JSON array.") var json = false

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let versions = try await DatasetStore(pool: pool).list(name: name)
            if json {
                print(JSONValue.array(versions.map { version in
                    guard case .object(var members) = version.announcement else { return version.announcement }
                    members.append(("status", .string(version.status)))
                    return .object(members)
                }).serializedString)
                return
            }
            for version in versions {
                print("\(version.name)@\(version.version)  \(version.modality)/\(version.format)  \(version.exampleCount) examples  \(version.status)  "
                      + "\(RFC3339.format(version.createdAt))  \(version.sha256.prefix(12))  \(version.location)")
            }
            if versions.isEmpty { print("(no dataset versions)") }
        }
    }

    struct Lineage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Every dataset version a correction reached (--feedback), or where an example came from (--example).")
        @OptionGroup var database: DatabaseOptions
        @Option(help: "A correction's feedbackId.") var feedback: String?
        @Option(help: "A training example's exampleId.") var example: String?

        func validate() throws {
            guard (feedback == nil) != (example == nil) else { throw ValidationError("give one of --feedback and --example") }
        }

        func run() async throws {
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let store = DatasetStore(pool: pool)
            if let feedback {
                let rows = try await store.lineage(feedbackId: feedback.lowercased())
                for row in rows { print("\(row.name)@\(row.version)  \(row.split)  example \(row.exampleId)  \(row.status)") }
                if rows.isEmpty { print("\(feedback) is in no dataset version") }
                return
            }
            guard let example, let origin = try await store.origin(exampleId: example.lowercased()) else {
                print("\(example ?? "") is no stored training example")
                throw ExitCode(4)
            }
            print("correction \(origin.feedbackId)  (\(origin.status))  contributor \(origin.contributor ?? "-")")
            if let decision = origin.decision {
                print("review: \(decision.decision) by \(decision.reviewer) at \(RFC3339.format(decision.at))")
            }
            for version in origin.versions { print("\(version.name)@\(version.version)  \(version.split)") }
            if origin.versions.isEmpty { print("in no dataset version") }
        }
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-hash a version's files against its manifest (exit 1 on any difference).")
        @Argument(help: "The version's folder (…/NAME/vN).") var path: String

        func run() throws {
            let folder = URL(fileURLWithPath: path, isDirectory: true)
            guard let data = FileManager.default.contents(atPath: folder.appendingPathComponent("manifest.json").path) else {
                throw ValidationError("no manifest.json in \(path)")
            }
            var parser = JSONParser(bytes: Array(data))
            guard case .array(let files)? = (try? parser.parse())?["files"] else { throw ValidationError("manifest.json names no files") }
            var failures = 0
            for file in files {
                guard case .string(let name)? = file["path"], case .string(let expected)? = file["sha256"], case .number(let rows)? = file["rows"] else {
                    failures += 1
                    continue
                }
                guard let bytes = FileManager.default.contents(atPath: folder.appendingPathComponent(name).path) else {
                    print("\(name): missing")
                    failures += 1
                    continue
                }
                let actualRows = bytes.reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
                let ok = sha256Hex(Array(bytes)) == expected && actualRows == Int(rows)
                print("\(name): \(ok ? "ok" : "DIFFERS") (\(actualRows) rows)")
                if !ok { failures += 1 }
            }
            if failures > 0 { throw ExitCode(1) }
        }
    }
}
