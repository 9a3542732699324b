import Foundation

/// Views of a text that undo the usual ways of hiding a word from a filter: compatibility forms
/// (NFKC: fullwidth, ligatures, mathematical letters), invisible characters, look-alike letters
/// from other scripts, diacritics, leetspeak, and letters spaced or dotted apart.
public struct FoldedText: Sendable {
    /// NFKC, lower-cased, invisible characters removed; other scripts kept (for their own lexicons).
    public let plain: String
    /// `plain` with look-alikes folded to Latin, diacritics removed and leetspeak undone, in
    /// tokens of letters; runs of single letters (`f u c k`, `f.u.c.k`) joined into one token.
    public let tokens: [String]
    /// Whether `plain` is plain ASCII (most text is; the fast paths depend on it).
    public let isASCII: Bool

    public init(_ text: String) {
        plain = Self.plain(text)
        isASCII = plain.utf8.allSatisfy { $0 < 0x80 }
        tokens = Self.tokens(plain)
    }

    /// The folded tokens of each sentence, joined by single spaces (for phrase patterns that
    /// must not reach across a full stop). Computed on demand: only suspicious texts need it.
    public var sentences: [String] {
        Self.sentenceBreak.split(plain).map { Self.tokens($0).joined(separator: " ") }.filter { !$0.isEmpty }
    }

    /// A full stop, question or exclamation mark followed by white space, a semicolon, a colon
    /// before white space, a line break. Dots inside words (`f.u.c.k`, `hyper.space`) and `!`
    /// used as a letter (`sh!t`) do not end a sentence.
    static let sentenceBreak = SentenceBreak()

    /// Zero-width and other format characters (Unicode category Cf), and variation selectors.
    static func isInvisible(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .format: return true
        default: return (0xFE00...0xFE0F).contains(scalar.value) || (0xE0100...0xE01EF).contains(scalar.value)
        }
    }

    static func plain(_ text: String) -> String {
        // ASCII is its own NFKC form and has no invisible format characters.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text.lowercased() }
        let compatible = text.precomposedStringWithCompatibilityMapping
        var scalars = String.UnicodeScalarView()
        for scalar in compatible.unicodeScalars where !isInvisible(scalar) { scalars.append(scalar) }
        return String(scalars).lowercased()
    }

    /// Cyrillic and Greek letters that look like Latin ones, as spammers use them.
    static let confusables: [Character: Character] = [
        "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
        "у": "y", "х": "x", "ѕ": "s", "і": "i", "ї": "i", "ј": "j", "ԁ": "d", "ɡ": "g", "ո": "n", "ս": "u",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u",
        "χ": "x", "γ": "y", "ω": "w", "ł": "l", "ø": "o", "đ": "d", "ı": "i", "ß": "s",
    ]

    /// Digits and symbols used for letters inside words.
    static let leet: [Character: Character] = [
        "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g", "@": "a", "$": "s", "!": "i", "|": "i", "€": "e",
    ]

    /// Characters that stand for a hidden letter (`f*ck`, `sh#t`).
    static let masks: Set<Character> = ["*", "#", "%", "_", "?"]

    static func tokens(_ plain: String) -> [String] {
        if plain.utf8.allSatisfy({ $0 < 0x80 }) { return asciiTokens(plain) }
        // Raw tokens: runs of letters, digits, leet symbols and masks.
        var raw: [String] = []
        var current = ""
        for character in plain {
            if character.isLetter || character.isNumber || leet[character] != nil || masks.contains(character) || character.isCombiningMark {
                current.append(character)
            } else {
                if !current.isEmpty { raw.append(current) }
                current = ""
            }
        }
        if !current.isEmpty { raw.append(current) }

        // Fold each token: look-alikes, diacritics, leetspeak (only in tokens with a letter, so
        // numbers stay numbers).
        var folded: [String] = []
        for token in raw {
            let hasLetter = token.contains { $0.isLetter }
            var out = ""
            for character in token {
                if let latin = confusables[character] { out.append(latin); continue }
                if hasLetter, let letter = leet[character] { out.append(letter); continue }
                if character.isCombiningMark { continue }
                out.append(character)
            }
            let stripped = out.utf8.allSatisfy({ $0 < 0x80 }) ? out : out.folding(options: [.diacriticInsensitive], locale: nil)
            let trimmed = hasLetter ? String(stripped.drop { masks.contains($0) }.reversed().drop { masks.contains($0) }.reversed()) : stripped
            if !trimmed.isEmpty { folded.append(trimmed) }
        }

        // Letters spaced or dotted apart: three or more one-letter tokens in a row form a word.
        var joined: [String] = []
        var run: [String] = []
        func flush() {
            if run.count >= 3 { joined.append(run.joined()) } else { joined += run }
            run.removeAll()
        }
        for token in folded {
            if token.count == 1, token.first!.isLetter { run.append(token) } else {
                flush()
                joined.append(token)
            }
        }
        flush()
        return joined
    }
}

