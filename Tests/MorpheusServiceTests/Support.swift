import Foundation
import MorpheusCore
import TestSupport

/// One service instance of a test: its own id and topic prefix, so tests never meet.
struct Instance {
    let id = TestEnvironment.unique("svc")
    var prefix = TestEnvironment.unique("e2e") + "/v1"
    var statusTopic: String { "\(prefix)/status/\(id)" }
}

func startService(_ instance: Instance, databaseURL: String, brokerPort: Int = TestEnvironment.brokerPort,
                  environment extra: [String: String] = [:]) throws -> ChildProcess {
    try ChildProcess(
        TestEnvironment.productsDirectory.appendingPathComponent("morpheus-feedback"),
        arguments: [
            "--config", TestEnvironment.repositoryRoot.appendingPathComponent("config/morpheus.json").path,
            "--instance-id", instance.id, "--topic-prefix", instance.prefix,
        ],
        environment: [
            "MORPHEUS_DATABASE_URL": databaseURL,
            "MORPHEUS_BROKER_PORT": "\(brokerPort)",
            "MORPHEUS_STATUS_INTERVAL_SECONDS": "1",
            // Test instances never come back after their test: their sessions should not sit in
            // the broker's persistence for a day.
            "MORPHEUS_BROKER_SESSION_EXPIRY_SECONDS": "300",
        ].merging(extra) { _, new in new }
    )
}

/// `mosquitto_sub` printing each status payload on its own line.
func watchStatus(_ instance: Instance, brokerPort: Int = TestEnvironment.brokerPort) throws -> ChildProcess {
    try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_sub"), arguments: [
        "-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(brokerPort)", "-q", "1", "-t", instance.statusTopic,
    ])
}


/// `mosquitto_sub` on `filters`, printing `topic|correlation data|payload` per message.
func watch(_ filters: [String]) throws -> ChildProcess {
    try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_sub"), arguments: [
        "-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-q", "1", "-F", "%t|%D|%p",
    ] + filters.flatMap { ["-t", $0] })
}

/// Publishes with Eclipse's `mosquitto_pub` at QoS 1, with optional MQTT 5 properties.
func mosquittoPublish(_ topic: String, payload: String, responseTopic: String? = nil, correlationData: String? = nil) async throws {
    var arguments = ["-V", "mqttv5", "-h", "127.0.0.1", "-p", "\(TestEnvironment.brokerPort)", "-q", "1", "-t", topic, "-m", payload]
    if let responseTopic { arguments += ["-D", "publish", "response-topic", responseTopic] }
    if let correlationData { arguments += ["-D", "publish", "correlation-data", correlationData] }
    let publisher = try ChildProcess(URL(fileURLWithPath: "/usr/bin/mosquitto_pub"), arguments: arguments)
    let status = try await publisher.waitForExit()
    if status != 0 { throw ScriptFailed(script: "mosquitto_pub", arguments: arguments, status: status, output: publisher.lines) }
}

/// A message `watch` printed.
struct Observed {
    let topic: String
    let correlation: String
    let payload: String

    init?(_ line: String) {
        let parts = line.split(separator: "|", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        topic = String(parts[0])
        correlation = String(parts[1])
        payload = String(parts[2])
    }

    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(payload.utf8))) as? [String: Any] ?? [:]
    }
}

/// Returns once `watcher` (a `watch` process) demonstrably receives `topic`: a marker is
/// published until it shows up, so nothing published afterwards can be missed.
func waitSubscribed(_ watcher: ChildProcess, topic: String) async throws {
    let marker = "marker-\(UUID().uuidString)"
    // A deadline, not a wait: on a loaded machine starting mosquitto_sub and each mosquitto_pub
    // has taken longer than ten seconds together (a CI run failed so).
    try await waitUntil("mosquitto_sub subscribed to \(topic)", timeout: .seconds(30)) {
        try await mosquittoPublish(topic, payload: marker)
        try await Task.sleep(for: .milliseconds(50))
        return watcher.lines.contains { $0.hasSuffix("|\(marker)") }
    }
}

/// A service process under test with a database of its own and a watcher of its status.
struct ServiceUnderTest {
    let database: ScratchDatabase
    let instance: Instance
    let status: ChildProcess
    let process: ChildProcess

    /// Creates the database, starts the service and waits until it reports `online`.
    static func start(_ instance: Instance = Instance(), environment: [String: String] = [:]) async throws -> ServiceUnderTest {
        let database = try await ScratchDatabase.create()
        let status = try watchStatus(instance)
        let process = try startService(instance, databaseURL: database.url, environment: environment)
        try await waitUntil("service online", timeout: .seconds(30)) { status.lines.contains { $0.contains("\"online\"") } }
        return ServiceUnderTest(database: database, instance: instance, status: status, process: process)
    }

    /// The statuses published so far.
    var statuses: [ServiceStatus] { status.lines.compactMap { try? ServiceStatus.decode(Array($0.utf8)) } }

    /// SIGTERM, wait for the exit and the final `offline` status, drop the database; returns
    /// the exit status. `statuses` stays readable afterwards.
    @discardableResult
    func stop() async throws -> Int32? {
        try await process.kill(SIGTERM, timeout: .seconds(10))
        try await waitUntil("the offline status") { statuses.last?.state == .offline }
        try await status.kill(SIGTERM)
        try await database.drop()
        return process.exitStatus
    }
}

/// A Mosquitto of a test's own (scripts/broker.sh with its own folder and port), for tests
/// that restart or kill the broker without disturbing the others.
struct PrivateBroker {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("broker")).path
    let port = TestEnvironment.freePort()

    /// Runs `body` with a broker of its own and removes the broker however `body` ends: a
    /// test failing half-way must not leave a Mosquitto running behind it.
    static func with<T>(_ body: (PrivateBroker) async throws -> T) async throws -> T {
        let broker = PrivateBroker()
        do {
            try await broker.start()
            let result = try await body(broker)
            await broker.remove()
            return result
        } catch {
            await broker.remove()
            throw error
        }
    }

    func start() async throws { try await runScript("broker.sh", ["start", directory, "\(port)"]) }
    /// SIGTERM: the broker saves its persistence file on the way out.
    func stop() async throws { try await runScript("broker.sh", ["stop", directory, "\(port)"]) }
    /// SIGKILL: whatever arrived since the last autosave is gone.
    func kill() async throws {
        let pid = try String(contentsOfFile: "\(directory)/mosquitto.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        _ = Glibc.kill(pid_t(pid) ?? 0, SIGKILL)
        try await waitUntil("the broker to die") { !FileManager.default.fileExists(atPath: "/proc/\(pid)/cmdline") || (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8))?.contains("State:\tZ") == true }
    }
    func remove() async {
        try? await stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
