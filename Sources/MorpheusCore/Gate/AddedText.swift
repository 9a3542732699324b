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
    /// Characters added (for ASCII spans the byte count, without counting graphemes).
    public var addedCharacters: Int { spans.reduce(0) { $0 + (Bytes.isASCII($1) ? $1.utf8.count : $1.count) } }

    /// Words are split at white space; punctuation stays with its word, so a changed comma
    /// counts as a changed word.
    public init(original: String, corrected: String) {
        self = Self.ascii(original: original, corrected: corrected) ?? Self.general(original: original, corrected: corrected)
    }

    /// The diff on words as `Substring`s, for any text (`ascii` is the same on bytes).
    static func general(original: String, corrected: String) -> AddedText {
        let before = Self.words(original)
        let after = Self.words(corrected)
        let kept = Self.kept(before.map(\.text), after.map(\.text))
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
        return AddedText(spans: spans, originalWords: before.count, correctedWords: after.count, keptWords: kept.reduce(0) { $0 + ($1 ? 1 : 0) })
    }

    init(spans: [String], originalWords: Int, correctedWords: Int, keptWords: Int) {
        self.spans = spans
        self.originalWords = originalWords
        self.correctedWords = correctedWords
        self.keptWords = keptWords
    }

    struct Word { let text: Substring; let range: Range<String.Index> }

    /// Words split at white space, on Unicode scalars (ASCII decided without a property look-up).
    static func words(_ text: String) -> [Word] {
        // ASCII text (most): byte by byte, without decoding scalars.
        if Bytes.isASCII(text) {
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
        // Words as small integers: the table compares numbers, not strings.
        let (a, b) = Self.numbered(before[...], after[...])
        return kept(numbers: a, b)
    }

    /// `kept` on numbered words (`a`'s numbers are never negative; `b` has -1 for words `a`
    /// lacks, so equal numbers are equal words).
    static func kept(numbers before: [Int32], _ after: [Int32]) -> [Bool] {
        var kept = [Bool](repeating: false, count: after.count)
        var head = 0
        while head < before.count, head < after.count, before[head] == after[head] {
            kept[head] = true
            head += 1
        }
        // (Not the common tail: the walk below matches from the front, and where the subsequence
        // is not unique that choice decides which words count as added.)
        let n = before.count - head, m = after.count - head
        if n == 0 || m == 0 { return kept }
        let a = before[head...], b = after[head...]
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
        // (On buffer pointers: this loop is the diff's cost, n × m cells.)
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                lengths.withUnsafeMutableBufferPointer { table in
                    var i = n - 1
                    while i >= 0 {
                        let row = i * width, next = row + width, word = a[i]
                        var j = m - 1
                        while j >= 0 {
                            table[row + j] = word == b[j] ? table[next + j + 1] + 1 : max(table[next + j], table[row + j + 1])
                            j -= 1
                        }
                        i -= 1
                    }
                    var j = 0
                    i = 0
                    while i < n && j < m {
                        if a[i] == b[j] {
                            kept[head + j] = true
                            i += 1
                            j += 1
                        } else if table[(i + 1) * width + j] >= table[i * width + j + 1] {
                            i += 1
                        } else {
                            j += 1
                        }
                    }
                }
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
        if before.allSatisfy({ Bytes.isASCII($0) }) && after.allSatisfy({ Bytes.isASCII($0) }) {
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

extension AddedText {
    /// The diff of two ASCII texts (nearly all) on their bytes: the same words (split at the
    /// same white space), the same numbering relation and so the same kept words and spans as
    /// the general path, without a `Substring` or a `Hasher` per word. `nil` for other text.
    static func ascii(original: String, corrected: String) -> AddedText? {
        Bytes.with(original) { before -> AddedText? in
            Bytes.with(corrected) { after -> AddedText? in
                guard Bytes.isASCII(before), Bytes.isASCII(after) else { return nil }
                let beforeWords = wordRanges(before), afterWords = wordRanges(after)
                let (a, b) = numbered(before, beforeWords, after, afterWords)
                let kept = Self.kept(numbers: a, b)
                var spans: [String] = []
                var start = -1, end = -1
                for (index, word) in afterWords.enumerated() {
                    if kept[index] {
                        if start >= 0 { spans.append(String(decoding: UnsafeBufferPointer(rebasing: after[start..<end]), as: UTF8.self)) }
                        start = -1
                    } else {
                        if start < 0 { start = word.lowerBound }
                        end = word.upperBound
                    }
                }
                if start >= 0 { spans.append(String(decoding: UnsafeBufferPointer(rebasing: after[start..<end]), as: UTF8.self)) }
                return AddedText(spans: spans, originalWords: beforeWords.count, correctedWords: afterWords.count,
                                 keptWords: kept.reduce(0) { $0 + ($1 ? 1 : 0) })
            }
        }
    }

    /// Byte ranges of the runs between ASCII white space (what `words` splits at).
    static func wordRanges(_ bytes: UnsafeBufferPointer<UInt8>) -> [Range<Int>] {
        var words: [Range<Int>] = []
        words.reserveCapacity(32)
        var start = -1
        for index in 0..<bytes.count {
            if Bytes.isSpace(bytes[index]) {
                if start >= 0 { words.append(start..<index) }
                start = -1
            } else if start < 0 {
                start = index
            }
        }
        if start >= 0 { words.append(start..<bytes.count) }
        return words
    }

    /// `numbered` for ASCII words given as byte ranges: an open-addressing table keyed by an
    /// FNV-1a hash of the bytes, compared byte for byte on a hit.
    static func numbered(_ before: UnsafeBufferPointer<UInt8>, _ a: [Range<Int>],
                         _ after: UnsafeBufferPointer<UInt8>, _ b: [Range<Int>]) -> ([Int32], [Int32]) {
        var capacity = 16
        while capacity < a.count * 2 { capacity <<= 1 }
        let mask = capacity - 1
        var slots = [Int32](repeating: -1, count: capacity)  // a number, -1 for empty
        var firsts: [Range<Int>] = []  // each number's first word in `before`
        firsts.reserveCapacity(a.count)
        func hash(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int {
            Bytes.fnv1a(UnsafeBufferPointer(rebasing: bytes[range]))
        }
        func same(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ first: Range<Int>) -> Bool {
            UnsafeBufferPointer(rebasing: bytes[range]).elementsEqual(UnsafeBufferPointer(rebasing: before[first]))
        }
        var numbersBefore = [Int32]()
        numbersBefore.reserveCapacity(a.count)
        for word in a {
            var slot = hash(before, word) & mask
            while true {
                let number = slots[slot]
                if number < 0 {
                    slots[slot] = Int32(firsts.count)
                    numbersBefore.append(Int32(firsts.count))
                    firsts.append(word)
                    break
                }
                if same(before, word, firsts[Int(number)]) {
                    numbersBefore.append(number)
                    break
                }
                slot = (slot + 1) & mask
            }
        }
        var numbersAfter = [Int32]()
        numbersAfter.reserveCapacity(b.count)
        for word in b {
            var slot = hash(after, word) & mask
            var found: Int32 = -1
            while slots[slot] >= 0 {
                if same(after, word, firsts[Int(slots[slot])]) {
                    found = slots[slot]
                    break
                }
                slot = (slot + 1) & mask
            }
            numbersAfter.append(found)
        }
        return (numbersBefore, numbersAfter)
    }
}
