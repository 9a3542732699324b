/// What a user added to a text: the runs of words of the corrected side that the original does
/// not have in the same order (a word-level longest-common-subsequence diff). The gate judges
/// these, not the model's output: removing a link or a swear word the model wrote is a clean
/// correction.
public struct AddedText: Sendable, Equatable {
    /// The added runs, each as it stands in the corrected text.
    public let spans: [String]
    /// Words of each side, and how many of the corrected side's words were kept.
    public let originalWords: Int, correctedWords: Int, keptWords: Int

    public var isEmpty: Bool { spans.isEmpty }
    /// The share of words changed: 0 for the same words, 1 for nothing kept.
    public var change: Double { 1 - Double(keptWords) / Double(max(originalWords, correctedWords, 1)) }
    public var addedCharacters: Int { spans.reduce(0) { $0 + $1.count } }

    /// Words are split at white space; punctuation stays with its word, so a changed comma
    /// counts as a changed word.
    public init(original: String, corrected: String) {
        let before = Self.words(original)
        let after = Self.words(corrected)
        let kept = Self.kept(before.map(\.text), after.map(\.text))
        originalWords = before.count
        correctedWords = after.count
        keptWords = kept.reduce(0) { $0 + ($1 ? 1 : 0) }
        var spans: [String] = []
        var start: String.Index?
        var end: String.Index?
        for (index, word) in after.enumerated() {
            if kept[index] {
                if let start, let end { spans.append(String(corrected[start..<end])) }
                start = nil
                end = nil
            } else {
                if start == nil { start = word.range.lowerBound }
                end = word.range.upperBound
            }
        }
        if let start, let end { spans.append(String(corrected[start..<end])) }
        self.spans = spans
    }

    struct Word { let text: Substring; let range: Range<String.Index> }

    /// Words split at white space, on Unicode scalars (ASCII decided without a property look-up).
    static func words(_ text: String) -> [Word] {
        // ASCII text (most): byte by byte, without decoding scalars.
        if text.utf8.allSatisfy({ $0 < 0x80 }) {
            return split(text, text.utf8) { $0 == 0x20 || (0x09...0x0D).contains($0) }
        }
        return split(text, text.unicodeScalars) {
            $0.isASCII ? ($0.value == 0x20 || (0x09...0x0D).contains($0.value)) : $0.properties.isWhitespace
        }
    }

    /// The runs of `view`'s elements between those `isSpace` accepts, as words of `text`.
    private static func split<View: Collection>(_ text: String, _ view: View, isSpace: (View.Element) -> Bool) -> [Word]
    where View.Index == String.Index {
        var words: [Word] = []
        words.reserveCapacity(32)
        var start: String.Index?
        var index = view.startIndex
        while index < view.endIndex {
            if isSpace(view[index]) {
                if let begin = start { words.append(Word(text: text[begin..<index], range: begin..<index)) }
                start = nil
            } else if start == nil {
                start = index
            }
            index = view.index(after: index)
        }
        if let begin = start { words.append(Word(text: text[begin..<text.endIndex], range: begin..<text.endIndex)) }
        return words
    }