extension FoldedText {
    /// The same as `tokens` for lower-cased ASCII, on bytes (the common case, and the hot path).
    static func asciiTokens(_ plain: String) -> [String] {
        func kind(_ byte: UInt8) -> (letter: Bool, digit: Bool, leet: Bool, mask: Bool) {
            let letter = (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte)
            let digit = (0x30...0x39).contains(byte)
            let leet = byte == 0x40 || byte == 0x24 || byte == 0x21 || byte == 0x7C
            let mask = byte == 0x2A || byte == 0x23 || byte == 0x25 || byte == 0x5F || byte == 0x3F
            return (letter, digit, leet, mask)
        }
        var folded: [String] = []
        var current: [UInt8] = []
        var hasLetter = false
        func flush() {
            defer { current.removeAll(keepingCapacity: true); hasLetter = false }
            guard !current.isEmpty else { return }
            var out = current
            if hasLetter {
                for index in out.indices {
                    switch out[index] {
                    case 0x30: out[index] = 0x6F  // 0 → o
                    case 0x31, 0x21, 0x7C: out[index] = 0x69  // 1 ! | → i
                    case 0x33: out[index] = 0x65  // 3 → e
                    case 0x34, 0x40: out[index] = 0x61  // 4 @ → a
                    case 0x35, 0x24: out[index] = 0x73  // 5 $ → s
                    case 0x37: out[index] = 0x74  // 7 → t
                    case 0x38: out[index] = 0x62  // 8 → b
                    case 0x39: out[index] = 0x67  // 9 → g
                    default: break
                    }
                }
                // Masks at the ends are punctuation, not hidden letters.
                let isMask: (UInt8) -> Bool = { $0 == 0x2A || $0 == 0x23 || $0 == 0x25 || $0 == 0x5F || $0 == 0x3F }
                while let first = out.first, isMask(first) { out.removeFirst() }
                while let last = out.last, isMask(last) { out.removeLast() }
            }
            if !out.isEmpty { folded.append(String(decoding: out, as: UTF8.self)) }
        }
        for byte in plain.utf8 {
            let k = kind(byte)
            if k.letter || k.digit || k.leet || k.mask {
                current.append(byte)
                hasLetter = hasLetter || k.letter
            } else {
                flush()
            }
        }
        flush()
        var joined: [String] = []
        var run: [String] = []
        for token in folded {
            if token.utf8.count == 1, let byte = token.utf8.first, (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte) {
                run.append(token)
            } else {
                if run.count >= 3 { joined.append(run.joined()) } else { joined += run }
                run.removeAll()
                joined.append(token)
            }
        }
        if run.count >= 3 { joined.append(run.joined()) } else { joined += run }
        return joined
    }
}

extension Character {
    var isCombiningMark: Bool {
        unicodeScalars.allSatisfy { $0.properties.generalCategory == .nonspacingMark || $0.properties.generalCategory == .enclosingMark }
    }
}

/// Trimmed, whitespace collapsed, lower-cased: how `repeated_content` compares contents.
public func comparableContent(_ text: String) -> String {
    let plain = FoldedText.plain(text)
    if plain.utf8.allSatisfy({ $0 < 0x80 }) { return collapsedASCII(plain) }
    return plain.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
}

/// ASCII text with runs of white space collapsed to one space and the ends trimmed, on bytes.
func collapsedASCII(_ text: String) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count)
    var pendingSpace = false
    for byte in text.utf8 {
        if byte == 0x20 || (0x09...0x0D).contains(byte) {
            pendingSpace = !out.isEmpty
        } else {
            if pendingSpace { out.append(0x20) }
            pendingSpace = false
            out.append(byte)
        }
    }
    return String(decoding: out, as: UTF8.self)
}

struct SentenceBreak: Sendable {
    func split(_ text: String) -> [String] {
        var sentences: [String] = []
        var current = ""
        let characters = Array(text)
        for (index, character) in characters.enumerated() {
            let next = index + 1 < characters.count ? characters[index + 1] : " "
            if character == "\n" || character == ";" || "。！？".contains(character)
                || (".!?:".contains(character) && next.isWhitespace) {
                if !current.isEmpty { sentences.append(current) }
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { sentences.append(current) }
        return sentences
    }
}
