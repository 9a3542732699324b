import Foundation
import Synchronization

/// Helpers shared by the integration tests: where the project's private services are, how to
/// wait for a condition with a deadline, and how to run a child process and read its lines.
public enum TestEnvironment {
    /// The checkout's root folder.
    public static let repositoryRoot: URL = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url
    }()

    /// Port of the project's private broker (scripts/broker.sh), overridable for other setups.
    public static var brokerPort: Int {
        Int(ProcessInfo.processInfo.environment["MORPHEUS_TEST_BROKER_PORT"] ?? "") ?? 18830
    }

    /// URL of the test database, as exported by scripts/test.sh.
    public static var databaseURL: String? {
        ProcessInfo.processInfo.environment["MORPHEUS_TEST_DATABASE_URL"]
    }

    /// A name unique to this test run, for client ids, topics and schemas.
    public static func unique(_ prefix: String) -> String {
        "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
    }

    /// The folder holding the built products (the test bundle sits beside the executables).
    public static var productsDirectory: URL {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(),
            Bundle.main.bundleURL,
            Bundle.main.bundleURL.deletingLastPathComponent(),
        ]
        for candidate in candidates where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("mqtt-probe").path) {
            return candidate
        }
        return candidates[0]
    }

    /// A TCP port on loopback that nothing listens on right now.
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        _ = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Thrown when a condition did not become true before its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let what: String
    public var description: String { "deadline exceeded waiting for \(what)" }
}

/// Polls `condition` until it is true or `timeout` passes.
public func waitUntil(
    _ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw DeadlineExceeded(what: what) }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A child process whose standard output is collected line by line.
public final class ChildProcess: Sendable {
    private let process: Process
    private final class LineBuffer: Sendable {
        let state = Mutex<(lines: [String], partial: String)>(([], ""))
    }
    private let collected = LineBuffer()

    /// Starts `executable` with `arguments`. Standard error is collected too, prefixed `stderr: `;
    /// the child never inherits our output, so it cannot hold the test runner's pipe open.
    public init(_ executable: URL, arguments: [String], environment: [String: String]? = nil) throws {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let collected = self.collected
        output.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            collected.state.withLock { state in
                state.partial += String(decoding: data, as: UTF8.self)
                while let newline = state.partial.firstIndex(of: "\n") {
                    state.lines.append(String(state.partial[..<newline]))
                    state.partial = String(state.partial[state.partial.index(after: newline)...])
                }
            }
        }
        errors.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            let text = String(decoding: data, as: UTF8.self)
            collected.state.withLock { state in
                state.lines += text.split(separator: "\n").map { "stderr: \($0)" }
            }
        }
        try process.run()
    }

    deinit {
        // A test that failed half-way must not leave its child running.
        if process.isRunning { _ = Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    /// Every complete line printed so far.
    public var lines: [String] { collected.state.withLock { $0.lines } }

    public var processIdentifier: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    /// Waits until a printed line satisfies `predicate`.
    public func waitForLine(
        _ what: String, timeout: Duration = .seconds(10), where predicate: (String) -> Bool
    ) async throws {
        try await waitUntil(what, timeout: timeout) { lines.contains(where: predicate) }
    }

    /// Sends `signal` (e.g. SIGKILL, SIGTERM) and waits for the process to end.
    public func kill(_ signal: Int32 = SIGKILL, timeout: Duration = .seconds(15)) async throws {
        if process.isRunning { _ = Foundation.kill(process.processIdentifier, signal) }
        try await waitUntil("process \(process.processIdentifier) to exit", timeout: timeout) { !process.isRunning }
    }

    /// Waits for the process to exit on its own.
    public func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        try await waitUntil("process \(process.processIdentifier) to exit", timeout: timeout) { !process.isRunning }
        return process.terminationStatus
    }
}

/// Runs a shell script of the project (scripts/NAME) and returns what it printed.
///
/// Scripts start daemons (mosquitto, postgres) that outlive them and inherit their file
/// descriptors, which keeps Foundation's `Process` from ever reaping the script. So this uses
/// `posix_spawn`, sends the output to a file rather than a pipe, and `waitpid`s on a thread.
@discardableResult
public func runScript(_ name: String, _ arguments: [String]) async throws -> String {
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/\(name)").path
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString).log").path
    defer { unlink(output) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    // Dispatch's worker threads block most signals, and a spawned process inherits that mask:
    // a broker started from here would then ignore SIGTERM. Start children with a clean slate.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    var defaults = sigset_t()
    sigfillset(&defaults)
    sigdelset(&defaults, SIGKILL)
    sigdelset(&defaults, SIGSTOP)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    let argv = (["/bin/bash", script] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/bin/bash", &actions, &attributes, argv, environ)
    guard rc == 0 else { throw ScriptFailed(script: name, arguments: arguments, status: rc, output: ["posix_spawn failed"]) }
    let child = pid
    let status = await withCheckedContinuation { (continuation: CheckedContinuation<Int32, Never>) in
        let waiter = Thread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            continuation.resume(returning: status)
        }
        waiter.start()
    }
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    // A normal exit has the low 7 bits clear; its code sits in the next byte.
    let exitCode = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    guard exitCode == 0 else {
        throw ScriptFailed(script: name, arguments: arguments, status: exitCode, output: text.split(separator: "\n").map(String.init))
    }
    return text
}

public struct ScriptFailed: Error, CustomStringConvertible {
    public let script: String
    public let arguments: [String]
    public let status: Int32
    public let output: [String]
    public var description: String {
        "scripts/\(script) \(arguments.joined(separator: " ")) exited with \(status):\n\(output.joined(separator: "\n"))"
    }
}
