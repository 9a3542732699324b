import Configuration
import Foundation
import Logging
import MQTT
import MorpheusCore
import Postgres
import SystemPackage

/// Everything the service can be told, with the defaults of a local development setup.
///
/// Values come in layers, later ones winning: these defaults → the JSON file
/// (`config/morpheus.json`, or `--config`) → environment variables `MORPHEUS_*` → command-line
/// flags. Keys are dotted paths in the file (`broker.port`) and upper-case with underscores in
/// the environment (`MORPHEUS_BROKER_PORT`); `docs/configuration.md` lists them all.
public struct ServiceConfiguration: Sendable {
    public struct Broker: Sendable {
        public var host = "127.0.0.1"
        public var port = 1883
        public var username: String?
        public var password: String?
        public var tlsCAFile: String?
        public var tlsCertificateFile: String?
        public var tlsKeyFile: String?
        public var keepAliveSeconds = 30
        /// How long the broker keeps this instance's session (and queues its share of the
        /// shared subscription) while it is away.
        public var sessionExpirySeconds = 86_400
        /// In-flight window for incoming QoS 1 messages; bounds one batch.
        public var receiveMaximum = 1000
    }

    public struct Database: Sendable {
        public var url = "postgres://morpheus@127.0.0.1:5432/morpheus"
        public var poolSize = 4
        public var connectTimeoutSeconds = 5
    }

    /// Stable id of this instance: MQTT client id, status topic, session key.
    public var instanceID: String
    /// Topic prefix of contract v1.
    public var topicPrefix = "morpheus/v1"
    /// Shared-subscription group all instances of one deployment join.
    public var shareGroup = "morpheus-feedback"
    public var broker = Broker()
    public var database = Database()
    /// Largest number of messages committed in one transaction.
    public var batchMaxSize = 500
    /// Largest number of payload bytes read into one batch: with the broker's 2 MiB packet
    /// limit, 500 messages could otherwise hold a gigabyte.
    public var batchMaxBytes = 32 << 20
    /// Longest a started batch waits for more messages before it is committed, in
    /// milliseconds. 0: commit what one read produced (under load batches fill by themselves
    /// while the previous commit runs).
    public var batchMaxWaitMilliseconds = 0
    public var statusIntervalSeconds = 10
    /// How long the instance that committed an outbox batch may take to publish it before
    /// another instance's sweep claims it.
    public var outboxLeaseSeconds = 30
    /// How long a published event may wait for the broker's PUBACK before it counts as not
    /// published (its outbox row stays and is published again).
    public var publishTimeoutSeconds = 20
    /// What stays how long in the hot tables (`retention.*`, `deadLetters.retentionDays`;
    /// `docs/privacy.md#retention`).
    public var retention = RetentionPolicy()
    /// `metrics.port`: where `/metrics`, `/health/live` and `/health/ready` are served; 0: off.
    public var metricsPort = 0
    /// `metrics.host`: the address they listen on.
    public var metricsHost = "0.0.0.0"
    /// `retention.enabled`: whether the service runs the policy (one instance at a time).
    public var retentionEnabled = true
    /// `retention.intervalSeconds`: how often it does.
    public var retentionIntervalSeconds = 3600
    /// How often reviewers' decisions about contributors reach the quality score.
    public var reputationRefreshSeconds = 30
    /// When clean corrections still go to a reviewer (`review.*`; `docs/quality.md`).
    public var expertReview = ExpertReviewPolicy()
    /// Where `morpheus dataset build` writes dataset versions (`datasets.root`).
    public var datasetsRoot = "datasets"
    /// `datasets.bias.*`: where a build's bias report warns.
    public var datasetBias = BiasThresholds()
    /// `gate.enabled`: false skips the quality gate (every valid correction accepted with
    /// quality 1, no history rules). Only for measuring what the gate costs.
    public var gateEnabled = true
    public var logLevel: Logger.Level = .info
    /// `log.format`: `text` (swift-log's stream format) or `json` (one object per line).
    public var logJSON = false
    /// Key of the contributor pseudonyms (HMAC-SHA-256). Set it in production; the default is
    /// public and only good for development.
    public var pseudonymSecret = ServiceConfiguration.developmentSecret
    public static let developmentSecret = "morpheus-development-secret-do-not-use"
    /// `privacy.allowDevelopmentSecret`: run with the public development secret anyway (for a
    /// throw-away development setup only; pseudonyms made with it protect nothing).
    public var allowDevelopmentSecret = false

