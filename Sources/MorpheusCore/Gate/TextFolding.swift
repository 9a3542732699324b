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

    /// Each token's word lists (``LexiconEntry``), in token order.
    let lexicon: [LexiconEntry]

    public init(_ text: String) {
        plain = Self.plain(text)
        isASCII = Bytes.isASCII(plain)
        tokens = isASCII ? Self.asciiTokens(plain) : Self.unicodeTokens(plain)
        lexicon = isASCII ? tokens.map(LexiconEntry.ofASCII) : tokens.map(LexiconEntry.of)
    }

    /// Whether some token is on a list of `wordClass`.
    func has(_ wordClass: WordClass) -> Bool { lexicon.contains { !$0.classes.isDisjoint(with: wordClass) } }

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
        if Bytes.isASCII(text) { return text.lowercased() }
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
        Bytes.isASCII(plain) ? asciiTokens(plain) : unicodeTokens(plain)
    }

    /// `unicodeTokens`' look-ups for the 128 ASCII characters, computed from the same
    /// definitions (`Character.asciiValue` indexes them; it gives `\n` for `\r\n`, which
    /// both the table and the test treat as a separator).
    private static let asciiCharacters = (0..<128).map { Character(Unicode.Scalar(UInt8($0))) }
    static let tokenASCII = asciiCharacters.map { c in c.isLetter || c.isNumber || leet[c] != nil || masks.contains(c) || c.isCombiningMark }
    static let confusableASCII = asciiCharacters.map { confusables[$0] }
    static let leetASCII = asciiCharacters.map { leet[$0] }
    static let combiningASCII = asciiCharacters.map(\.isCombiningMark)

    /// `tokens` for any text (`asciiTokens` is the same on ASCII bytes).
    static func unicodeTokens(_ plain: String) -> [String] {
        // Raw tokens: runs of letters, digits, leet symbols and masks.
        var raw: [String] = []
        var current = ""
        for character in plain {
            // (ASCII characters, most of a European text, from a table of the same test.)
            let inToken = if let ascii = character.asciiValue { tokenASCII[Int(ascii)] } else {
                character.isLetter || character.isNumber || leet[character] != nil || masks.contains(character) || character.isCombiningMark
            }
            if inToken {
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
                if let ascii = character.asciiValue {
                    // (Tables of the same look-ups: no Character hashed for ASCII.)
                    if let latin = confusableASCII[Int(ascii)] { out.append(latin); continue }
                    if hasLetter, let letter = leetASCII[Int(ascii)] { out.append(letter); continue }
                    if combiningASCII[Int(ascii)] { continue }
                    out.append(character)
                    continue
                }
                if let latin = confusables[character] { out.append(latin); continue }
                if hasLetter, let letter = leet[character] { out.append(letter); continue }
                if character.isCombiningMark { continue }
                out.append(character)
            }
            let stripped = Bytes.isASCII(out) ? out : out.folding(options: [.diacriticInsensitive], locale: nil)
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
    /// The same as `tokens` for lower-cased ASCII, on bytes (the common case, and the hot path):
    /// runs of letters, digits, leet symbols and masks; in runs with a letter, leet undone and
    /// masks at the ends dropped (they are punctuation there, not hidden letters); three or
    /// more one-letter tokens in a row joined.
    static func asciiTokens(_ plain: String) -> [String] {
        Bytes.with(plain) { bytes in
            var tokens: [String] = []
            tokens.reserveCapacity(bytes.count / 5 + 1)
            var oneLetterRun = 0  // one-letter tokens at the end of `tokens`
            func closeRun() {
                if oneLetterRun >= 3 {
                    let word = tokens[(tokens.count - oneLetterRun)...].joined()
                    tokens.removeLast(oneLetterRun)
                    tokens.append(word)
                }
                oneLetterRun = 0
            }
            var scratch: [UInt8] = []
            let count = bytes.count
            var index = 0
            while index < count {
                guard isTokenByte(bytes[index]) else {
                    index += 1
                    continue
                }
                let start = index
                var hasLetter = false, hasLeet = false
                while index < count, isTokenByte(bytes[index]) {
                    let byte = bytes[index]
                    hasLetter = hasLetter || Bytes.isLetter(byte)
                    hasLeet = hasLeet || leetLetter(byte) != 0
                    index += 1
                }
                var low = start, high = index
                if hasLetter {
                    // (Leet symbols become letters, never masks: trimming first is the same.)
                    while low < high, isMask(bytes[low]) { low += 1 }
                    while high > low, isMask(bytes[high - 1]) { high -= 1 }
                }
                guard low < high else { continue }
                let token: String
                if hasLetter && hasLeet {
                    scratch.removeAll(keepingCapacity: true)
                    for position in low..<high {
                        let letter = leetLetter(bytes[position])
                        scratch.append(letter != 0 ? letter : bytes[position])
                    }
                    token = String(decoding: scratch, as: UTF8.self)
                } else {
                    token = String(decoding: UnsafeBufferPointer(rebasing: bytes[low..<high]), as: UTF8.self)
                }
                if high - low == 1, Bytes.isLetter(bytes[low]) {
                    tokens.append(token)
                    oneLetterRun += 1
                } else {
                    closeRun()
                    tokens.append(token)
                }
            }
            closeRun()
            return tokens
        }
    }

    /// Letters, digits, leet symbols (`@ $ ! |`) and masks (`* # % _ ?`).
    @inline(__always) static func isTokenByte(_ byte: UInt8) -> Bool {
        Bytes.isLetter(byte) || Bytes.isDigit(byte) || byte == 0x40 || byte == 0x24 || byte == 0x21 || byte == 0x7C || isMask(byte)
    }

    @inline(__always) static func isMask(_ byte: UInt8) -> Bool {
        byte == 0x2A || byte == 0x23 || byte == 0x25 || byte == 0x5F || byte == 0x3F
    }

    /// The letter a leet symbol stands for inside a word, 0 for other bytes.
    @inline(__always) static func leetLetter(_ byte: UInt8) -> UInt8 {
        switch byte {
        case 0x30: return 0x6F  // 0 → o
        case 0x31, 0x21, 0x7C: return 0x69  // 1 ! | → i
        case 0x33: return 0x65  // 3 → e
        case 0x34, 0x40: return 0x61  // 4 @ → a
        case 0x35, 0x24: return 0x73  // 5 $ → s
        case 0x37: return 0x74  // 7 → t
        case 0x38: return 0x62  // 8 → b
        case 0x39: return 0x67  // 9 → g
        default: return 0
        }
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
    if Bytes.isASCII(plain) { return collapsedASCII(plain) }
    return plain.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
}

/// ASCII text with runs of white space collapsed to one space and the ends trimmed, on bytes.
func collapsedASCII(_ text: String) -> String {
    Bytes.with(text) { bytes in
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var pendingSpace = false
        for byte in bytes {
            if Bytes.isSpace(byte) {
                pendingSpace = !out.isEmpty
            } else {
                if pendingSpace { out.append(0x20) }
                pendingSpace = false
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
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