    /// For each word of `after`, whether it belongs to a longest common subsequence with
    /// `before`. The common head is matched first (as the walk through the table would), the
    /// rest with the quadratic table; beyond a size where that is too costly, a
    /// word counts as kept while the original still has an unused copy of it (order ignored).
    static func kept(_ before: [Substring], _ after: [Substring]) -> [Bool] {
        var kept = [Bool](repeating: false, count: after.count)
        var head = 0
        while head < before.count, head < after.count, before[head] == after[head] {
            kept[head] = true
            head += 1
        }
        // (Not the common tail: the walk below matches from the front, and where the subsequence
        // is not unique that choice decides which words count as added.)
        let tail = 0
        let n = before.count - head - tail, m = after.count - head - tail
        if n == 0 || m == 0 { return kept }
        let middleBefore = before[head..<(head + n)], middleAfter = after[head..<(head + m)]
        // Words as small integers: the table compares numbers, not strings.
        let (a, b) = Self.numbered(middleBefore, middleAfter)
        if n * m > 2_000_000 {
            var available: [Int32: Int] = [:]
            for word in a { available[word, default: 0] += 1 }
            for (offset, word) in b.enumerated() where (available[word] ?? 0) > 0 {
                available[word]! -= 1
                kept[head + offset] = true
            }
            return kept
        }
        // lengths[i][j]: LCS of a[i...] and b[j...], in one flat array.
        var lengths = [Int32](repeating: 0, count: (n + 1) * (m + 1))
        let width = m + 1
        lengths.withUnsafeMutableBufferPointer { table in
            for i in stride(from: n - 1, through: 0, by: -1) {
                let row = i * width, next = (i + 1) * width, word = a[i]
                for j in stride(from: m - 1, through: 0, by: -1) {
                    table[row + j] = word == b[j] ? table[next + j + 1] + 1 : max(table[next + j], table[row + j + 1])
                }
            }
        }
        var i = 0, j = 0
        while i < n && j < m {
            if a[i] == b[j] {
                kept[head + j] = true
                i += 1
                j += 1
            } else if lengths[(i + 1) * width + j] >= lengths[i * width + j + 1] {
                i += 1
            } else {
                j += 1
            }
        }
        return kept
    }
}

extension AddedText {
    /// Each word of `before` numbered by first appearance, and the words of `after` by the
    /// same numbers (-1 for words `before` lacks). When every word is ASCII, canonical
    /// equivalence is byte equality and words are hashed as bytes: String hashing normalizes.
    static func numbered(_ before: ArraySlice<Substring>, _ after: ArraySlice<Substring>) -> ([Int32], [Int32]) {
        if before.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) && after.allSatisfy({ $0.utf8.allSatisfy { $0 < 0x80 } }) {
            var ids: [ASCIIWord: Int32] = [:]
            ids.reserveCapacity(before.count)
            let a = before.map { word in
                let key = ASCIIWord(word)
                if let id = ids[key] { return id }
                let id = Int32(ids.count)
                ids[key] = id
                return id
            }
            return (a, after.map { ids[ASCIIWord($0)] ?? -1 })
        }
        var ids: [Substring: Int32] = [:]
        ids.reserveCapacity(before.count)
        let a = before.map { word in ids[word] ?? { let id = Int32(ids.count); ids[word] = id; return id }() }
        return (a, after.map { ids[$0] ?? -1 })
    }
}

/// An ASCII word compared and hashed by its bytes.
struct ASCIIWord: Hashable {
    let text: Substring
    init(_ text: Substring) { self.text = text }

    static func == (lhs: ASCIIWord, rhs: ASCIIWord) -> Bool { lhs.text.utf8.elementsEqual(rhs.text.utf8) }

    func hash(into hasher: inout Hasher) {
        var text = text
        text.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }
}

/// Both sides of a text correction with the changed words marked, for people reading a review
/// item: removed runs as `[-…-]` in the original, added runs as `{+…+}` in the corrected text.
public enum WordDiff {
    public static func marked(original: String, corrected: String) -> (original: String, corrected: String) {
        let before = AddedText.words(original), after = AddedText.words(corrected)
        let keptAfter = AddedText.kept(before.map(\.text), after.map(\.text))
        let keptBefore = AddedText.kept(after.map(\.text), before.map(\.text))
        return (mark(before, kept: keptBefore, open: "[-", close: "-]"), mark(after, kept: keptAfter, open: "{+", close: "+}"))
    }

    static func mark(_ words: [AddedText.Word], kept: [Bool], open: String, close: String) -> String {
        var out: [String] = []
        var run: [Substring] = []
        func flush() {
            if !run.isEmpty { out.append(open + run.joined(separator: " ") + close) }
            run.removeAll()
        }
        for (index, word) in words.enumerated() {
            if kept[index] {
                flush()
                out.append(String(word.text))
            } else {
                run.append(word.text)
            }
        }
        flush()
        return out.joined(separator: " ")
    }
}
