import Foundation

/// A compiled regular expression (ICU, case-insensitive). `@unchecked Sendable`:
/// NSRegularExpression is immutable after creation and documented as safe to share between
/// threads.
final class Pattern: @unchecked Sendable {
    private let regex: NSRegularExpression

    init(_ pattern: String, caseSensitive: Bool = false) {
        regex = try! NSRegularExpression(pattern: pattern, options: caseSensitive ? [] : [.caseInsensitive])
    }

    /// The expression as written.
    var source: String { regex.pattern }

    func matches(_ text: String) -> Bool {
        regex.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
    }

    /// Every match, as substrings of `text`.
    func all(_ text: String) -> [Substring] {
        regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range, in: text).map { text[$0] } }
    }

    /// `text` with every match replaced by `template` (`$1` for groups).
    func replacing(_ text: String, with template: String) -> String {
        regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: template)
    }
}
