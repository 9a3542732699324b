import Foundation
import MorpheusCore
import MorpheusStorage
import Postgres
import Testing
import TestSupport

/// Dataset versions built from committed examples: files, manifest, lineage, exclusions.
@Suite("Dataset versions against PostgreSQL")
struct DatasetStoreTests {
    let base = FeedbackStoreTests()
    let privacy = PrivacyStoreTests()

    func example(user: String, text: String, quality: Double = 0.9) throws -> Submission {
        var submission = try privacy.correction(user: user, text: text)
        submission.quality = quality
        return submission
    }

    func read(_ location: String, _ file: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: String(location.dropFirst("file://".count))).appendingPathComponent(file))
    }

    @Test("a build writes train/validation, a manifest with each file's hash and rows, a card and lineage; it leaves out low quality and opted-out users; a rebuild gives the same bytes; erasure marks the versions")
    func buildAndLineage() async throws {
        try await base.withStore { store, pool in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("datasets"))
            defer { try? FileManager.default.removeItem(at: root) }
            var kept: [Submission] = []
            for index in 0..<40 { kept.append(try example(user: "writer.\(index % 4)", text: "MARA: Line \(index) of the harbour scene.")) }
            let low = try example(user: "writer.0", text: "MARA: A weak line.", quality: 0.3)
            let leaving = try example(user: "leaving.user", text: "MARA: I will opt out.")
            _ = try await store.store(kept + [low, leaving], outcomes: [], deadLetters: [])
            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [privacy.request(.optOut, user: "leaving.user")])

            let datasets = DatasetStore(pool: pool)
            let request = DatasetRequest(name: "harbour-sft", modality: .text, format: .sft, minQuality: 0.5, validationShare: 0.2, seed: 7)
            let first = try await datasets.build(request, root: root)
            #expect(first.version == 1 && first.parentVersion == nil && first.exampleCount == 40)
            #expect(first.counts["excludedLowQuality"] == 1 && first.counts["excludedOptedOut"] == 1)
            #expect((first.counts["train"] ?? 0) + (first.counts["validation"] ?? 0) == 40 && (first.counts["validation"] ?? 0) > 0)

            let train = try read(first.location, "data/train.jsonl"), validation = try read(first.location, "data/validation.jsonl")
            let lines = String(decoding: train + validation, as: UTF8.self).split(separator: "\n")
            #expect(lines.count == 40)
            #expect(lines.allSatisfy { line in
                var parser = JSONParser(bytes: Array(line.utf8))
                guard case .array(let messages)? = (try? parser.parse())?["messages"] else { return false }
                return messages.count == 3
            })
            var parser = JSONParser(bytes: Array(try read(first.location, "manifest.json")))
            let manifest = try parser.parse()
            guard case .array(let files)? = manifest["files"] else { Issue.record("no files in the manifest"); return }
            for file in files {
                guard case .string(let path)? = file["path"], case .string(let sha)? = file["sha256"], case .number(let rows)? = file["rows"] else { continue }
                let bytes = try read(first.location, path)
                #expect(sha == sha256Hex(Array(bytes)))
                #expect(Int(rows) == bytes.filter { $0 == 0x0A }.count)
            }
            #expect(String(decoding: try read(first.location, "README.md"), as: UTF8.self).hasPrefix("---\nlicense: other"))
            let lineage = try await datasets.lineage(feedbackId: kept[0].correction.feedbackId)
            #expect(lineage.map(\.version) == [1] && lineage.first?.exampleId == TrainingTransform.exampleId(for: kept[0].correction.feedbackId))

            // Same database state, same parameters: version 2, parent 1, the same bytes.
            let second = try await datasets.build(request, root: root)
            #expect(second.version == 2 && second.parentVersion == 1 && second.sha256 == first.sha256)
            #expect(try read(second.location, "data/train.jsonl") == train)
            #expect(try read(second.location, "data/validation.jsonl") == validation)

            // Preference lines have the three columns.
            let preference = try await datasets.build(DatasetRequest(name: "harbour-pref", modality: .text, format: .preference), root: root)
            let firstLine = String(decoding: try read(preference.location, "data/train.jsonl"), as: UTF8.self).split(separator: "\n").first.map(String.init) ?? ""
            #expect(["\"prompt\"", "\"chosen\"", "\"rejected\""].allSatisfy { firstLine.contains($0) })

            // Erasing a writer marks every version that holds their examples.
            _ = try await store.store([], outcomes: [], deadLetters: [], privacy: [privacy.request(.erase, user: "writer.1")])
            let statuses = try await datasets.list().map { "\($0.name)@\($0.version) \($0.status)" }
            #expect(statuses.sorted() == ["harbour-pref@1 needs_rebuild", "harbour-sft@1 needs_rebuild", "harbour-sft@2 needs_rebuild"])
            let third = try await datasets.build(request, root: root)
            #expect(third.exampleCount == 30)
        }
    }

    @Test("stratified sampling with equal allocation and a contributor cap: quotas per stratum, no contributor over the cap, counts and bias report in the manifest, the same bytes twice; diff between versions")
    func stratifiedWithCap() async throws {
        try await base.withStore { store, pool in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("datasets"))
            defer { try? FileManager.default.removeItem(at: root) }
            var submissions: [Submission] = []
            let plan: [(type: String, count: Int)] = [("dialogue", 40), ("caption", 15), ("scene_description", 5)]
            var index = 0
            for (type, count) in plan {
                for _ in 0..<count {
                    // "heavy.writer" wrote three in four dialogue lines.
                    let user = type == "dialogue" && index % 4 != 0 ? "heavy.writer" : "writer.\(index % 10)"
                    var submission = try privacy.correction(user: user, text: "MARA: Line \(index), a \(type).")
                    submission = base.accepted(try base.correction(Samples.text.setting("/userId", to: .string(user)), [
                        ("/feedbackId", .string(UUID().uuidString)), ("/corrected/text", .string("MARA: Line \(index), a \(type).")),
                        ("/generation/id", .string(UUID().uuidString)), ("/correctionType", .string(type)),
                    ]))
                    submissions.append(submission)
                    index += 1
                }
            }
            _ = try await store.store(submissions, outcomes: [], deadLetters: [])
            let datasets = DatasetStore(pool: pool)
            let everything = try await datasets.build(DatasetRequest(name: "lines", modality: .text, format: .sft, minQuality: 0), root: root)
            #expect(everything.exampleCount == 60)

            var request = DatasetRequest(name: "lines", modality: .text, format: .sft, minQuality: 0, seed: 3, limit: 30)
            request.stratifyBy = [.correctionType]
            request.allocation = .equal
            request.maxContributorShare = 0.2
            let sampled = try await datasets.build(request, root: root)
            #expect(sampled.version == 2 && sampled.exampleCount == 30)
            // Equal allocation: the small stratum gives all it has, the others share the rest.
            let strata = try #require(sampled.bias["strata"]?["counts"])
            func selected(_ name: String) -> Double? { if case .number(let n)? = strata[name]?["selected"] { n } else { nil } }
            #expect(selected("scene_description") == 5)
            #expect((selected("caption") ?? 0) + (selected("dialogue") ?? 0) == 25 && min(selected("caption") ?? 0, selected("dialogue") ?? 0) >= 12)
            // The cap: at most 20 % of 30 = 6 examples of the heavy writer.
            let lines = String(decoding: try read(sampled.location, "data/train.jsonl") + read(sampled.location, "data/validation.jsonl"), as: UTF8.self)
            let heavy = try await pool.withConnection { connection in
                try connection.query("""
                    SELECT count(*) FROM dataset_examples e JOIN feedback f USING (feedback_id) JOIN training_datasets d ON d.id = e.dataset_id
                    WHERE d.name = 'lines' AND d.version = 2 AND f.user_id = 'heavy.writer'
                    """).first!.decode(0, as: Int.self)
            }
            #expect(heavy == 6 && lines.split(separator: "\n").count == 30)
            #expect((sampled.counts["excludedContributorCap"] ?? 0) > 0)
            #expect(sampled.counts["excludedBySampling"] == 60 - 30 - (sampled.counts["excludedContributorCap"] ?? 0))
            var parser = JSONParser(bytes: Array(try read(sampled.location, "manifest.json")))
            let manifest = try parser.parse()
            #expect(manifest["bias"] == sampled.bias && manifest["contributorCap"] == .number(6))
            #expect(manifest["parameters"]?["stratifyBy"] == .array([.string("correctionType")]))
            let card = String(decoding: try read(sampled.location, "README.md"), as: UTF8.self)
            #expect(card.contains("## Bias report") && card.contains("stratified by correctionType (equal allocation, floor 0)"))

            // The same request again: the same bytes.
            let again = try await datasets.build(request, root: root)
            let (againTrain, sampledTrain) = (try read(again.location, "data/train.jsonl"), try read(sampled.location, "data/train.jsonl"))
            #expect(again.sha256 == sampled.sha256 && againTrain == sampledTrain)

            // What changed from v1 (everything) to v2 (the sample).
            let difference = try #require(try await datasets.diff("lines", from: 1, to: 2, by: .correctionType))
            #expect(difference.added.isEmpty && difference.unchanged == 30)
            #expect(difference.removed.reduce(0) { $0 + $1.count } == 30)
            #expect(difference.removed.first { $0.stratum == "scene_description" } == nil)
            #expect(difference.samples.filter { $0.side == "removed" }.count == 3)
        }
    }

    @Test("a version folder loads unchanged with the datasets package: from its card and as json files, sft as messages and preference as prompt/chosen/rejected")
    func loadsWithDatasetsPackage() async throws {
        let python = try #require(TestEnvironment.python, "the reference Python (scripts/test.sh makes it: MORPHEUS_PYTHON or .local/venv)")
        try await base.withStore { store, pool in
            let root = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("datasets"))
            defer { try? FileManager.default.removeItem(at: root) }
            let submissions = try (0..<30).map { try example(user: "writer.\($0 % 5)", text: "MARA: Line \($0) of the loading test.") }
            _ = try await store.store(submissions, outcomes: [], deadLetters: [])
            let datasets = DatasetStore(pool: pool)
            for (format, columns) in [(DatasetRequest.Format.sft, ["messages"]), (.preference, ["chosen", "prompt", "rejected"])] {
                let version = try await datasets.build(DatasetRequest(name: "load-\(format.rawValue)", modality: .text, format: format,
                                                                     validationShare: 0.3, seed: 5), root: root)
                let folder = String(version.location.dropFirst("file://".count))
                let process = try ChildProcess(python, arguments: [TestEnvironment.repositoryRoot.appendingPathComponent("Tests/python/load_dataset.py").path, folder])
                #expect(try await process.waitForExit(timeout: .seconds(120)) == 0, "\(process.lines.suffix(20))")
                let output = try #require(process.lines.last { $0.hasPrefix("{") })
                let loaded = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
                for way in ["card", "json"] {
                    let splits = try #require(loaded[way] as? [String: [String: Any]], "\(way): \(output)")
                    #expect(splits["train"]?["rows"] as? Int == version.counts["train"], "\(way) train rows")
                    #expect(splits["validation"]?["rows"] as? Int == version.counts["validation"], "\(way) validation rows")
                    #expect(splits["train"]?["columns"] as? [String] == columns && splits["validation"]?["columns"] as? [String] == columns, "\(way) columns")
                }
                let first = try #require(loaded["first"] as? [String: Any])
                if format == .sft {
                    let messages = try #require(first["messages"] as? [[String: Any]])
                    #expect(messages.map { $0["role"] as? String } == ["system", "user", "assistant"])
                } else {
                    #expect((first["chosen"] as? [[String: Any]])?.first?["role"] as? String == "assistant")
                }
            }
        }
    }
}
