import Foundation
import MorpheusCore
import MorpheusService
import Testing
import TestSupport

@Suite("Configuration layers: defaults → file → environment → flags")
struct ConfigurationTests {
    func file(_ json: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("\(TestEnvironment.unique("config")).json").path
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("without file, environment or flags the defaults hold")
    func defaults() async throws {
        let configuration = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: [:])
        #expect(configuration.broker.host == "127.0.0.1")
        #expect(configuration.broker.port == 1883)
        #expect(configuration.topicPrefix == "morpheus/v1")
        #expect(configuration.shareGroup == "morpheus-feedback")
        #expect(configuration.broker.receiveMaximum == 1000)
        #expect(configuration.statusIntervalSeconds == 10)
        #expect(configuration.instanceID.hasPrefix("morpheus-"))
        #expect(configuration.statusTopic == "morpheus/v1/status/\(configuration.instanceID)")
    }

    @Test("each layer overrides the one below it, key by key")
    func layering() async throws {
        let path = try file(#"{"broker": {"host": "file-host", "port": 1111, "receiveMaximum": 50}, "topics": {"prefix": "file/v1"}, "instance": {"id": "from-file"}}"#)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let configuration = try await ServiceConfiguration.load(
            file: path, fileRequired: true,
            overrides: ["broker.port": "3333"],
            environment: ["MORPHEUS_BROKER_PORT": "2222", "MORPHEUS_BROKER_HOST": "env-host", "MORPHEUS_STATUS_INTERVAL_SECONDS": "3"]
        )
        #expect(configuration.broker.port == 3333)          // flag over environment
        #expect(configuration.broker.host == "env-host")    // environment over file
        #expect(configuration.broker.receiveMaximum == 50)  // file over default
        #expect(configuration.topicPrefix == "file/v1")
        #expect(configuration.instanceID == "from-file")
        #expect(configuration.statusIntervalSeconds == 3)
        #expect(configuration.batchMaxSize == 500)          // default
    }

    @Test("expert review: off but for the quality rule by default; each rule set through the environment")
    func expertReview() async throws {
        let defaults = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: [:])
        #expect(defaults.expertReview == ExpertReviewPolicy(minQuality: ExpertReviewPolicy.defaultMinQuality, firstCorrections: 0, audience: 0))
        let set = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: [
            "MORPHEUS_REVIEW_MIN_QUALITY": "0.25", "MORPHEUS_REVIEW_FIRST_CORRECTIONS": "5", "MORPHEUS_REVIEW_AUDIENCE": "200",
        ])
        #expect(set.expertReview == ExpertReviewPolicy(minQuality: 0.25, firstCorrections: 5, audience: 200))
        #expect(defaults.gateEnabled)
        // The public development secret is refused unless allowed; a real one passes.
        #expect(throws: ConfigurationError.self) { try defaults.checkPseudonymSecret() }
        try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: ["MORPHEUS_PRIVACY_ALLOW_DEVELOPMENT_SECRET": "true"])
            .checkPseudonymSecret()
        try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: ["MORPHEUS_PRIVACY_PSEUDONYM_SECRET": "0123456789abcdef0123"])
            .checkPseudonymSecret()
        #expect(try await !ServiceConfiguration.load(file: nil, fileRequired: false, environment: ["MORPHEUS_GATE_ENABLED": "false"]).gateEnabled)
    }

    @Test("a value that is present but unusable is an error naming its key")
    func invalidValues() async throws {
        for (environment, key) in [
            (["MORPHEUS_BROKER_PORT": "eighteen"], "broker.port"),
            (["MORPHEUS_BROKER_PORT": "70000"], "broker.port"),
            (["MORPHEUS_INSTANCE_ID": "a/b"], "instance.id"),
            (["MORPHEUS_TOPICS_PREFIX": "morpheus/#"], "topics.prefix"),
            (["MORPHEUS_LOG_LEVEL": "loud"], "log.level"),
            (["MORPHEUS_BROKER_TLS_CERTIFICATE_FILE": "/c.pem"], "broker.tls.caFile"),
            (["MORPHEUS_REVIEW_MIN_QUALITY": "1.5"], "review.minQuality"),
            (["MORPHEUS_REVIEW_MIN_QUALITY": "high"], "review.minQuality"),
            (["MORPHEUS_REVIEW_FIRST_CORRECTIONS": "-1"], "review.firstCorrections"),
            (["MORPHEUS_GATE_ENABLED": "maybe"], "gate.enabled"),
        ] {
            do {
                _ = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: environment)
                Issue.record("accepted \(environment)")
            } catch let error as ConfigurationError {
                #expect(error.key == key)
            }
        }
    }

    @Test("a named file must exist; the default one may be missing")
    func missingFile() async throws {
        await #expect(throws: (any Error).self) {
            try await ServiceConfiguration.load(file: "/nonexistent/morpheus.json", fileRequired: true, environment: [:])
        }
        let configuration = try await ServiceConfiguration.load(file: "/nonexistent/morpheus.json", fileRequired: false, environment: [:])
        #expect(configuration.broker.port == 1883)
    }

    @Test("the logged summary carries no secret")
    func summaryHasNoSecrets() async throws {
        let configuration = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: [
            "MORPHEUS_DATABASE_URL": "postgres://morpheus:db-secret-1@db.internal:5433/morpheus",
            "MORPHEUS_BROKER_USERNAME": "svc",
            "MORPHEUS_BROKER_PASSWORD": "mqtt-secret-2",
        ])
        #expect(configuration.broker.password == "mqtt-secret-2")
        let summary = configuration.summary.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        #expect(!summary.contains("db-secret-1"))
        #expect(!summary.contains("mqtt-secret-2"))
        #expect(summary.contains("db.internal:5433"))
        #expect(summary.contains("svc"))
    }

    @Test("secrets from files: MORPHEUS_X_FILE sets MORPHEUS_X to the file's content; unreadable files and both set are errors")
    func secretFiles() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("secrets")).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "postgres://svc:s3cret@db:5432/morpheus\n".write(toFile: "\(directory)/db", atomically: true, encoding: .utf8)
        try "broker pass word".write(toFile: "\(directory)/broker", atomically: true, encoding: .utf8)
        try "0123456789abcdef0123456789abcdef\n".write(toFile: "\(directory)/pseudonym", atomically: true, encoding: .utf8)
        let configuration = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: [
            "MORPHEUS_DATABASE_URL_FILE": "\(directory)/db", "MORPHEUS_BROKER_PASSWORD_FILE": "\(directory)/broker",
            "MORPHEUS_PRIVACY_PSEUDONYM_SECRET_FILE": "\(directory)/pseudonym",
        ])
        #expect(configuration.database.url == "postgres://svc:s3cret@db:5432/morpheus")
        #expect(configuration.broker.password == "broker pass word")
        #expect(configuration.pseudonymSecret == "0123456789abcdef0123456789abcdef")
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: ["MORPHEUS_DATABASE_URL_FILE": "\(directory)/missing"])
        }
        await #expect(throws: ConfigurationError.self) {
            _ = try await ServiceConfiguration.load(file: nil, fileRequired: false, environment: [
                "MORPHEUS_BROKER_PASSWORD_FILE": "\(directory)/broker", "MORPHEUS_BROKER_PASSWORD": "also",
            ])
        }
    }
}