    /// Refuses the public development secret unless `privacy.allowDevelopmentSecret` is set:
    /// pseudonyms under a published key can be computed for any guessed user id.
    public func checkPseudonymSecret() throws {
        guard pseudonymSecret != Self.developmentSecret || allowDevelopmentSecret else {
            throw ConfigurationError(key: "privacy.pseudonymSecret", problem: """
                is the public development secret: set MORPHEUS_PRIVACY_PSEUDONYM_SECRET (at least 16 bytes, kept secret and stable;                 scripts/run.sh makes one for a local setup), or privacy.allowDevelopmentSecret=true for a throw-away setup
                """)
        }
    }
    /// The system instruction of the chat examples, per correction type.
    public var systemInstructions = SystemInstructions()

    public init(instanceID: String = ServiceConfiguration.defaultInstanceID) {
        self.instanceID = instanceID
    }

    /// `morpheus-<hostname>`: stable across restarts of the same machine or pod.
    public static var defaultInstanceID: String {
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "local"
        let cleaned = host.map { $0.isLetter || $0.isNumber || $0 == "-" ? $0 : "-" }
        return "morpheus-" + String(cleaned.prefix(48))
    }

    /// The retained status topic of this instance.
    public var statusTopic: String { "\(topicPrefix)/status/\(instanceID)" }
}

/// A configuration value that is present but unusable.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let key: String
    public let problem: String
    public var description: String { "configuration \(key): \(problem)" }
}

