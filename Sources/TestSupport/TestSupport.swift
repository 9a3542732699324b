import Foundation
import NIOConcurrencyHelpers

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

    /// The Python of the reference checks (statsmodels, scipy, datasets; scripts/test.sh makes
    /// it from scripts/python-requirements.txt): MORPHEUS_PYTHON, else `.local/venv/bin/python`.
    public static var python: URL? {
        let path = ProcessInfo.processInfo.environment["MORPHEUS_PYTHON"]
            ?? repositoryRoot.appendingPathComponent(".local/venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: path) ? URL(fileURLWithPath: path) : nil
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

    /// A TCP port on loopback that nothing uses right now.
    ///
    /// Chosen below Linux's ephemeral range (32768+), so the many client connections of a
    /// parallel test run cannot take it as their source port before our server binds it.
    public static func freePort() -> Int {
        while true {
            let port = Int.random(in: 20_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let bound = withLoopbackAddress(port: port) { bind(fd, $0, $1) }
            close(fd)
            if bound == 0 { return port }
        }
    }

    /// Calls `body` (`bind`, `connect`) with 127.0.0.1:`port` as a `sockaddr` and its length.
    public static func withLoopbackAddress(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Int32) -> Int32 {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
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

/// Spawns `executable` with a clean signal mask and default dispositions.
///
/// Dispatch's worker threads block most signals and a spawned process inherits that mask, so a
/// child started from a test thread would otherwise ignore SIGTERM (Foundation's `Process`
/// does not reset it). `stdout`/`stderr` are descriptors to install as the child's 1 and 2.
func spawn(_ executable: String, _ arguments: [String], environment: [String: String], stdout: Int32, stderr: Int32) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, stdout, 1)
    posix_spawn_file_actions_adddup2(&actions, stderr, 2)
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
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
        argv.forEach { free($0) }
        envp.forEach { free($0) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    guard rc == 0 else { throw SpawnFailed(executable: executable, code: rc) }
    return pid
}

public struct SpawnFailed: Error, CustomStringConvertible {
    public let executable: String
    public let code: Int32
    public var description: String { "could not start \(executable): \(String(cString: strerror(code)))" }
}

/// The exit code of a `waitpid` status: the code itself, or 128 + the signal that ended it.
func exitCode(_ status: Int32) -> Int32 {
    status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
}

/// A child process whose standard output and error are collected line by line.
public final class ChildProcess: Sendable {
    public let processIdentifier: pid_t
    private let state = NIOLockedValueBox<(lines: [String], exit: Int32?, openStreams: Int)>(([], nil, 2))

    /// Starts `executable`; standard error lines are collected too, prefixed `stderr: `.
    public init(_ executable: URL, arguments: [String], environment: [String: String] = [:]) throws {
        var output: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]
        guard pipe(&output) == 0, pipe(&errors) == 0 else { throw SpawnFailed(executable: executable.path, code: errno) }
        // No end may leak into another child (tests spawn in parallel), or EOF never comes;
        // dup2 in the child clears the flag on its own 1 and 2.
        for fd in output + errors { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        let merged = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pid: pid_t
        do {
            pid = try spawn(executable.path, arguments, environment: merged, stdout: output[1], stderr: errors[1])
        } catch {
            for fd in output + errors { close(fd) }
            throw error
        }
        close(output[1])
        close(errors[1])
        processIdentifier = pid
        let state = self.state
        for (fd, prefix) in [(output[0], ""), (errors[0], "stderr: ")] {
            Thread {
                var partial: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = read(fd, &buffer, buffer.count)
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { break }
                    partial += buffer[0..<count]
                    while let newline = partial.firstIndex(of: 10) {
                        let line = prefix + String(decoding: partial[..<newline], as: UTF8.self)
                        partial.removeSubrange(...newline)
                        state.withLockedValue { $0.lines.append(line) }
                    }
                }
                close(fd)
                state.withLockedValue { $0.openStreams -= 1 }
            }.start()
        }
        Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            state.withLockedValue { $0.exit = exitCode(status) }
        }.start()
    }

    deinit {
        // A test that failed half-way must not leave its child running.
        if isRunning { _ = Glibc.kill(processIdentifier, SIGKILL) }
    }

    /// Every complete line printed so far.
    public var lines: [String] { state.withLockedValue { $0.lines } }
    public var isRunning: Bool { state.withLockedValue { $0.exit == nil } }
    /// The exit code, or 128 + signal; `nil` while running.
    public var exitStatus: Int32? { state.withLockedValue { $0.exit } }

    /// Waits until a printed line satisfies `predicate`.
    public func waitForLine(
        _ what: String, timeout: Duration = .seconds(10), where predicate: (String) -> Bool
    ) async throws {
        try await waitUntil(what, timeout: timeout) { lines.contains(where: predicate) }
    }

    /// Sends `signal` without waiting for anything.
    public func signal(_ signal: Int32) {
        if isRunning { _ = Glibc.kill(processIdentifier, signal) }
    }

    /// Sends `signal` (e.g. SIGKILL, SIGTERM) and waits for the process to end.
    public func kill(_ signal: Int32 = SIGKILL, timeout: Duration = .seconds(15)) async throws {
        if isRunning { _ = Glibc.kill(processIdentifier, signal) }
        try await waitUntil("process \(processIdentifier) to exit", timeout: timeout) { !isRunning }
    }

    /// Waits for the process to exit on its own and returns its exit code. Its last lines are
    /// collected first (the readers may still be draining the pipes when it exits), unless a
    /// descendant keeps them open for more than two seconds.
    public func waitForExit(timeout: Duration = .seconds(15)) async throws -> Int32 {
        try await waitUntil("process \(processIdentifier) to exit", timeout: timeout) { !isRunning }
        try? await waitUntil("output of \(processIdentifier) read", timeout: .seconds(2)) { state.withLockedValue { $0.openStreams == 0 } }
        return exitStatus ?? -1
    }
}

/// Runs a shell script of the project (scripts/NAME) and returns what it printed.
///
/// Scripts start daemons (mosquitto, postgres) that outlive them and inherit their descriptors,
/// so the output goes to a file rather than a pipe that would never reach EOF.
@discardableResult
public func runScript(_ name: String, _ arguments: [String], timeout: Duration = .seconds(120)) async throws -> String {
    let script = TestEnvironment.repositoryRoot.appendingPathComponent("scripts/\(name)").path
    let output = FileManager.default.temporaryDirectory.appendingPathComponent("script-\(UUID().uuidString).log").path
    defer { unlink(output) }
    let fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw SpawnFailed(executable: script, code: errno) }
    let pid = try spawn("/bin/bash", [script] + arguments, environment: ProcessInfo.processInfo.environment, stdout: fd, stderr: fd)
    close(fd)
    let exit = NIOLockedValueBox<Int32?>(nil)
    Thread {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exit.withLockedValue { $0 = exitCode(status) }
    }.start()
    try await waitUntil("scripts/\(name) to finish", timeout: timeout) { exit.withLockedValue { $0 != nil } }
    let code = exit.withLockedValue { $0 } ?? -1
    let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
    guard code == 0 else {
        throw ScriptFailed(script: name, arguments: arguments, status: code, output: text.split(separator: "\n").map(String.init))
    }
    return text
}

public struct ScriptFailed: Error, CustomStringConvertible {
    public let script: String
    public let arguments: [String]
    public let status: Int32
    public let output: [String]

    public init(script: String, arguments: [String], status: Int32, output: [String]) {
        self.script = script
        self.arguments = arguments
        self.status = status
        self.output = output
    }

    public var description: String {
        "scripts/\(script) \(arguments.joined(separator: " ")) exited with \(status):\n\(output.joined(separator: "\n"))"
    }
}

/// A PostgreSQL cluster of a test's own (scripts/postgres.sh with its own folder and a free
/// port), for tests that restart or stop the server. A port found free can be taken by another
/// test before the server binds it: then another port is tried.
public func startPrivatePostgres() async throws -> (directory: String, port: Int) {
    var lastError: (any Error)?
    for _ in 0..<3 {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(TestEnvironment.unique("pg")).path
        let port = TestEnvironment.freePort()
        do {
            try await runScript("postgres.sh", ["start", directory, "\(port)"])
            return (directory, port)
        } catch {
            lastError = error
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
    throw lastError!
}
