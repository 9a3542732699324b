import ArgumentParser
import Foundation
import MorpheusCore
import MorpheusStorage

/// `morpheus dataset …`: versioned training datasets with lineage (`docs/datasets.md`).
struct DatasetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Build, list and trace versioned training datasets.",
        subcommands: [Build.self, List.self, Show.self, Diff.self, Lineage.self, Verify.self]
    )

    struct Build: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build version N+1 of NAME from the committed training examples.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The dataset's name (1–64 of [A-Za-z0-9._-]).") var name: String
        @Option(help: "text, image or layout.") var modality: String
        @Option(help: "sft or preference.") var format: String
        @Option(help: "Only corrections received at or after this instant (RFC 3339).") var since: String?
        @Option(help: "Only corrections received before this instant (RFC 3339).") var until: String?
        @Option(help: "Only this correction type (repeatable).") var correctionType: [String] = []
        @Option(help: "Only this model: NAME or NAME@VERSION.") var model: String?
        @Option(help: "Leave out examples below this quality.") var minQuality = 0.5
        @Option(help: "Strata: correctionType, model, modelVersion, experimentArm; comma-separated to combine.") var stratifyBy: String?
        @Option(help: "proportional (strata as in the data) or equal (the same for every stratum).") var allocation = "proportional"
        @Option(help: "Every stratum gets at least this many examples (or all it has).") var stratumFloor = 0
        @Option(help: "No contributor has more than this share of the examples (e.g. 0.05).") var maxSharePerContributor: Double?
        @Option(help: "At most this many examples (the sampling's target).") var limit: Int?
        @Option(help: "Share held out for validation (by a hash of the example id).") var validation = 0.05
        @Option(help: "Seed of the order, the sampling and the split.") var seed = 42
        @Option(help: "Where versions are written (default: datasets.root of the configuration).") var root: String?
        @Flag(help: "Print the version as JSON (with its counts and bias report).") var json = false

        func request() throws -> DatasetRequest {
            guard let modality = Modality(rawValue: modality) else { throw ValidationError("--modality is text, image or layout") }
            guard let format = DatasetRequest.Format(rawValue: format) else { throw ValidationError("--format is sft or preference") }
            guard DatasetRequest.isName(name) else { throw ValidationError("names are 1–64 of [A-Za-z0-9._-]") }
            guard (0...1).contains(minQuality), (0..<1).contains(validation) else { throw ValidationError("--min-quality is 0…1, --validation 0…<1") }
            var request = DatasetRequest(name: name, modality: modality, format: format, minQuality: minQuality, validationShare: validation,
                                         seed: seed, limit: limit)
            func instant(_ text: String?, _ flag: String) throws -> Date? {
                guard let text else { return nil }
                guard let date = RFC3339.parse(text) else { throw ValidationError("\(flag) \(text.debugDescription) is not an RFC 3339 instant") }
                return date
            }
            request.since = try instant(since, "--since")
            request.until = try instant(until, "--until")
            request.correctionTypes = try correctionType.map { text in
                guard let type = CorrectionType(rawValue: text), type.modality == modality else {
                    throw ValidationError("--correction-type \(text) is not a \(modality.rawValue) correction type")
                }
                return type
            }
            request.model = model
            request.stratifyBy = try (stratifyBy ?? "").split(separator: ",").map { text in
                guard let key = DatasetRequest.StratumKey(rawValue: String(text)) else {
                    throw ValidationError("--stratify-by takes \(DatasetRequest.StratumKey.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                return key
            }
            guard let allocation = Sampling.Allocation(rawValue: allocation) else { throw ValidationError("--allocation is proportional or equal") }
            request.allocation = allocation
            guard stratumFloor >= 0, (limit ?? 1) > 0 else { throw ValidationError("--stratum-floor ≥ 0, --limit > 0") }
            request.stratumFloor = stratumFloor
            if let share = maxSharePerContributor, !(share > 0 && share <= 1) { throw ValidationError("--max-share-per-contributor is 0…1") }
            request.maxContributorShare = maxSharePerContributor
            return request
        }

        func run() async throws {
            let request = try request()
            let (configuration, pool) = try await database.load()
            defer { Task { await pool.close() } }
            let folder = URL(fileURLWithPath: root ?? configuration.datasetsRoot, isDirectory: true)
            let started = ContinuousClock.now
            let topic = ContractTopics(prefix: configuration.topicPrefix).dataset(name)
            let meter = ProgressMeter(label: "\(name): writing")
            let version = try await DatasetStore(pool: pool).build(request, root: folder, announceOn: topic, thresholds: configuration.datasetBias) {
                meter.update($0.written, of: $0.total)
            }
            meter.finish()
            let warnings: [String]
            if case .array(let list)? = version.bias["warnings"] { warnings = list.compactMap { if case .string(let text) = $0 { text } else { nil } } } else { warnings = [] }
            for warning in warnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
            if json {
                guard case .object(var members) = version.announcement else { return }
                members.append(("counts", .object(version.counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })))
                members.append(("bias", version.bias))
                print(JSONValue.object(members).serializedString)
                return
            }
            let seconds = ProgressMeter.seconds(ContinuousClock.now - started)
            print("\(version.name) v\(version.version)\(version.parentVersion.map { " (parent v\($0))" } ?? ""): \(version.exampleCount) examples "
                  + "(train \(version.counts["train"] ?? 0), validation \(version.counts["validation"] ?? 0)) in \(String(format: "%.1f", seconds)) s")
            print("left out: \(version.counts["excludedLowQuality"] ?? 0) below quality \(minQuality), \(version.counts["excludedOptedOut"] ?? 0) opted out, "
                  + "\(version.counts["excludedArchived"] ?? 0) archived, \(version.counts["excludedContributorCap"] ?? 0) over the contributor cap, "
                  + "\(version.counts["excludedBySampling"] ?? 0) by sampling")
            print("sha256 \(version.sha256)")
            print(version.location)
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "A version's parameters, counts and bias report (NAME for the newest, NAME@VERSION).")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "NAME or NAME@VERSION.") var version: String
        @Flag(help: "Print it as JSON.") var json = false

        func run() async throws {
            let (name, number) = try DatasetCommand.parse(version, versionRequired: false)
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            guard let (found, parameters) = try await DatasetStore(pool: pool).version(name, number) else {
                print("no dataset version \(version)")
                throw ExitCode(4)
            }
            if json {
                guard case .object(var members) = found.announcement else { return }
                members += [("status", .string(found.status)), ("parameters", parameters),
                            ("counts", .object(found.counts.sorted { $0.key < $1.key }.map { ($0.key, .number(Double($0.value))) })), ("bias", found.bias)]
                print(JSONValue.object(members).serializedString)
                return
            }
            printFields([
                ("version", "\(found.name)@\(found.version)\(found.parentVersion.map { " (parent \(found.name)@\($0))" } ?? "")"),
                ("status", found.status), ("modality/format", "\(found.modality)/\(found.format)"), ("examples", "\(found.exampleCount)"),
                ("created", RFC3339.format(found.createdAt)), ("sha256", found.sha256), ("location", found.location),
                ("parameters", parameters.serializedString),
            ] + found.counts.sorted { $0.key < $1.key }.map { ("count: \($0.key)", "\($0.value)") })
            func figure(_ value: JSONValue?) -> String { if case .number(let n)? = value { String(format: "%.3f", n) } else { "-" } }
            let bias = found.bias
            print("")
            func member(_ path: String...) -> JSONValue? { path.reduce(Optional(bias)) { $0?[$1] } }
            func text(_ path: String...) -> String { path.reduce(Optional(bias)) { $0?[$1] }?.serializedString ?? "-" }
            let contributors: String = "\(figure(member("contributors", "count"))) (largest \(figure(member("contributors", "topShare")))"
                + ", ten largest \(figure(member("contributors", "topTenShare"))), Gini \(figure(member("contributors", "gini"))))"
            let quality: String = "mean \(figure(member("quality", "mean"))), median \(figure(member("quality", "median")))"
                + ", below 0.6 \(figure(member("quality", "lowShare")))"
            let rows: [(String, String)] = [
                ("contributors", contributors), ("strata imbalance", figure(member("strata", "imbalance"))),
                ("model versions", text("modelVersions", "counts")), ("experiment arms", text("experimentArms", "counts")),
                ("quality", quality), ("languages", text("languages", "counts")),
            ]
            printFields(rows)
            if case .array(let warnings)? = bias["warnings"] {
                for case .string(let warning) in warnings { print("warning: \(warning)") }
            }
        }
    }

    struct Diff: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Examples added and removed between two versions, by stratum, with a few of each.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "NAME@A") var from: String
        @Argument(help: "NAME@B") var to: String
        @Option(help: "Group by correctionType, model, modelVersion or experimentArm.") var by = "correctionType"
        @Option(help: "Samples of each side.") var samples = 3
        @Flag(help: "Print it as JSON.") var json = false

        func run() async throws {
            let (name, old) = try DatasetCommand.parse(from, versionRequired: true)
            let (otherName, new) = try DatasetCommand.parse(to, versionRequired: true)
            guard name == otherName else { throw ValidationError("both versions must be of one dataset") }
            guard let key = DatasetRequest.StratumKey(rawValue: by) else { throw ValidationError("--by is correctionType, model, modelVersion or experimentArm") }
            let (_, pool) = try await database.load()
            defer { Task { await pool.close() } }
            guard let difference = try await DatasetStore(pool: pool).diff(name, from: old!, to: new!, by: key, samples: samples) else {
                print("no such versions of \(name)")
                throw ExitCode(4)
            }
            func counts(_ list: [(stratum: String, count: Int)]) -> JSONValue { .object(list.map { ($0.stratum, .number(Double($0.count))) }) }
            if json {
                print(JSONValue.object([
                    ("from", .string(from)), ("to", .string(to)), ("by", .string(by)), ("unchanged", .number(Double(difference.unchanged))),
                    ("added", counts(difference.added)), ("removed", counts(difference.removed)),
                    ("samples", .array(difference.samples.map { sample in
                        .object([("side", .string(sample.side)), ("exampleId", .string(sample.exampleId)), ("stratum", .string(sample.stratum)),
                                 ("text", sample.text.map(JSONValue.string) ?? .null)])
                    })),
                ]).serializedString)
                return
            }
            let added = difference.added.reduce(0) { $0 + $1.count }, removed = difference.removed.reduce(0) { $0 + $1.count }
            print("\(from) → \(to): +\(added) −\(removed), \(difference.unchanged) unchanged")
            let strata = Set(difference.added.map(\.stratum) + difference.removed.map(\.stratum)).sorted()
            printTable([[by.uppercased(), "ADDED", "REMOVED"]] + strata.map { stratum in
                [stratum, "\(difference.added.first { $0.stratum == stratum }?.count ?? 0)", "\(difference.removed.first { $0.stratum == stratum }?.count ?? 0)"]
            })
            for sample in difference.samples {
                print("\(sample.side == "added" ? "+" : "−") \(sample.exampleId)  \(sample.stratum)  \(sample.text ?? "")")
            }
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

    /// NAME or NAME@VERSION.
    static func parse(_ text: String, versionRequired: Bool) throws -> (String, Int?) {
        let parts = text.split(separator: "@", maxSplits: 1).map(String.init)
        guard let name = parts.first, DatasetRequest.isName(name) else { throw ValidationError("\(text.debugDescription) is not NAME[@VERSION]") }
        guard parts.count == 2 else {
            if versionRequired { throw ValidationError("\(text.debugDescription): give NAME@VERSION") }
            return (name, nil)
        }
        guard let version = Int(parts[1]), version >= 1 else { throw ValidationError("\(text.debugDescription): the version is a number") }
        return (name, version)
    }
}