extension ServiceConfiguration {
    /// Reads the layers. `file` may be missing unless `fileRequired`; `overrides` are the flags.
    public static func load(
        file: String?,
        fileRequired: Bool,
        overrides: [String: String] = [:],
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> ServiceConfiguration {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, value) in overrides {
            values[AbsoluteConfigKey(key.split(separator: ".").map(String.init))] = .init(.string(value), isSecret: Self.secretKeys.contains(key))
        }
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "flags", values: values),
            EnvironmentVariablesProvider(
                environmentVariables: try Self.resolvingSecretFiles(environment),
                secretsSpecifier: .specific(Set(Self.secretVariables))
            ).prefixKeys(with: ["morpheus"]),
        ]
        if let file {
            providers.append(try await FileProvider<JSONSnapshot>(filePath: FilePath(file), allowMissing: !fileRequired))
        }
        return try ServiceConfiguration(reader: ConfigReader(providers: providers))
    }

    static let secretKeys: Set<String> = ["broker.password", "database.url", "privacy.pseudonymSecret"]
    static let secretVariables = ["MORPHEUS_BROKER_PASSWORD", "MORPHEUS_DATABASE_URL", "MORPHEUS_PRIVACY_PSEUDONYM_SECRET"]

    /// The `…_FILE` convention of container secrets, for the secrets: `MORPHEUS_DATABASE_URL_FILE`,
    /// `MORPHEUS_BROKER_PASSWORD_FILE`, `MORPHEUS_PRIVACY_PSEUDONYM_SECRET_FILE` name a file whose
    /// content (one trailing newline dropped) is the value, so that a secret is in neither the
    /// environment nor the process list. Setting both is an error. (Only these: other keys end
    /// in `File` themselves, like `MORPHEUS_BROKER_TLS_CA_FILE`.)
    static func resolvingSecretFiles(_ environment: [String: String]) throws -> [String: String] {
        var resolved = environment
        for target in secretVariables {
            let name = target + "_FILE"
            guard let path = environment[name] else { continue }
            let key = target.dropFirst("MORPHEUS_".count).lowercased()
            guard environment[target] == nil else {
                throw ConfigurationError(key: key, problem: "both \(target) and \(name) are set; give one")
            }
            guard let data = FileManager.default.contents(atPath: path), var text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(key: key, problem: "\(name): cannot read \(path)")
            }
            if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
            resolved[target] = text
            resolved[name] = nil
        }
        return resolved
    }

    init(reader config: ConfigReader) throws {
        self.init()
        func string(_ key: String) -> String? {
            config.string(forKey: ConfigKey(key.split(separator: ".").map(String.init)), isSecret: Self.secretKeys.contains(key))
        }
        // Numbers may come typed (JSON) or as text (environment, flags); anything else is an error.
        func ranged<T: Comparable>(_ key: String, typed: (ConfigKey) -> T?, parse: (String) -> T?, kind: String,
                                   in range: ClosedRange<T>, default value: T) throws -> T {
            let number = typed(ConfigKey(key.split(separator: ".").map(String.init))) ?? string(key).flatMap(parse)
            if number == nil, let text = string(key) {
                throw ConfigurationError(key: key, problem: "\(text.debugDescription) is not \(kind)")
            }
            let result = number ?? value
            guard range.contains(result) else {
                throw ConfigurationError(key: key, problem: "\(result) is outside \(range.lowerBound)…\(range.upperBound)")
            }
            return result
        }
        func int(_ key: String, in range: ClosedRange<Int>, default value: Int) throws -> Int {
            try ranged(key, typed: { config.int(forKey: $0) }, parse: { Int($0) }, kind: "a whole number", in: range, default: value)
        }
        func number(_ key: String, in range: ClosedRange<Double>, default value: Double) throws -> Double {
            try ranged(key, typed: { config.double(forKey: $0) ?? config.int(forKey: $0).map(Double.init) }, parse: { Double($0) },
                       kind: "a number", in: range, default: value)
        }
        // Typed (JSON) or as text (environment, flags).
        func bool(_ key: String, default value: Bool) throws -> Bool {
            if let text = string(key) {
                guard let flag = Bool(text.lowercased()) else { throw ConfigurationError(key: key, problem: "must be true or false") }
                return flag
            }
            return config.bool(forKey: ConfigKey(key.split(separator: ".").map(String.init))) ?? value
        }
        func name(_ key: String, default value: String) throws -> String {
            let text = string(key) ?? value
            guard !text.isEmpty, text.count <= 128, !text.contains(where: { "+#/ ".contains($0) }) else {
                throw ConfigurationError(key: key, problem: "must be 1–128 characters without '+', '#', '/' or spaces")
            }
            return text
        }

        instanceID = try name("instance.id", default: instanceID)
        shareGroup = try name("topics.shareGroup", default: shareGroup)
        topicPrefix = string("topics.prefix") ?? topicPrefix
        guard !topicPrefix.isEmpty, !topicPrefix.hasSuffix("/"), !topicPrefix.contains(where: { "+#".contains($0) }) else {
            throw ConfigurationError(key: "topics.prefix", problem: "must be a topic without wildcards or a trailing '/'")
        }

        broker.host = string("broker.host") ?? broker.host
        broker.port = try int("broker.port", in: 1...65_535, default: broker.port)
        broker.username = string("broker.username")
        broker.password = string("broker.password")
        broker.tlsCAFile = string("broker.tls.caFile")
        broker.tlsCertificateFile = string("broker.tls.certificateFile")
        broker.tlsKeyFile = string("broker.tls.keyFile")
        if (broker.tlsCertificateFile != nil || broker.tlsKeyFile != nil) && broker.tlsCAFile == nil {
            throw ConfigurationError(key: "broker.tls.caFile", problem: "a client certificate needs a CA file to verify the broker")
        }
        broker.keepAliveSeconds = try int("broker.keepAliveSeconds", in: 5...3600, default: broker.keepAliveSeconds)
        broker.sessionExpirySeconds = try int("broker.sessionExpirySeconds", in: 0...Int(UInt32.max), default: broker.sessionExpirySeconds)
        broker.receiveMaximum = try int("broker.receiveMaximum", in: 1...65_535, default: broker.receiveMaximum)

        database.url = string("database.url") ?? database.url
        database.poolSize = try int("database.poolSize", in: 1...64, default: database.poolSize)
        database.connectTimeoutSeconds = try int("database.connectTimeoutSeconds", in: 1...300, default: database.connectTimeoutSeconds)

        batchMaxSize = try int("batch.maxSize", in: 1...65_535, default: batchMaxSize)
        batchMaxWaitMilliseconds = try int("batch.maxWaitMilliseconds", in: 0...1000, default: batchMaxWaitMilliseconds)
        batchMaxBytes = try int("batch.maxBytes", in: (1 << 20)...(1 << 30), default: batchMaxBytes)
        outboxLeaseSeconds = try int("outbox.leaseSeconds", in: 1...3600, default: outboxLeaseSeconds)
        publishTimeoutSeconds = try int("outbox.publishTimeoutSeconds", in: 1...3600, default: publishTimeoutSeconds)
        // 0 days: the rule is off.
        func days(_ key: String, default value: Int?) throws -> Int? {
            let days = try int(key, in: 0...36_500, default: value ?? 0)
            return days == 0 ? nil : days
        }
        retention.deadLetterDays = try days("deadLetters.retentionDays", default: retention.deadLetterDays)
        retention.archiveAfterDaysInDataset = try days("retention.archiveAfterDaysInDataset", default: retention.archiveAfterDaysInDataset)
        retention.archiveAfterDays = try days("retention.archiveAfterDays", default: retention.archiveAfterDays)
        retention.archiveSize = try int("retention.archiveSize", in: 1...100_000, default: retention.archiveSize)
        retentionEnabled = try bool("retention.enabled", default: retentionEnabled)
        metricsPort = try int("metrics.port", in: 0...65_535, default: metricsPort)
        metricsHost = string("metrics.host") ?? metricsHost
        retentionIntervalSeconds = try int("retention.intervalSeconds", in: 1...86_400 * 7, default: retentionIntervalSeconds)
        reputationRefreshSeconds = try int("reputation.refreshSeconds", in: 1...3600, default: reputationRefreshSeconds)
        datasetsRoot = string("datasets.root") ?? datasetsRoot
        datasetBias.topContributorShare = try number("datasets.bias.topContributorShare", in: 0...1, default: datasetBias.topContributorShare)
        datasetBias.topTenShare = try number("datasets.bias.topTenShare", in: 0...1, default: datasetBias.topTenShare)
        datasetBias.gini = try number("datasets.bias.gini", in: 0...1, default: datasetBias.gini)
        datasetBias.stratumImbalance = try number("datasets.bias.stratumImbalance", in: 1...1e9, default: datasetBias.stratumImbalance)
        datasetBias.modelVersionSkew = try number("datasets.bias.modelVersionSkew", in: 1...1e9, default: datasetBias.modelVersionSkew)
        datasetBias.armSkew = try number("datasets.bias.armSkew", in: 1...1e9, default: datasetBias.armSkew)
        datasetBias.lowQualityShare = try number("datasets.bias.lowQualityShare", in: 0...1, default: datasetBias.lowQualityShare)
        allowDevelopmentSecret = try bool("privacy.allowDevelopmentSecret", default: allowDevelopmentSecret)
        gateEnabled = try bool("gate.enabled", default: gateEnabled)
        expertReview.minQuality = try number("review.minQuality", in: 0...1, default: expertReview.minQuality)
        expertReview.firstCorrections = try int("review.firstCorrections", in: 0...1_000_000, default: expertReview.firstCorrections)
        expertReview.audience = try int("review.audience", in: 0...1_000_000, default: expertReview.audience)
        statusIntervalSeconds = try int("status.intervalSeconds", in: 1...3600, default: statusIntervalSeconds)
        if let secret = string("privacy.pseudonymSecret") {
            guard secret.utf8.count >= 16 else {
                throw ConfigurationError(key: "privacy.pseudonymSecret", problem: "needs at least 16 bytes")
            }
            pseudonymSecret = secret
        }
        for type in CorrectionType.allCases {
            if let text = string("training.systemInstructions.\(type.rawValue)") { systemInstructions.byType[type] = text }
        }
        if let text = string("training.systemInstructions.default") { systemInstructions.fallback = text }
        switch string("log.format") ?? "text" {
        case "text": logJSON = false
        case "json": logJSON = true
        case let other: throw ConfigurationError(key: "log.format", problem: "\(other.debugDescription) is not text or json")
        }
        if let level = string("log.level") {
            guard let parsed = Logger.Level(rawValue: level) else {
                throw ConfigurationError(key: "log.level", problem: "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            logLevel = parsed
        }
    }

    /// The consuming connection: persistent session, member of the shared subscription. No
    /// last will: this connection is dropped on purpose while the database is down (its batch
    /// given back to the broker), which must not read as the instance being dead.
    func mqttConfiguration() -> MQTTClientConfiguration {
        MQTTClientConfiguration(
            host: broker.host,
            port: broker.port,
            clientID: instanceID,
            cleanStart: false,
            sessionExpiry: .seconds(broker.sessionExpirySeconds),
            keepAlive: .seconds(broker.keepAliveSeconds),
            username: broker.username,
            password: broker.password,
            tls: broker.tlsCAFile.map { .init(caFile: $0, certificateFile: broker.tlsCertificateFile, keyFile: broker.tlsKeyFile) },
            receiveMaximum: broker.receiveMaximum,
            maxBatchSize: batchMaxSize,
            maxBatchBytes: batchMaxBytes,
            batchWindow: .milliseconds(batchMaxWaitMilliseconds)
        )
    }

    /// The second connection, for what the service publishes (receipts, events, status): never
    /// paused by an unacknowledged batch, so its keep-alive holds whatever the database does,
    /// and it carries the last will `offline`. No session: what it has in flight at a crash is
    /// covered by editors republishing (receipts) and the outbox (events).
    func publisherConfiguration(lastWill: [UInt8]) -> MQTTClientConfiguration {
        MQTTClientConfiguration(
            host: broker.host,
            port: broker.port,
            clientID: instanceID + ".out",
            cleanStart: true,
            keepAlive: .seconds(broker.keepAliveSeconds),
            username: broker.username,
            password: broker.password,
            tls: broker.tlsCAFile.map { .init(caFile: $0, certificateFile: broker.tlsCertificateFile, keyFile: broker.tlsKeyFile) },
            lastWill: .init(topic: statusTopic, payload: lastWill, qos: .atLeastOnce, retain: true, contentType: "application/json"),
            publishTimeout: .seconds(publishTimeoutSeconds)
        )
    }

    func postgresConfiguration() throws -> PostgresConfiguration {
        try PostgresConfiguration(
            url: database.url, applicationName: "morpheus-feedback/\(instanceID)",
            connectTimeout: .seconds(database.connectTimeoutSeconds)
        )
    }

    /// What is safe to log: no password, no database password.
    public var summary: Logger.Metadata {
        [
            "instance": "\(instanceID)",
            "broker": "\(broker.host):\(broker.port)",
            "brokerUser": "\(broker.username ?? "-")",
            "tls": "\(broker.tlsCAFile != nil)",
            "database": "\((try? postgresConfiguration().description) ?? "invalid URL")",
            "topics": "\(topicPrefix)",
            "group": "\(shareGroup)",
        ]
    }
}
