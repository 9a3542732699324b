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
    /// The folded tokens of each sentence, joined by single spaces (for phrase patterns that
    /// must not reach across a full stop).
    public let sentences: [String]

    public init(_ text: String) {
        plain = Self.plain(text)
        tokens = Self.tokens(plain)
        sentences = Self.sentenceBreak.split(plain).map { Self.tokens($0).joined(separator: " ") }.filter { !$0.isEmpty }
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
            let stripped = out.folding(options: [.diacriticInsensitive], locale: nil)
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

extension Character {
    var isCombiningMark: Bool {
        unicodeScalars.allSatisfy { $0.properties.generalCategory == .nonspacingMark || $0.properties.generalCategory == .enclosingMark }
    }
}

/// Trimmed, whitespace collapsed, lower-cased: how `repeated_content` compares contents.
public func comparableContent(_ text: String) -> String {
    FoldedText.plain(text).split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
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
