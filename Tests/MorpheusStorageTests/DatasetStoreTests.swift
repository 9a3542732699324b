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
}
