import Foundation
import NIOConcurrencyHelpers

/// Progress of a long run on standard error: a bar redrawn in place on a terminal (rows/s and
/// ETA), plain lines every few seconds otherwise (logs, CI).
final class ProgressMeter: Sendable {
    private struct State {
        var lastDraw: ContinuousClock.Instant?
        var drawn = false
    }

    let label: String
    let started = ContinuousClock.now
    let terminal = isatty(STDERR_FILENO) == 1
    private let state = NIOLockedValueBox(State())

    init(label: String) {
        self.label = label
    }

    func update(_ done: Int, of total: Int) {
        let now = ContinuousClock.now
        let draw = state.withLockedValue { state -> Bool in
            let interval: Duration = terminal ? .milliseconds(200) : .seconds(5)
            guard done >= total || state.lastDraw.map({ now - $0 >= interval }) ?? true else { return false }
            state.lastDraw = now
            state.drawn = true
            return true
        }
        guard draw else { return }
        let elapsed = Self.seconds(now - started)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let figures = String(format: "%d/%d rows  %.0f rows/s  ETA %.0f s", done, total, rate, eta)
        if terminal {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(String(format: "%3.0f", fraction * 100)) %  \(figures)\u{1B}[K".utf8))
        } else {
            FileHandle.standardError.write(Data("\(label): \(String(format: "%.0f", fraction * 100)) %  \(figures)\n".utf8))
        }
    }

    /// Ends the bar's line.
    func finish() {
        if terminal, state.withLockedValue({ $0.drawn }) { FileHandle.standardError.write(Data("\n".utf8)) }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
