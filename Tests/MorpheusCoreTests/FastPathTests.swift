import Foundation
@testable import MorpheusCore
import Testing

/// The byte-level fast paths against the definitions they stand in for, on generated input
/// (`SplitMix`: the same cases every run): each must give exactly what the general path gives.
@Suite("Fast paths equal their definitions")
struct FastPathTests {
    /// Words from a small vocabulary (so that they repeat), with the punctuation, leetspeak,
    /// masks and white space the rules care about.
    static func text(_ random: inout SplitMix, words: Int) -> String {
        let vocabulary = ["the", "a", "fog", "lifts", "harbour", "f", "u", "c", "k", "sh!t", "f*ck", "h4x0r", "**", "#1", "?",
                          "www", "dot", "com", "@home", "555-0100", "x", "Mara:", "WE", "leave", "at", "dawn.", "qwrtzp", "aaaaaa", "_x_"]
        let spaces = [" ", " ", " ", "  ", "\n", "\t", " \r\n "]
        var out = ""
        for index in 0..<words {
            if index > 0 { out += spaces[Int(random.next() % UInt64(spaces.count))] }
            out += vocabulary[Int(random.next() % UInt64(vocabulary.count))]
        }
        return out
    }

    @Test("the ASCII word diff equals the general one")
    func addedText() {
        var random = SplitMix(seed: 1)
        for _ in 0..<2_000 {
            let original = Self.text(&random, words: Int(random.next() % 30))
            // Edits of the original: words kept, dropped, replaced, added.
            var corrected = original
            switch random.next() % 4 {
            case 0: corrected = Self.text(&random, words: Int(random.next() % 30))
            case 1: corrected = original + " " + Self.text(&random, words: 3)
            case 2: corrected = Self.text(&random, words: 2) + " " + original
            default: corrected = String(original.dropFirst(Int(random.next() % 10)))
            }
            let fast = AddedText.ascii(original: original, corrected: corrected)
            #expect(fast == AddedText.general(original: original, corrected: corrected), "\(original) → \(corrected)")
        }
        #expect(AddedText.ascii(original: "café", corrected: "cafe") == nil)
    }

    @Test("ASCII tokens equal the general tokens")
    func tokens() {
        var random = SplitMix(seed: 2)
        for _ in 0..<2_000 {
            let plain = Self.text(&random, words: Int(random.next() % 20)).lowercased()
            #expect(FoldedText.asciiTokens(plain) == FoldedText.unicodeTokens(plain), "\(plain)")
        }
        #expect(FoldedText.asciiTokens("f u c k it, s.h.i.t") == ["fuck", "it", "shit"])
    }

    @Test("the JSON string writer escapes exactly what JSON needs")
    func writeString() {
        var random = SplitMix(seed: 3)
        let pieces = ["a", "bcdefghij", "\"", "\\", "\n", "\r", "\t", "\u{01}", "\u{1F}", " ", "é", "😀", "ok", "0123456789abcdef"]
        for _ in 0..<2_000 {
            var text = ""
            for _ in 0..<Int(random.next() % 24) { text += pieces[Int(random.next() % UInt64(pieces.count))] }
            var written: [UInt8] = []
            JSONValue.writeString(text, to: &written)
            // The definition: byte by byte.
            var expected: [UInt8] = [0x22]
            for byte in text.utf8 {
                switch byte {
                case 0x22: expected += Array(#"\""#.utf8)
                case 0x5C: expected += Array(#"\\"#.utf8)
                case 0x0A: expected += Array(#"\n"#.utf8)
                case 0x0D: expected += Array(#"\r"#.utf8)
                case 0x09: expected += Array(#"\t"#.utf8)
                case ..<0x20: expected += Array(String(format: "\\u%04x", byte).utf8)
                default: expected.append(byte)
                }
            }
            expected.append(0x22)
            #expect(written == expected, "\(text.debugDescription)")
        }
    }

    @Test("the escape test finds every byte that needs one, in every lane")
    func escapeWord() {
        for lane in 0..<8 {
            for byte in 0...255 {
                var word = UInt64(0x6161_6161_6161_6161)  // "aaaaaaaa"
                word &= ~(UInt64(0xFF) << UInt64(lane * 8))
                word |= UInt64(byte) << UInt64(lane * 8)
                let needs = byte < 0x20 || byte == 0x22 || byte == 0x5C
                #expect(JSONValue.needsEscape(word) == needs, "byte \(byte) in lane \(lane)")
            }
        }
    }

    @Test("byte scans agree with the sequence algorithms")
    func byteScans() {
        for text in ["", "plain ascii text", "ascii then é", "日本語", String(repeating: "x", count: 17) + "\u{80}"] {
            #expect(Bytes.isASCII(text) == text.utf8.allSatisfy { $0 < 0x80 })
            #expect(Bytes.count(text, where: Bytes.isDigit) == text.utf8.filter { (0x30...0x39).contains($0) }.count)
        }
        #expect((0...255).allSatisfy { Bytes.isSpace(UInt8($0)) == ($0 == 0x20 || (0x09...0x0D).contains($0)) })
        #expect((0...255).allSatisfy { Bytes.isLetter(UInt8($0)) == ((0x41...0x5A).contains($0) || (0x61...0x7A).contains($0)) })
    }

    @Test("the ASCII word table finds exactly the lexicon's ASCII words")
    func wordTable() {
        for (word, entry) in LexiconEntry.table where Bytes.isASCII(word) {
            let found = LexiconEntry.ofASCII(word)
            #expect(found.classes == entry.classes && found.injectionPairs == entry.injectionPairs, "\(word)")
        }
        var random = SplitMix(seed: 4)
        for _ in 0..<2_000 {
            let word = String(decoding: (0..<(1 + random.next() % 8)).map { _ in UInt8(0x61 + random.next() % 26) }, as: UTF8.self)
            #expect(LexiconEntry.ofASCII(word).classes == LexiconEntry.of(word).classes, "\(word)")
        }
        #expect(LexiconEntry.ofASCII("").classes.isEmpty)
    }

    @Test("topics route on their bytes")
    func topics() {
        let topics = ContractTopics(prefix: "morpheus/v1")
        #expect(topics.route("morpheus/v1/corrections/text/alice") == .correction(modality: "text", userId: "alice"))
        #expect(topics.route("morpheus/v1/privacy/") == .privacy(userId: ""))
        #expect(topics.route("morpheus/v1/corrections/text/alice/x/y") == nil)
        #expect(topics.route("morpheus/v1") == nil)
        #expect(topics.route("morpheus/v1x/privacy/a") == nil)
        // A Kelvin sign is not a K to the broker, nor to the router.
        #expect(ContractTopics(prefix: "K").route("\u{212A}/privacy/a") == nil)
    }

    @Test("the training example written directly equals the tree's serialization")
    func trainingExample() {
        var random = SplitMix(seed: 5)
        func pick<T>(_ items: [T]) -> T { items[Int(random.next() % UInt64(items.count))] }
        func maybe<T>(_ value: T) -> T? { random.next() % 3 == 0 ? nil : value }
        let texts = ["", "Fog lifts.", "She said \"no\"\n\tthen left\\", "caf\u{E9} \u{1F600}", "\u{01}\u{1F}", String(repeating: "long line ", count: 40)]
        let numbers = [0, 1, 0.5, 0.1, 1e-7, 12.25, 800, 1_234_567.875, -3]
        func image() -> ImageContent {
            ImageContent(uri: pick(["s3://a.png", "s3://b.png"]), prompt: maybe(pick(texts)), instruction: maybe(pick(texts)),
                         mask: maybe((0..<Int(random.next() % 3)).map { _ in
                             MaskRegion(x: pick(numbers), y: pick(numbers), width: pick(numbers), height: pick(numbers))
                         }))
        }
        func layout() -> Layout {
            Layout(canvasWidth: pick(numbers), canvasHeight: pick(numbers), panels: (0..<Int(random.next() % 4)).map { index in
                LayoutPanel(id: "p\(index)\(pick(texts))", x: pick(numbers), y: pick(numbers), width: pick(numbers), height: pick(numbers),
                            order: maybe(Int(random.next() % 9)))
            })
        }
        let transform = TrainingTransform(instructions: SystemInstructions(byType: [.dialogue: "Write \"dialogue\"."]))
        var formats = Set<Int16>()
        for index in 0..<3_000 {
            let type = pick(CorrectionType.allCases)
            func side() -> CorrectionContent {
                // Now and then the two sides differ in kind: an example without formats.
                switch random.next() % 10 == 0 ? pick(Modality.allCases) : type.modality {
                case .text: .text(pick(texts))
                case .image: .image(image())
                case .layout: .layout(layout())
                }
            }
            let correction = Correction(
                feedbackId: "00000000-0000-4000-8000-\(String(format: "%012d", index))", userId: "u\(index)", modality: type.modality,
                correctionType: type, occurredAt: Date(timeIntervalSince1970: 1_764_000_000), target: CorrectionTarget(
                    comicId: pick(texts), sceneId: maybe(pick(texts)), panelId: maybe("p"), characterId: maybe("c")),
                generation: Generation(id: "g", model: pick(texts), modelVersion: "3.1", prompt: maybe(pick(texts)),
                                       experiment: maybe(Experiment(id: pick(texts), arm: "B"))),
                original: side(), corrected: side(), originalJSON: .null, correctedJSON: .null, editDurationMs: nil, client: nil)
            let quality = Double(random.next() % 100_001) / 100_000
            let createdAt = Date(timeIntervalSince1970: 1_764_000_000 + Double(random.next() % 1_000_000) / 1_000)
            let tree = transform.example(for: correction, quality: quality, contributor: "u_\(index)", createdAt: createdAt)
            let written = transform.serializedExample(for: correction, quality: quality, contributor: "u_\(index)", createdAt: createdAt)
            #expect(written.json == tree.serialized(), "\(String(decoding: written.json, as: UTF8.self))")
            let treeFormats = DatasetRequest.Format.allCases.reduce(Int16(0)) { bits, format in
                if case .object? = tree[format.rawValue] { bits | format.bit } else { bits }
            }
            #expect(written.formats == treeFormats)
            #expect(written.exampleId == TrainingTransform.exampleId(for: correction.feedbackId))
            formats.insert(written.formats)
        }
        // Every combination came up: none, sft only (an inpaint), preference only (a layout), both.
        #expect(formats == [0, 1, 2, 3])
    }

    @Test("stems of other scripts are looked for only in texts that have a scalar from U+0370 on, which every match needs")
    func otherScriptStems() {
        // Below U+0370 (Latin, IPA, combining marks) canonical decomposition stays below it…
        for value in UInt32(0)..<0x370 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            let decomposed = String(Character(scalar)).decomposedStringWithCanonicalMapping
            #expect(decomposed.unicodeScalars.allSatisfy { !Profanity.beyondLatin($0) }, "U+\(String(value, radix: 16))")
        }
        // …and every stem's first character decomposes to a scalar above it: whatever is
        // canonically equivalent to a stem, or begins with one, has such a scalar.
        for stem in Lexicons.profanityOtherScripts {
            let first = String(stem.first!).decomposedStringWithCanonicalMapping
            #expect(first.unicodeScalars.contains(where: Profanity.beyondLatin), "\(stem)")
        }
        func found(_ text: String) -> Bool { Profanity.found(FoldedText(text)) }
        #expect(found("Le port, puis сука."))
        #expect(found("е\u{308}бан кот"))  // ё decomposed
        #expect(found("港で他妈的と叫んだ"))
        #expect(!found("La brume se lève sur le port ; le gardien du phare les regarde partir."))
    }

    @Test("personal data in a text beyond ASCII: the byte prefilters decide when its digits and spaces are ASCII")
    func personalDataPrefilters() {
        // The account words are the ones the pattern begins with.
        let source = PersonalData.accountContext.source
        let group = source.dropFirst().prefix { $0 != ")" }
        #expect(group.split(separator: "|").map(String.init) == PersonalData.accountPatternWords)
        #expect(PersonalData.containsAny("mon compte 123456", PersonalData.accountPatternBytes))
        #expect(PersonalData.containsAny("номер счёт", PersonalData.accountPatternBytes))
        #expect(!PersonalData.containsAny("la brume se lève", PersonalData.accountPatternBytes))
        // Every word the European address pattern names is looked for.
        let european = PersonalData.europeanAddress.source
        for word in ["rue", "allée", "c/", "avda", "ul.", "улица", "ул.", "bd", "str.", "veien"] {
            #expect(european.contains(word.replacingOccurrences(of: ".", with: "\\.").replacingOccurrences(of: "allée", with: "all[ée]e")), "\(word)")
        }
        #expect(PersonalData.numberBeforeSpace("221b baker street") && PersonalData.numberBeforeSpace("12, rue de rivoli"))
        #expect(!PersonalData.numberBeforeSpace("(f0071000-0-12).") && !PersonalData.numberBeforeSpace("bild 3"))
        // Digits and spaces of other scripts send a text down the patterns' path.
        #expect(PersonalData.digitOrSpaceBeyondASCII("٣") && PersonalData.digitOrSpaceBeyondASCII("\u{2028}") && PersonalData.digitOrSpaceBeyondASCII("\u{85}"))
        #expect(!PersonalData.digitOrSpaceBeyondASCII("é") && !PersonalData.digitOrSpaceBeyondASCII("7") && !PersonalData.digitOrSpaceBeyondASCII(" "))
        func found(_ text: String) -> Bool { PersonalData.found(in: text, folded: FoldedText(text)) }
        #expect(found("Appelle-moi au 06 12 34 56 78, café."))
        #expect(found("Ruf mich an: +49 151 2345 6789 (Müller)."))
        #expect(found("Mon compte : 12345678, merci."))
        #expect(found("Carte 4111 1111 1111 1111 — déjà payée."))
        #expect(found("Numéro de sécurité sociale : 123-45-6789 é"))
        #expect(found("Телефон: +7 912 345 67 89"))
        #expect(found("J'habite 12 rue de Rivoli, à Paris, Müller."))
        #expect(found("Hauptstraße 12, Grüße"))
        #expect(found("ул. Ленина 5, квартира"))
        #expect(!found("La brume se lève sur le port (f0071000-0-12)."))
    }

    @Test("the Unicode tokenizer's ASCII tables hold its look-ups, and mixed texts tokenize as their ASCII words do")
    func tokenTables() {
        for value in 0..<128 {
            let c = Character(Unicode.Scalar(UInt8(value)))
            #expect(FoldedText.tokenASCII[value] == (c.isLetter || c.isNumber || FoldedText.leet[c] != nil || FoldedText.masks.contains(c) || c.isCombiningMark))
            #expect(FoldedText.confusableASCII[value] == FoldedText.confusables[c] && FoldedText.leetASCII[value] == FoldedText.leet[c])
            #expect(FoldedText.combiningASCII[value] == c.isCombiningMark)
        }
        #expect(Character("\r\n").asciiValue == 10 && !FoldedText.tokenASCII[10])
        // The ASCII words of a text beyond ASCII tokenize as they do in an ASCII text.
        var random = SplitMix(seed: 6)
        let others = ["café", "Straße", "сука", "東京", "naïve", "€5", "ﬁn"]
        for _ in 0..<500 {
            let ascii = Self.text(&random, words: Int(random.next() % 12)).lowercased() + " 2026 6x2"
            let mixed = ascii + " " + others[Int(random.next() % UInt64(others.count))]
            let tokens = FoldedText.unicodeTokens(FoldedText.plain(mixed))
            let expected = FoldedText.asciiTokens(ascii)
            #expect(Array(tokens.prefix(expected.count)) == expected, "\(mixed)")
        }
    }

    @Test("strings beyond ASCII parse back to what was written, escapes and all")
    func parserStrings() throws {
        var random = SplitMix(seed: 8)
        let pieces = ["a", "plain words ", "\"", "\\", "\n", "\t", "\u{01}", "é", "ß", "東京", "😀", "\u{2028}", "\u{FEFF}", "e\u{301}", "/", " "]
        for _ in 0..<2_000 {
            var text = ""
            for _ in 0..<Int(random.next() % 16) { text += pieces[Int(random.next() % UInt64(pieces.count))] }
            var json: [UInt8] = Array("{\"k\":".utf8)
            JSONValue.writeString(text, to: &json)
            json += Array("}".utf8)
            var parser = JSONParser(bytes: json)
            #expect(try parser.parse() == .object([("k", .string(text))]), "\(text.debugDescription)")
        }
        // Escapes the writer does not use.
        func parsed(_ literal: String) throws -> (String, [JSONParser.StringProblem.Kind]) {
            var parser = JSONParser(bytes: Array("[\"\(literal)\"]".utf8))
            guard case .array(let items) = try parser.parse(), case .string(let text)? = items.first else { return ("", []) }
            return (text, parser.stringProblems.map(\.kind))
        }
        #expect(try parsed(#"caf\u00e9 \ud83d\ude00 \/ é"#) == ("café 😀 / é", []))
        #expect(try parsed(#"é\ud800x"#) == ("é\u{FFFD}x", [.unpairedSurrogate]))
        #expect(try parsed(#"東\u0000"#) == ("東\u{0}", [.nul]))
    }
}
