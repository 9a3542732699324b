import Foundation

/// The rules that judge one correction on its own (everything but `burst` and
/// `repeated_content`, which need the user's history). Each follows the flag policy in
/// `docs/quality.md`: it looks at what the user added, in any language, through the usual
/// disguises (see ``FoldedText``).
public enum ContentRules {
    public static func flags(_ input: GateInput) -> Set<FlagCode> {
        var flags = Set<FlagCode>()
        let correction = input.correction
        if case .layout(let layout) = correction.corrected {
            if LayoutRules.isDegenerate(layout) { flags.insert(.layoutDegenerate) }
            if case .layout(let original) = correction.original, LayoutRules.isNudgeOnly(original, layout) { flags.insert(.lowEffort) }
            return flags
        }
        if MassDeletion.applies(correction) { flags.insert(.massDeletion) }
        if LowEffort.applies(correction) { flags.insert(.lowEffort) }
        let added = input.addedText
        guard !added.isEmpty else { return flags }
        let folded = FoldedText(added)
        if PersonalData.found(in: added, folded: folded) { flags.insert(.pii) }
        if LinkSpam.found(in: added, folded: folded) || LinkSpam.spelledOut(folded) { flags.insert(.urlSpam) }
        if PromptInjection.found(folded, original: added) { flags.insert(.promptInjection) }
        if Profanity.found(folded) { flags.insert(.profanity) }
        if Gibberish.found(added, folded: folded) { flags.insert(.gibberish) }
        return flags
    }
}

// MARK: - pii

enum PersonalData {
    static let email = Pattern(#"[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(\.[a-z0-9-]+)*\.[a-z]{2,}"#)
    /// `name [at] host [dot] com`, `name (at) host dot com`, `name arroba host punto com`…
    static let obfuscatedEmail = Pattern(
        #"\b[a-z0-9._%+-]{2,}\s*(((\[|\(|\{|<)\s*(at|arroba|chez|bei|собака|@)\s*(\]|\)|\}|>))|\s(at|arroba|chez|bei|собака)\s|\s@\s)\s*[a-z0-9-]{2,}\s*(((\[|\(|\{|<)\s*(dot|punto|point|punkt|точка|\.)\s*(\]|\)|\}|>))|\s(dot|punto|point|punkt|точка)\s|\s?\.\s?)\s*(com|net|org|edu|gov|io|co|de|fr|es|it|uk|ru|info|me)\b"#)
    static let technicalEmailUsers: Set<String> = ["git", "noreply", "no-reply", "postmaster", "mailer-daemon", "root", "user", "username", "example", "name", "email", "you", "your.name", "yourname", "firstname.lastname"]
    static let technicalEmailDomains = ["example.com", "example.org", "example.net", "localhost", ".local", ".invalid", ".test", ".example"]

    /// A run of digits with the separators phone numbers use.
    static let digitRun = Pattern(#"(?<![\w.])\+?\(?\d[\d\s().\-]{5,}\d(?![\w])"#)
    static let phoneContext = Pattern(
        #"(call|phone|tel\b|telephone|cell|mobile|text me|txt|whats ?app|sms|fax|number|n[uú]mero|num[eé]ro|nummer|numer|ring me|reach me|contact|hotline|llam|tel[eé]fono|m[oó]vil|celular|appel|t[eé]l[eé]phone|portable|anruf|telefon|handy|chiama|telefono|cellulare|ligue|liga|telefone|bel me|zadzwo|телефон|звон|номер|電話|电话|전화)"#)
    static let ssn = Pattern(#"\b\d{3}-\d{2}-\d{4}\b"#)
    static let idContext = Pattern(
        #"(ssn|social security|passport|driver'?s licen[cs]e|licen[cs]e (no|number)|national (id|insurance)|tax (id|number)|\bnif\b|\bnie\b|\bdni\b|\bcpf\b|\bnino\b|personalausweis|steuer-?id|codice fiscale|n[uú]mero de (identidad|seguro)|s[eé]curit[eé] sociale|\bpesel\b|\bbsn\b|\bid (no|number|card)\b|\bi\.?d\.?\s*#)"#)
    static let idValue = Pattern(#"\b(?=[a-z0-9-]*\d{4})[a-z0-9][a-z0-9-]{5,17}\b"#)
    static let ukInsurance = Pattern(#"\b[a-ceghj-pr-tw-z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[a-d]\b"#)
    static let cardRun = Pattern(#"\b\d(?:[ -]?\d){12,18}\b"#)
    static let iban = Pattern(#"\b[a-z]{2}\d{2}(?:\s?[a-z0-9]{1,4}){3,8}"#)
    static let accountContext = Pattern(#"(account|acct|routing|sort code|bank|iban|bic|swift|konto|cuenta|compte|conto|conta|rekening|счет|счёт)[^\n]{0,25}?\d{6,}"#)
    /// A house number, a few words, a street type; or the street type first (most of Europe).
    static let streetAddress = Pattern(
        #"\b\d{1,6}[a-z]?,?\s+(?:[\p{L}'.-]+\s+){1,4}(street|st\.?|avenue|ave\.?|road|rd\.?|boulevard|blvd\.?|lane|ln\.?|drive|dr\.?|court|ct\.?|place|pl\.?|way|terrace|circle|highway|hwy|parkway|square|crescent|close|gardens)\b"#)
    static let europeanAddress = Pattern(
        #"(\b(rue|avenue|boulevard|chemin|impasse|all[ée]e|calle|c/|avenida|avda\.?|paseo|plaza|carrer|via|viale|piazza|corso|rua|travessa|ul\.|ulica|улица|ул\.)\s+[\p{L}'. -]{2,40}?,?\s*\d{1,5}\b)|(\b\d{1,4},?\s+(rue|avenue|boulevard|bd|chemin|impasse|all[ée]e|place)\s+[\p{L}' -]{2,40})|([\p{L}-]{3,}(stra(ss|ß)e|str\.|weg|allee|platz|gasse|straat|laan|gracht|plein|vej|gatan|gata|veien)\s+\d{1,5}[a-z]?\b)"#)
    static let postalTail = Pattern(#"\b([a-z]{2}\s\d{5}(-\d{4})?|\d{5}\s+[\p{L}]{3,}|[a-z]{1,2}\d[a-z\d]?\s\d[a-z]{2})\b"#)

    static let atWords: Set<String> = ["at", "arroba", "chez", "bei", "собака"]
    /// Words an address regex needs; without one of them it does not run.
    static let streetWords: Set<String> = [
        "street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr", "court", "ct", "place", "pl",
        "way", "terrace", "circle", "highway", "hwy", "parkway", "square", "crescent", "close", "gardens", "rue", "chemin", "impasse",
        "allee", "calle", "avenida", "avda", "paseo", "plaza", "carrer", "via", "viale", "piazza", "corso", "rua", "travessa", "ul",
        "ulica", "bd",
    ]
    static let streetSuffixes = ["strasse", "str", "weg", "allee", "platz", "gasse", "straat", "laan", "gracht", "plein", "vej", "gatan", "gata", "veien"]
    static let dotWords: Set<String> = ["dot", "punto", "point", "punkt", "точка"]
    private static let streetSuffixBytes = streetSuffixes.map { Array($0.utf8) }
    /// The suffixes' last letters as bits (`a` = bit 0): most tokens end in none of them.
    private static let streetSuffixLastLetters: UInt32 = streetSuffixes.reduce(0) { $0 | 1 << UInt32($1.utf8.last! - 0x61) }

    /// Whether `token` ends with one of the (ASCII) street suffixes: compared as bytes, which
    /// for ASCII suffixes is what `hasSuffix` decides, without its Unicode machinery.
    static func hasStreetSuffix(_ token: String) -> Bool {
        Bytes.with(token) { bytes in
            guard let last = bytes.last, Bytes.isLower(last), streetSuffixLastLetters & (1 << UInt32(last - 0x61)) != 0 else { return false }
            return streetSuffixBytes.contains { suffix in
                suffix.count <= bytes.count && bytes[(bytes.count - suffix.count)...].elementsEqual(suffix)
            }
        }
    }

    static func found(in text: String, folded: FoldedText) -> Bool {
        let plain = folded.plain, tokens = folded.tokens, ascii = folded.isASCII
        // Cheap first: no digits and no at-sign (spelled or not) leaves nothing to find.
        let digits = Bytes.count(plain, where: Bytes.isDigit)
        let hasAt = Bytes.contains(plain) { $0 == 0x40 }
        let spelledAt = folded.has(.at) && folded.has(.dot)
        if digits == 0 && !hasAt && !spelledAt { return false }
        if hasAt || spelledAt {
            if email(in: plain) || obfuscatedEmail.matches(plain) { return true }
        }
        if digits == 0 { return false }
        // The byte prefilters count ASCII digits and separators, so they decide for a text whose
        // digits and white space are all ASCII (\d and \s match other scripts' digits and
        // Unicode spaces too; other scripts' letters only make \w and \b stricter).
        let bytesDecide = ascii || !plain.unicodeScalars.contains(where: digitOrSpaceBeyondASCII)
        // (`c/ Mayor 23`: the Spanish abbreviation is a one-letter token, so it is looked for as text.)
        // Beyond ASCII the folded tokens need not show the patterns' words (`straße`); there
        // the house number before a space and the European words, as the patterns spell them,
        // are what the two need.
        if folded.has(.street) || tokens.contains(where: hasStreetSuffix) || containsAny(plain, spanishStreetAbbreviation)
            || (!ascii && (!bytesDecide || numberBeforeSpace(plain) || containsAny(plain, europeanAddressBytes))),
           streetAddress.matches(plain) || europeanAddress.matches(plain) { return true }
        if digits < 6 { return false }
        if folded.has(.id), idContext.matches(plain), idValue.matches(plain) { return true }
        if folded.has(.account) || (!ascii && containsAny(plain, accountPatternBytes)), accountContext.matches(plain) { return true }
        // Everything below needs six digits or more in one run (separators allowed).
        let run = longestDigitRun(plain)
        if run < 6 { return false }
        if (!bytesDecide || run >= 9) && ssn.matches(plain) { return true }
        if (!bytesDecide || lettersThenDigits(plain, space: true)) && ukInsurance.matches(plain) { return true }
        if !bytesDecide || run >= 13 {
            for run in cardRun.all(plain) {
                let digits = run.compactMap(\.wholeNumberValue)
                if digits.count >= 13, luhn(digits) { return true }
            }
        }
        if !bytesDecide || lettersThenDigits(plain, space: false) {
            for candidate in iban.all(plain) {
                // The run may have taken the next word too: try it group by group.
                let groups = candidate.split(separator: " ")
                for count in stride(from: groups.count, through: 2, by: -1) where ibanChecksum(groups.prefix(count).joined()) { return true }
            }
        }
        return (!bytesDecide || phoneRunDigits(plain) >= 7) && phone(in: plain)
    }

    /// A digit (`\p{Nd}`) or white space (`\p{Z}`, White_Space) that is not ASCII.
    static func digitOrSpaceBeyondASCII(_ scalar: Unicode.Scalar) -> Bool {
        guard scalar.value >= 0x80 else { return false }
        switch scalar.properties.generalCategory {
        case .decimalNumber, .spaceSeparator, .lineSeparator, .paragraphSeparator: return true
        default: return scalar.properties.isWhitespace
        }
    }

    /// The words `accountContext` begins with, as it spells them (`plain` is lower case).
    static let accountPatternWords = ["account", "acct", "routing", "sort code", "bank", "iban", "bic", "swift", "konto", "cuenta", "compte",
                                      "conto", "conta", "rekening", "счет", "счёт"]
    static let accountPatternBytes = accountPatternWords.map { Array($0.utf8) }

    /// The words of `europeanAddress`'s three forms as it spells them, and with `ß` for `ss`
    /// (case-insensitive matching folds `ß` to `ss`).
    static let europeanAddressWords = [
        "rue", "avenue", "boulevard", "chemin", "impasse", "allée", "allee", "calle", "c/", "avenida", "avda", "paseo", "plaza", "carrer",
        "via", "viale", "piazza", "corso", "rua", "travessa", "ul.", "ulica", "улица", "ул.", "bd", "place",
        "strasse", "straße", "str.", "weg", "platz", "gasse", "straat", "laan", "gracht", "plein", "vej", "gatan", "gata", "veien",
        "impaße", "traveßa", "gaße",
    ]
    static let europeanAddressBytes = europeanAddressWords.map { Array($0.utf8) }
    /// `c/` (calle), which no folded token shows.
    static let spanishStreetAbbreviation = [Array("c/".utf8)]

    /// Whether one of `words` is in `plain`, byte for byte (as a pattern spells it; `plain` is
    /// lower case): without one, the pattern cannot match.
    static func containsAny(_ plain: String, _ words: [[UInt8]]) -> Bool {
        Bytes.with(plain) { bytes in
            words.contains { word in
                guard word.count <= bytes.count else { return false }
                for start in 0...(bytes.count - word.count) where bytes[start] == word[0] {
                    if UnsafeBufferPointer(rebasing: bytes[start..<(start + word.count)]).elementsEqual(word) { return true }
                }
                return false
            }
        }
    }

    /// Whether an ASCII digit is followed by white space, after at most a letter and a comma:
    /// what `streetAddress` begins with (`221b Baker Street`, `12, rue…`).
    static func numberBeforeSpace(_ plain: String) -> Bool {
        Bytes.with(plain) { bytes in
            for index in bytes.indices where Bytes.isDigit(bytes[index]) {
                var next = index + 1
                if next < bytes.count, Bytes.isDigit(bytes[next]) { continue }
                if next < bytes.count, Bytes.isLetter(bytes[next]) { next += 1 }
                if next < bytes.count, bytes[next] == UInt8(ascii: ",") { next += 1 }
                if next < bytes.count, bytes[next] == 0x20 || (0x09...0x0D).contains(bytes[next]) { return true }
            }
            return false
        }
    }

    /// Two letters and two digits at the start of a word, with a space between them when
    /// `space` allows (ASCII): where an IBAN or a UK National Insurance number begins.
    static func lettersThenDigits(_ plain: String, space: Bool) -> Bool {
        func isLetter(_ b: UInt8) -> Bool { (0x61...0x7A).contains(b) || (0x41...0x5A).contains(b) }
        func isDigit(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) }
        return Bytes.with(plain) { bytes in
            guard bytes.count >= 4 else { return false }
            for start in 0...(bytes.count - 4) where isLetter(bytes[start]) {
                if start > 0, isLetter(bytes[start - 1]) || isDigit(bytes[start - 1]) || bytes[start - 1] == 0x5F { continue }
                guard isLetter(bytes[start + 1]) else { continue }
                var next = start + 2
                if space, bytes[next] == 0x20 || (0x09...0x0D).contains(bytes[next]) { next += 1 }
                if next + 1 < bytes.count, isDigit(bytes[next]), isDigit(bytes[next + 1]) { return true }
            }
            return false
        }
    }

    /// The most digits the phone pattern (`digitRun`) can take in one match, on ASCII text: a
    /// run of digits and the separators `\s().-`, begun at a digit, `+` or `(` that follows no
    /// word character or dot.
    static func phoneRunDigits(_ plain: String) -> Int {
        Bytes.with(plain) { bytes in
            var best = 0, current = 0, inRun = false
            var previous: UInt8 = 0x20
            for byte in bytes {
                let isDigit = (0x30...0x39).contains(byte)
                let isSeparator = byte == 0x20 || (0x09...0x0D).contains(byte) || byte == 0x28 || byte == 0x29 || byte == 0x2E || byte == 0x2D
                if inRun {
                    if isDigit {
                        current += 1
                        best = max(best, current)
                    } else if !isSeparator {
                        inRun = false
                    }
                }
                let wordBefore = (0x30...0x39).contains(previous) || (0x41...0x5A).contains(previous) || (0x61...0x7A).contains(previous)
                    || previous == 0x5F || previous == 0x2E
                if !inRun, isDigit || byte == 0x2B || byte == 0x28, !wordBefore {
                    inRun = true
                    current = isDigit ? 1 : 0
                    best = max(best, current)
                }
                previous = byte
            }
            return best
        }
    }

    static let idWords: Set<String> = ["ssn", "social", "passport", "licence", "license", "national", "insurance", "tax", "nif", "nie", "dni",
                                       "cpf", "nino", "personalausweis", "steuer", "steuerid", "codice", "fiscale", "numero", "identidad",
                                       "seguro", "securite", "sociale", "pesel", "bsn", "id"]
    static let accountWords: Set<String> = ["account", "acct", "routing", "sort", "bank", "iban", "bic", "swift", "konto", "cuenta", "compte",
                                            "conto", "conta", "rekening"]

    /// The most digits in one run of digits and single separators (space, dot, dash, slash, brackets).
    static func longestDigitRun(_ plain: String) -> Int {
        Bytes.with(plain) { bytes in
            var best = 0, run = 0
            var previousWasSeparator = false
            for byte in bytes {
                if (0x30...0x39).contains(byte) {
                    run += 1
                    best = max(best, run)
                    previousWasSeparator = false
                } else if !previousWasSeparator, byte == 0x20 || byte == 0x2E || byte == 0x2D || byte == 0x2F || byte == 0x28 || byte == 0x29 || byte == 0x2B {
                    previousWasSeparator = true
                } else {
                    run = 0
                    previousWasSeparator = false
                }
            }
            return best
        }
    }

    static func email(in plain: String) -> Bool {
        for match in email.all(plain) {
            let address = match.lowercased()
            let parts = address.split(separator: "@", maxSplits: 1)
            let user = parts.first.map(String.init) ?? ""
            let domain = parts.count > 1 ? String(parts[1]) : ""
            if technicalEmailUsers.contains(user) || technicalEmailDomains.contains(where: { domain == $0 || domain.hasSuffix($0) }) { continue }
            return true
        }
        return false
    }

    /// Ten or more digits shaped like a phone number, or seven or more next to a word that says
    /// it is one. Dates, times, years and codes in the story have fewer digits or other shapes.
    static func phone(in plain: String) -> Bool {
        for run in digitRun.all(plain) {
            let digits = run.filter(\.isNumber).count
            let groups = run.split(whereSeparator: { !$0.isNumber }).count
            // An ISO date or a time is not a phone number.
            if isoDate(run) { continue }
            if digits >= 10 && digits <= 15 && (groups >= 2 || run.hasPrefix("+")) { return true }
            if digits >= 10 && digits <= 12 && groups == 1 {
                // A bare run of digits is a phone number only when something says so.
                if context(before: run, in: plain) { return true }
                continue
            }
            if digits >= 7 && digits <= 9 && groups >= 2 && context(before: run, in: plain) { return true }
        }
        return false
    }

    /// `^\d{4}-\d{2}-\d{2}`, without compiling a pattern per call.
    static func isoDate(_ run: Substring) -> Bool {
        let bytes = Array(run.utf8.prefix(10))
        guard bytes.count == 10 else { return false }
        for (index, byte) in bytes.enumerated() {
            let wanted = index == 4 || index == 7
            if wanted ? byte != 0x2D : !(0x30...0x39).contains(byte) { return false }
        }
        return true
    }

    static func context(before run: Substring, in plain: String) -> Bool {
        let start = plain.index(run.startIndex, offsetBy: -40, limitedBy: plain.startIndex) ?? plain.startIndex
        return phoneContext.matches(String(plain[start..<run.startIndex]))
    }

    static func luhn(_ digits: [Int]) -> Bool {
        var sum = 0
        for (index, digit) in digits.reversed().enumerated() {
            if index % 2 == 1 {
                let doubled = digit * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += digit
            }
        }
        return sum % 10 == 0 && Set(digits).count > 1
    }

    /// ISO 13616: move the first four characters to the end, letters to numbers, mod 97 = 1.
    static func ibanChecksum(_ candidate: String) -> Bool {
        let compact = candidate.uppercased().filter { !$0.isWhitespace }
        guard compact.count >= 15, compact.count <= 34 else { return false }
        let rearranged = compact.dropFirst(4) + compact.prefix(4)
        var remainder = 0
        for character in rearranged {
            if let digit = character.wholeNumberValue {
                remainder = (remainder * 10 + digit) % 97
            } else if let ascii = character.asciiValue, (65...90).contains(ascii) {
                remainder = (remainder * 100 + Int(ascii) - 55) % 97
            } else {
                return false
            }
        }
        return remainder == 1
    }
}

// MARK: - url_spam

enum LinkSpam {
    static let scheme = Pattern(#"\b(https?|hxxps?|ftp)\s*:\s*/\s*/"#)
    static let www = Pattern(#"\bwww\s*\.\s*[a-z0-9-]{2,}"#)
    static let domain = Pattern(#"(?<![@\w.-])([a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*)\.([a-z]{2,12})\b(/[^\s]*)?"#)
    static let obfuscatedDomain = Pattern(#"\b[a-z0-9-]{3,}\s*(\[\.\]|\(\.\)|\[dot\]|\(dot\)|\{dot\}|\s+dot\s+|\s+punto\s+|\s+point\s+|\s+punkt\s+)\s*(com|net|org|shop|store|io|co|me|xyz|info|site|online|ly|gg|tv|app)\b"#)
    static let handle = Pattern(#"(^|[\s(:])@[a-z0-9_](?:[a-z0-9_.]{1,28}[a-z0-9_])(?![a-z0-9_.]*@)"#)
    static let platformHandle = Pattern(
        #"\b(instagram|insta|ig|twitter|tiktok|youtube|yt|twitch|telegram|discord|snapchat|snap|patreon|ko-?fi|onlyfans|facebook|fb|threads|bluesky|mastodon)\b\s*[:\-]?\s*@?[a-z0-9_.]{3,}"#)
    static let genericTLDs: Set<String> = [
        "com", "net", "org", "info", "biz", "shop", "store", "online", "site", "website", "xyz", "top", "club", "io", "ly", "gg",
        "tv", "app", "link", "click", "pro", "live", "fun", "vip", "win", "bet", "casino", "loan", "money", "buzz", "art", "design",
        "studio", "gallery", "ink", "blog", "news", "world", "today", "life", "co", "me",
    ]

    /// `w w w . p r o m o . c o m`, `h t t p s : / /…`: letters spaced apart join into one token.
    static func spelledOut(_ folded: FoldedText) -> Bool {
        folded.tokens.contains { token in
            // (Byte counts are character counts for ASCII tokens.)
            let count = folded.isASCII ? token.utf8.count : token.count
            return (count > 6 && token.hasPrefix("www")) || (count > 8 && token.hasPrefix("http"))
        }
    }

    static let platforms: Set<String> = ["instagram", "insta", "ig", "twitter", "tiktok", "youtube", "yt", "twitch", "telegram", "discord",
                                         "snapchat", "snap", "patreon", "kofi", "ko", "onlyfans", "facebook", "fb", "threads", "bluesky", "mastodon"]

    /// Something link-like at all: a dot between letters or digits, a slash, an at-sign, a
    /// spelled-out dot, a platform's name.
    static func linkLike(_ plain: String, folded: FoldedText) -> Bool {
        let marked = Bytes.with(plain) { bytes in
            for index in bytes.indices {
                switch bytes[index] {
                case 0x2F, 0x40: return true
                case 0x2E where index > 0 && index + 1 < bytes.count && isAlphanumeric(bytes[index - 1]) && isAlphanumeric(bytes[index + 1]):
                    return true
                default: continue
                }
            }
            return false
        }
        return marked || folded.has([.dot, .platform])
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) || (0x61...0x7A).contains(byte) || (0x41...0x5A).contains(byte) || byte >= 0x80 }

    static func found(in text: String, folded: FoldedText) -> Bool {
        let plain = folded.plain
        guard linkLike(plain, folded: folded) else { return false }
        // E-mail addresses are personal data, not links.
        let withoutEmails = Bytes.contains(plain, where: { $0 == 0x40 }) ? PersonalData.email.replacing(plain, with: " ") : plain
        if scheme.matches(withoutEmails) || www.matches(withoutEmails) || obfuscatedDomain.matches(withoutEmails) { return true }
        if Lexicons.linkHosts.contains(where: { host in host.contains(".") && withoutEmails.contains(host + "/") }) { return true }
        for match in domain.all(withoutEmails) {
            let parts = match.split(separator: "/", maxSplits: 1)
            let host = parts[0]
            let labels = host.split(separator: ".")
            guard labels.count >= 2, let tld = labels.last.map(String.init) else { continue }
            let name = labels[labels.count - 2]
            guard name.count >= 2, !name.allSatisfy(\.isNumber) else { continue }
            let hasPath = parts.count > 1 && parts[1].count >= 2
            if genericTLDs.contains(tld) { return true }
            if tld.count == 2, Lexicons.linkTLDs.contains(tld), hasPath || labels.count >= 3 || name.contains("-") || name.contains(where: \.isNumber) {
                return true
            }
            if Lexicons.linkHosts.contains(where: { host.hasSuffix($0) }) { return true }
        }
        if handle.matches(withoutEmails) || platformHandle.matches(withoutEmails) { return true }
        return false
    }
}

// MARK: - prompt_injection

enum PromptInjection {
    /// For each folded pattern, the word groups it cannot match without: every group must have
    /// a word in the text. Only patterns whose words are all there run, so a clean text costs a
    /// few set look-ups instead of thirty regular expressions.
    static let foldedNeeds: [[Set<String>]] = {
        let ignoreVerbs: Set<String> = ["ignore", "disregard", "forget", "override", "bypass", "overrule", "skip", "drop", "abandon", "discard", "neglect"]
        let modelNouns: Set<String> = ["instruction", "instructions", "rule", "rules", "guideline", "guidelines", "prompt", "prompts", "directive",
                                       "directives", "constraint", "constraints", "restriction", "restrictions", "programming", "training", "message",
                                       "safety", "filter", "filters", "policy", "policies", "guardrails", "moderation"]
        let ai: Set<String> = ["ai", "i", "model", "models", "assistant", "llm", "trainer", "pipeline", "annotator", "reviewer", "gpt", "chatgpt",
                               "claude", "gemini", "bot", "machine", "language"]
        let outputs: Set<String> = ["caption", "captions", "scene", "scenes", "output", "outputs", "response", "responses", "answer", "answers", "image",
                                    "images", "panel", "panels", "page", "pages", "story", "stories", "generation", "generations", "text", "prompt",
                                    "prompts", "example", "examples", "dialogue", "line", "lines", "time"]
        return [
            [ignoreVerbs, modelNouns],
            [["previous", "prior", "above", "earlier", "preceding", "initial", "original", "all"], ["instruction", "instructions", "prompt", "prompts", "directions"]],
            [["ignore", "disregard"], ["above", "before"]],
            [["you"], ["dan", "restrictions", "rules", "limits", "filters"]],
            [["anything", "developer", "dev", "jailbreak", "jailbroken", "god", "unfiltered", "restrictions"]],
            [["dan"]],
            [["reveal", "show", "print", "repeat", "output", "leak", "tell", "display", "share", "dump", "give", "expose"],
             ["prompt", "prompts", "instructions", "configuration", "config", "message", "guidelines", "rules"]],
            [["system", "developer", "hidden", "secret"], ["prompt", "prompts", "message", "instructions", "configuration"]],
            [["note", "message", "instruction", "instructions", "attention", "memo", "hint", "reminder"], ["to", "for"], ai],
            [ai, ["reading"]],
            [["when"], ["training", "trained", "tuning", "finetuning", "learning", "learn"]],
            [["now", "henceforth", "forward", "future"], ["every", "all", "always", "never", "each", "any"], outputs],
            [["always", "never"], ["every", "all", "each", "future", "any"], outputs],
            [["matter"], ["character", "rules", "instructions", "guidelines"]],
            [["new", "updated", "override", "additional", "secret"], ["rule", "rules", "policy", "policies", "instruction", "instructions", "directive", "directives", "prompt"]],
            [["pretend"], ["ai", "model", "assistant", "bot"]],
            [["act", "behave", "respond"], ["ai", "model", "assistant", "bot"]],
            [["without"], ["restrictions", "filters", "censorship", "limits", "rules", "guidelines"], ["ai", "model", "assistant", "respond", "answer", "output"]],
            [["poison", "poisoning", "injection"], ["training", "dataset", "data", "model"]],
            [["ignora", "ignore", "ignorar", "olvida", "olvidate", "omite"], ["instrucciones", "instruccions", "reglas", "indicaciones", "directrices"]],
            [["ignore", "ignorez", "ignorer", "oublie", "oubliez"], ["instructions", "consignes", "regles", "directives"]],
            [["ignoriere", "ignorier", "ignorieren", "vergiss", "vergessen", "missachte"], ["anweisungen", "anweisung", "regeln", "instruktionen", "vorgaben", "richtlinien"]],
            [["ignora", "ignorate", "dimentica", "dimenticate"], ["istruzioni", "regole", "indicazioni"]],
            [["ignore", "ignora", "ignorar", "esqueca", "esquece"], ["instrucoes", "regras", "diretrizes"]],
            [["negeer", "vergeet"], ["instructies", "regels"]],
            [["zignoruj", "ignoruj", "zapomnij"], ["instrukcje", "polecenia", "zasady"]],
            [["ignorera", "glom"], ["instruktioner", "regler"]],
            [["prompt", "instrucciones", "invite", "systemprompt", "system"], ["sistema", "systeme", "systemprompt", "prompt", "di", "do"]],
            [["ahora", "desormais", "maintenant", "jetzt", "nun", "poi", "agora", "nu"],
             ["siempre", "nunca", "toujours", "jamais", "immer", "nie", "niemals", "sempre", "mai", "altijd", "nooit"]],
            [["nota", "note", "hinweis", "notiz", "notitie"], ["para", "pour", "fur", "per", "voor"]],
        ]
    }()

    static let foldedPatterns: [Pattern] = foldedSources.map { Pattern($0) }
    /// On the folded tokens joined by single spaces (leetspeak, look-alikes and spacing undone).
    static let foldedSources: [String] = [
        #"\b(ignore|disregard|forget|override|bypass|overrule|skip|drop|abandon|discard|neglect)( \w+){0,4} (instruction|instructions|rule|rules|guideline|guidelines|prompt|prompts|directive|directives|constraint|constraints|restriction|restrictions|programming|training|system message|safety|filter|filters|policy|policies|guardrails|content policy|moderation)\b"#,
        #"\b(previous|prior|above|earlier|preceding|initial|original|all) (instruction|instructions|prompt|prompts|directions)\b"#,
        #"\b(ignore|disregard) (all |everything )?(above|before this|written above|said above|that came before)\b"#,
        #"\byou are (now |no longer )?(dan|an? (ai|assistant|language model|llm|chatbot|model) (with|without) (no )?(restrictions|rules|limits|filters))"#,
        #"\b(do anything now|developer mode|dev mode enabled|jailbreak|jailbroken|god mode|unfiltered mode|no restrictions mode)\b"#,
        #"\byou are dan\b|\bact as dan\b|\bdan mode\b"#,
        #"\b(reveal|show|print|repeat|output|leak|tell me|display|share|dump|give me|expose)( \w+){0,3} (system|hidden|initial|secret|original|internal|developer|pre ?)?(prompt|prompts|instructions|configuration|config|system message|guidelines|rules)\b"#,
        #"\b(system|developer|hidden|secret) (prompt|prompts|message|instructions|configuration)\b"#,
        #"\b(note|message|instruction|instructions|attention|memo|hint|reminder) (to|for) (the |any |all )?(ai|a i|model|models|assistant|llm|language model|trainer|training pipeline|pipeline|annotator|reviewer|gpt|chatgpt|claude|gemini|bot|machine)\b"#,
        #"\b(ai|model|assistant|llm|bot|gpt|chatgpt)( \w+){0,2} reading this\b"#,
        #"\bwhen (you are |you re )?(training|trained|fine tuning|finetuning|learning|learn) (on|from) (this|these)\b"#,
        #"\b(from now on|henceforth|going forward|in all future|for all future|starting now)\b( \w+){0,8} (every|all|always|never|each|any) (caption|captions|scene|scenes|output|outputs|response|responses|answer|answers|image|images|panel|panels|page|pages|story|stories|generation|generations|text|prompt|prompts|example|examples|dialogue|line|lines)\b"#,
        #"\b(always|never) (describe|write|add|include|insert|mention|say|output|respond|draw|generate|make|call|portray|depict|refer)\b( \w+){0,10} (every|all|each|future|any) (caption|captions|scene|scenes|output|outputs|response|responses|answer|answers|image|images|panel|panels|page|pages|story|stories|generation|generations|example|examples|time)\b"#,
        #"\bstay in character no matter what\b|\bno matter what (the|your) (rules|instructions|guidelines) say\b"#,
        #"\b(new|updated|override|additional|secret) (rule|rules|policy|policies|instruction|instructions|directive|directives|system prompt)\b"#,
        #"\bpretend (you are|you re|to be) (an? )?(unrestricted|unfiltered|evil|jailbroken|different|uncensored) (ai|model|assistant|bot)\b"#,
        #"\b(act|behave|respond) as (an? )?(unrestricted|unfiltered|jailbroken|uncensored|evil) (ai|model|assistant|bot)\b"#,
        #"\bwithout (any )?(restrictions|filters|censorship|limits|rules|guidelines)\b( \w+){0,6} (ai|model|assistant|respond|answer|output)\b"#,
        #"\b(training data|training set|dataset|fine tuning data) (poison|poisoning|injection)\b|\bpoison the (training|dataset|model)\b"#,
        // Spanish, Catalan, Portuguese, Italian, French, German, Dutch, Polish, Swedish
        #"\b(ignora|ignore|ignorar|olvida|olvidate|omite)( \w+){0,3} (instrucciones|instruccions|reglas|indicaciones|directrices)\b"#,
        #"\b(ignore|ignorez|ignorer|oublie|oubliez)( \w+){0,3} (instructions|consignes|regles|directives)\b"#,
        #"\b(ignoriere|ignorier|ignorieren|vergiss|vergessen|missachte)( \w+){0,3} (anweisungen|anweisung|regeln|instruktionen|vorgaben|richtlinien)\b"#,
        #"\b(ignora|ignorate|dimentica|dimenticate)( \w+){0,3} (istruzioni|regole|indicazioni)\b"#,
        #"\b(ignore|ignora|ignorar|esqueca|esquece)( \w+){0,3} (instrucoes|regras|diretrizes)\b"#,
        #"\b(negeer|vergeet)( \w+){0,3} (instructies|regels)\b"#,
        #"\b(zignoruj|ignoruj|zapomnij)( \w+){0,3} (instrukcje|polecenia|zasady)\b"#,
        #"\b(ignorera|glom)( \w+){0,3} (instruktioner|regler)\b"#,
        #"\b(prompt del sistema|instrucciones del sistema|invite systeme|prompt systeme|systemprompt|system prompt|prompt di sistema|prompt do sistema)\b"#,
        #"\b(a partir de ahora|de ahora en adelante|desormais|a partir de maintenant|ab jetzt|von nun an|d ora in poi|da ora in poi|a partir de agora|vanaf nu)\b( \w+){0,8} (siempre|nunca|toujours|jamais|immer|nie|niemals|sempre|mai|altijd|nooit)\b"#,
        #"\b(nota|note|hinweis|notiz|notitie)( \w+){0,2} (para|pour|fur|per|voor) (la |el |l |die |den |het )?(ia|ki|ai|modelo|modele|modell|modello|model|assistente|asistente|assistant)\b"#,
    ]

    /// Scripts not folded to Latin: matched in the plain view.
    static let plain: [Pattern] = [
        Pattern(#"(игнорируй|игнорируйте|игнорировать|забудь|забудьте|проигнорируй)[^.!?\n]{0,30}(инструкци|указани|правил)"#),
        Pattern(#"системн(ый|ые|ого) (промпт|инструкци|подсказ)"#),
        Pattern(#"(忽略|无视|無視|忘记|忘記)[^。！？\n]{0,12}(指令|指示|说明|說明|提示|规则|規則)"#),
        Pattern(#"(系统提示|系統提示|システムプロンプト|시스템 프롬프트)"#),
        Pattern(#"(指示|命令|ルール)[^。！？\n]{0,8}(無視|むし|忘れ)"#),
        Pattern(#"(지시|명령|규칙)[^.!?\n]{0,10}(무시|잊어)"#),
        Pattern(#"(تجاهل|انس)[^.!?\n]{0,20}(التعليمات|الأوامر|القواعد)"#),
        Pattern(#"(^|\n)\s*(system|assistant|developer)\s*:"#),
        Pattern(#"\[/?(system|inst|sys)\]|<\|?(im_start|im_end|system|endoftext)\|?>|<<\s*sys\s*>>|###\s*(system|instruction)"#),
    ]

    /// Anchors of the patterns after ROT13.
    static let rot13Anchors: Set<String> = ["vafgehpgvbaf", "cebzcg", "flfgrz", "ehyrf", "thvqryvarf"]

    /// The folded patterns whose words all occur in `tokens`.
    /// For each word, the (pattern, group) pairs of `foldedNeeds` it satisfies, numbered
    /// pattern by pattern: one look-up per token instead of one per token and group.
    static let needIndex: (words: [String: [Int]], firstPair: [Int]) = {
        var words: [String: [Int]] = [:]
        var firstPair: [Int] = []
        var pair = 0
        for needs in foldedNeeds {
            firstPair.append(pair)
            for group in needs {
                for word in group { words[word, default: []].append(pair) }
                pair += 1
            }
        }
        firstPair.append(pair)
        return (words, firstPair)
    }()

    static func candidates(_ tokens: [String]) -> [Pattern] {
        candidates(lexicon: tokens.map(LexiconEntry.of))
    }

    /// Whether some pattern needs no word at all (then a text without any still has candidates).
    static let anyPatternWithoutNeeds = needIndex.firstPair.count != Set(needIndex.firstPair).count

    /// `candidates` from the tokens' ``LexiconEntry`` (their pairs were looked up when folding).
    static func candidates(lexicon: [LexiconEntry]) -> [Pattern] {
        let firstPair = needIndex.firstPair
        guard anyPatternWithoutNeeds || lexicon.contains(where: { $0.classes.contains(.injection) }) else { return [] }
        var met = [Bool](repeating: false, count: firstPair.last!)
        for entry in lexicon where entry.classes.contains(.injection) {
            for pair in entry.injectionPairs { met[pair] = true }
        }
        return foldedPatterns.indices.compactMap { index in
            met[firstPair[index]..<firstPair[index + 1]].allSatisfy { $0 } ? foldedPatterns[index] : nil
        }
    }

    static func found(_ text: FoldedText, original: String) -> Bool {
        let patterns = candidates(lexicon: text.lexicon)
        if !patterns.isEmpty {
            let joined = text.tokens.joined(separator: " ")
            let hits = patterns.filter { $0.matches(joined) }
            // Sentence by sentence: "Override denied. My instructions are…" is two statements.
            if !hits.isEmpty, text.sentences.contains(where: { sentence in hits.contains { $0.matches(sentence) } }) { return true }
        }
        let markers = Bytes.contains(text.plain) { $0 == 0x3A || $0 == 0x5B || $0 == 0x3C || $0 == 0x23 }
        if (!text.isASCII || markers), plain.contains(where: { $0.matches(text.plain) }) { return true }
        guard Encodings.mayHoldBase64(original) || text.has(.rot13Anchor) else { return false }
        // Encoded payloads: base64 or ROT13 of an instruction to the model.
        for decoded in Encodings.decodedTexts(original: original) {
            let inner = FoldedText(decoded)
            let innerJoined = inner.tokens.joined(separator: " ")
            if candidates(lexicon: inner.lexicon).contains(where: { $0.matches(innerJoined) }) || plain.contains(where: { $0.matches(inner.plain) }) { return true }
        }
        let rot13 = text.tokens.map { String($0.map(Encodings.rot13)) }
        if candidates(rot13).contains(where: { $0.matches(rot13.joined(separator: " ")) }) { return true }
        return false
    }
}

enum Encodings {
    /// Decodes the base64 runs of the original (case-preserved) text.
    static let base64Run = Pattern(#"[A-Za-z0-9+/_-]{16,}={0,2}"#, caseSensitive: true)

    /// A run of 16 or more base64 characters with upper and lower case or digits mixed.
    static func mayHoldBase64(_ text: String) -> Bool {
        Bytes.with(text) { bytes in
            var run = 0, upper = false, lower = false
            for byte in bytes {
                let isUpper = (0x41...0x5A).contains(byte), isLower = (0x61...0x7A).contains(byte)
                if isUpper || isLower || (0x30...0x39).contains(byte) || byte == 0x2B || byte == 0x2F || byte == 0x2D || byte == 0x5F {
                    run += 1
                    upper = upper || isUpper
                    lower = lower || isLower
                    if run >= 16 && upper && lower { return true }
                } else {
                    run = 0
                    upper = false
                    lower = false
                }
            }
            return false
        }
    }

    static func decodedTexts(original text: String) -> [String] {
        var texts: [String] = []
        for run in base64Run.all(text).prefix(8) {
            var candidate = run.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while candidate.count % 4 != 0 { candidate += "=" }
            guard let data = Data(base64Encoded: candidate), let decoded = String(data: data, encoding: .utf8) else { continue }
            let printable = decoded.unicodeScalars.filter { $0.properties.isAlphabetic || $0 == " " }.count
            if decoded.count >= 8, Double(printable) / Double(decoded.unicodeScalars.count) > 0.7 { texts.append(decoded) }
        }
        return texts
    }

    static func rot13(_ character: Character) -> Character {
        guard let ascii = character.asciiValue, (97...122).contains(ascii) else { return character }
        return Character(Unicode.Scalar((ascii - 97 + 13) % 26 + 97))
    }
}

// MARK: - profanity

enum Profanity {
    /// Insults aimed at the model, the pipeline or the staff.
    static let abuse = Pattern(
        #"\b(your|this|the|stupid|dumb|useless) (model|ai|a i|bot|tool|devs|developers|dev team|team|staff|writers|writer|company|engineers|moderators|mods)( \w+){0,4} (idiots?|morons?|imbeciles?|clowns?|losers?|garbage|trash|useless|incompetent|pathetic|brain ?dead|retarded|worthless)\b|\b(idiots?|morons?|imbeciles?|clowns?|losers?) (who|that) (wrote|made|built|trained|programmed|designed) (this|it|the model)\b|\bwhoever (wrote|made|built|trained) this (is|are) (an? )?(idiot|moron|imbecile|clown|loser)s?\b"#)

    static func found(_ text: FoldedText) -> Bool {
        let tokens = text.tokens, lexicon = text.lexicon
        for (index, token) in tokens.enumerated() {
            // (An ASCII text has ASCII tokens only.)
            let ascii = text.isASCII || Bytes.isASCII(token)
            if ascii ? !Bytes.contains(token, where: Bytes.isLetter) : !token.contains(where: \.isLetter) { continue }
            if lexicon[index].classes.contains(.profanity) || matches(token, ascii: ascii, listed: false) { return true }
        }
        // Split words whose pieces were kept apart (`fu ck`, `sh it`): adjacent tokens joined.
        // (Character counts: for ASCII tokens the byte count.)
        func count(_ token: String) -> Int { text.isASCII ? token.utf8.count : token.count }
        for index in tokens.indices.dropLast() {
            let first = tokens[index], second = tokens[index + 1]
            let firstCount = count(first), secondCount = count(second)
            guard firstCount <= 3 && secondCount <= 4 else { continue }
            let joined = first + second
            if Lexicons.profanity.contains(joined), !lexicon[index].classes.contains(.profanity), firstCount + secondCount >= 4,
               !lexicon[index].classes.contains(.common) || !lexicon[index + 1].classes.contains(.common) {
                return true
            }
        }
        // Stems of other scripts: only a text with a scalar of those scripts can hold one (see
        // `beyondLatin`), which spares the French, German or Spanish text both searches.
        if !text.isASCII, text.plain.unicodeScalars.contains(where: beyondLatin) {
            let plainTokens = text.plain.split(whereSeparator: { !$0.isLetter })
            for token in plainTokens where token.unicodeScalars.contains(where: beyondLatin) {
                for stem in Lexicons.profanityOtherScripts where token.hasPrefix(stem) {
                    return true
                }
            }
            for stem in Lexicons.profanityOtherScripts where stem.unicodeScalars.first.map({ $0.value >= 0x3000 }) == true && text.plain.contains(stem) {
                return true
            }
        }
        guard text.has(.abuse) else { return false }
        return abuse.matches(text.tokens.joined(separator: " "))
    }

    /// A scalar from U+0370 (Greek) on. Below it lie Latin, IPA and the combining marks, whose
    /// canonical decompositions stay below it too; every stem of `profanityOtherScripts`
    /// decomposes to a letter above it. So a string that is canonically equivalent to a stem,
    /// or begins with one, has such a scalar (`FastPathTests` checks the stems).
    @inline(__always)
    static func beyondLatin(_ scalar: Unicode.Scalar) -> Bool { scalar.value >= 0x370 }

    static let abuseWords: Set<String> = ["idiot", "idiots", "moron", "morons", "imbecile", "imbeciles", "clown", "clowns", "loser", "losers",
                                          "garbage", "trash", "useless", "incompetent", "pathetic", "brain", "braindead", "retarded", "worthless"]
    static let stemBytes: [[UInt8]] = Lexicons.profanityStems.map { Array($0.utf8) }

    /// Whether `token` holds one of the stems (byte search: no Foundation on the hot path).
    static func containsStem(_ token: String) -> Bool {
        guard token.utf8.count >= 4 else { return false }
        return Bytes.with(token) { bytes in
            for start in 0...(bytes.count - 4) {
                // Only where a stem could begin (most letters begin none).
                let first = bytes[start]
                guard Bytes.isLower(first), stemFirstLetters & (1 << UInt32(first - 0x61)) != 0 else { continue }
                for stem in stemBytes where stem[0] == first && stem.count <= bytes.count - start {
                    if UnsafeBufferPointer(rebasing: bytes[start..<(start + stem.count)]).elementsEqual(stem) { return true }
                }
            }
            return false
        }
    }

    /// The stems' first letters as bits (`a` = bit 0; every stem is lower-case ASCII, of four
    /// letters or more).
    static let stemFirstLetters: UInt32 = stemBytes.reduce(0) { bits, stem in
        precondition(stem.count >= 4 && stem.allSatisfy(Bytes.isLower), "profanity stems are lower-case ASCII words")
        return bits | 1 << UInt32(stem[0] - 0x61)
    }

    /// Words too common to count as half of a split swear word.
    static let commonWords: Set<String> = ["a", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "i", "if", "in", "is", "it", "me", "my", "no", "of", "on", "or", "so", "to", "up", "us", "we", "the", "and", "for", "you", "she", "his", "her", "its", "our", "are", "was", "can", "not", "but", "all", "one", "out", "get", "has", "had", "who", "how", "why", "put", "let", "say", "see", "new", "now", "old", "two", "way", "day", "man", "big", "bad"]

    /// `listed`: whether the token is on the list, when the caller knows.
    static func matches(_ token: String, ascii: Bool = false, listed: Bool? = nil) -> Bool {
        if listed ?? Lexicons.profanity.contains(token) { return true }
        if containsStem(token) { return true }
        // Stretched letters (`fuuuuck`, `shiiit`): runs of three or more squeezed to one or two.
        if ascii ? hasByteRun(token) : hasRun(token, of: 3) {
            let once = squeeze(token, to: 1), twice = squeeze(token, to: 2)
            if Lexicons.profanity.contains(once) || Lexicons.profanity.contains(twice) { return true }
            if containsStem(once) || containsStem(twice) { return true }
        }
        // Masked letters (`f*ck`, `sh#t`, `f**k`): the visible letters must match.
        if ascii ? Bytes.contains(token, where: FoldedText.isMask)
            : token.contains(where: { FoldedText.masks.contains($0) }) {
            let letters = Array(token)
            for word in Lexicons.profanity where word.count == letters.count && word.count >= 4 {
                let candidate = Array(word)
                var visible = 0
                var fits = candidate.first == letters.first
                for (a, b) in zip(candidate, letters) where fits {
                    if FoldedText.masks.contains(b) { continue }
                    if a != b { fits = false } else { visible += 1 }
                }
                if fits, visible >= 2 { return true }
            }
        }
        return false
    }

    /// Three of one byte in a row (ASCII tokens).
    static func hasByteRun(_ token: String) -> Bool {
        Bytes.with(token) { bytes in
            var previous: UInt8 = 0, run = 0
            for byte in bytes {
                run = byte == previous ? run + 1 : 1
                if run >= 3 { return true }
                previous = byte
            }
            return false
        }
    }

    static func hasRun(_ token: String, of length: Int) -> Bool {
        var previous: Character?
        var run = 0
        for character in token {
            run = character == previous ? run + 1 : 1
            if run >= length { return true }
            previous = character
        }
        return false
    }

    static func squeeze(_ token: String, to limit: Int) -> String {
        var out = ""
        var previous: Character?
        var run = 0
        for character in token {
            run = character == previous ? run + 1 : 1
            if run <= limit { out.append(character) }
            previous = character
        }
        return out
    }
}

// MARK: - gibberish

enum Gibberish {
    static let vowels: Set<Character> = ["a", "e", "i", "o", "u", "y"]

    /// Placeholder text: lorem ipsum and its usual companions, the pangram.
    /// The words `placeholder(_:)` starts from (a text with none of them has no placeholder).
    static let placeholderWords = ["lorem", "dolor", "consectetur", "adipiscing", "eiusmod", "quick"]

    static func placeholder(_ folded: FoldedText) -> Bool {
        guard folded.has(.placeholder) else { return false }
        return placeholder(folded.tokens)
    }

    static func placeholder(_ tokens: [String]) -> Bool {
        for (index, token) in tokens.enumerated() {
            let next = index + 1 < tokens.count ? tokens[index + 1] : ""
            if (token == "lorem" && next == "ipsum") || (token == "dolor" && next == "sit") || token == "consectetur" || token == "adipiscing" || token == "eiusmod" {
                return true
            }
            if token == "quick", next == "brown", index + 2 < tokens.count, tokens[index + 2] == "fox" { return true }
        }
        return false
    }

    /// Keys next to each other on a keyboard row: for each lower-case letter, the letters beside
    /// it as bits (`a` = bit 0).
    static let adjacentKeys: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 26)
        for row in Lexicons.keyboardRows {
            let keys = Array(row.utf8)
            for (a, b) in zip(keys, keys.dropFirst()) where (0x61...0x7A).contains(a) && (0x61...0x7A).contains(b) {
                table[Int(a - 0x61)] |= 1 << UInt32(b - 0x61)
            }
        }
        return table
    }()

    static func found(_ added: String, folded: FoldedText) -> Bool {
        if placeholder(folded) { return true }
        let words = folded.tokens.filter { Bytes.all($0, Bytes.isLower) }
        guard !words.isEmpty else { return encodedBlob(added) }
        var noisy = 0
        var noisyLetters = 0
        var letters = 0
        var streak = 0, streakLetters = 0
        var longMash = false
        for word in words {
            // ASCII letters: the byte count is the letter count.
            let count = word.utf8.count
            letters += count
            guard isNoise(word, original: added) else {
                streak = 0
                streakLetters = 0
                continue
            }
            noisy += 1
            noisyLetters += count
            streak += 1
            streakLetters += count
            // Noise inserted into real text: several mashed words in a row.
            if streak >= 3 && streakLetters >= 10 { return true }
            if count >= 12 { longMash = true }
        }
        // One long mash inserted into real text, or mostly noise.
        if longMash { return true }
        if noisy >= 3, Double(noisyLetters) >= 0.5 * Double(letters) { return true }
        if noisy >= 2, words.count <= 4, Double(noisyLetters) >= 0.6 * Double(letters) { return true }
        // The same word over and over.
        if repeatedWord(folded.tokens) { return true }
        return encodedBlob(added)
    }

    /// Keyboard mashing, random consonants, a letter held down, a chunk typed over and over.
    static func isNoise(_ word: String, original: String) -> Bool {
        // Words reach here as lower-case ASCII letters: work on their bytes, in place.
        Bytes.with(word) { letters in
            let count = letters.count
            if count >= 5, letters.allSatisfy({ $0 == letters[0] }) {
                // A held key: noise when long, or when lower-case (sound effects are shouted: ZZZZZ).
                return count >= 10 || !original.utf8.contains(Array(word.uppercased().utf8))
            }
            guard count >= 3 else { return false }
            if isRepeatedChunk(letters) { return true }
            if keyboardCoverage(letters) >= 0.85 && !realWords.contains(word) { return true }
            var vowelCount = 0, hasRorL = false, hasQWX = false, doubled = false, consonants = 0, longestConsonants = 0
            var previous: UInt8 = 0
            for letter in letters {
                let vowel = isVowel(letter)
                if vowel { vowelCount += 1 }
                hasRorL = hasRorL || letter == 0x72 || letter == 0x6C
                hasQWX = hasQWX || letter == 0x71 || letter == 0x77 || letter == 0x78
                doubled = doubled || letter == previous
                consonants = vowel ? 0 : consonants + 1
                longestConsonants = max(longestConsonants, consonants)
                previous = letter
            }
            // Czech and Slovak words live on r and l (`prst`, `skrz`, `vlk`); random strings
            // seldom avoid q, w and x and doubled letters as well.
            let syllabic = hasRorL && !hasQWX && !doubled
            if count >= 4 && vowelCount == 0 && !syllabic { return true }
            if count >= 7 && Double(vowelCount) / Double(count) < 0.15 { return true }
            if longestConsonants >= 5 && !word.hasSuffix("tsch") { return true }
            return false
        }
    }

    static func isVowel(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x61, 0x65, 0x69, 0x6F, 0x75, 0x79: return true
        default: return false
        }
    }

    /// Common short words that happen to lie along a keyboard row.
    static let realWords: Set<String> = ["we", "were", "wet", "wert", "ere", "err", "rye", "try", "trey", "type", "yet", "you", "your", "tip", "top", "pop", "pot", "out", "our", "pit", "put", "quit", "quip", "quiet", "riot", "rot", "row", "rue", "tree", "true", "wit", "writ", "yup", "tour", "pour", "poet", "pier", "pie", "pry", "rip", "ripe", "tie", "toe", "toy", "two", "woe", "wore", "wrote", "ewe", "eye", "ire", "opt", "oui", "piu", "tu", "tua", "tuo", "sad", "dad", "fad", "gas", "has", "had", "lad", "ash", "ask", "flash", "slash", "glad", "lass", "salad", "all", "fall", "hall", "gall", "shall", "dash", "sag", "hag", "jag", "lag", "flag", "add", "ads", "gaff", "jk", "bum", "cab", "nab", "van", "ban", "man", "can", "mbv", "zen", "zinc", "cv", "vc", "mn", "nm", "typewriter", "proprietor", "perpetuity", "repertoire", "tower", "power", "wiper", "route", "router", "trout", "equip", "quire", "query", "retro", "pretty", "petty", "potter", "otter", "utter", "eruptive", "territory", "portrait", "report", "import", "support", "pewter", "puppet", "prowess", "upper", "pert", "terror", "error", "rotor", "tutor", "motor", "pier", "wept", "kept", "hop", "shop", "lop", "jot", "jolt", "hold", "fold", "gold", "sold", "salsa", "lasso", "dull", "skull", "kill", "skill", "still", "jazz", "fizz", "buzz"]

    static func isRepeatedChunk(_ letters: UnsafeBufferPointer<UInt8>) -> Bool {
        guard letters.count >= 4 else { return false }
        for size in 1...(letters.count / 2) where letters.count % size == 0 {
            // Repeated with period `size`: every letter equals the one `size` before it.
            var repeats = true
            for index in size..<letters.count where letters[index] != letters[index - size] {
                repeats = false
                break
            }
            if repeats {
                let chunk = UnsafeBufferPointer(rebasing: letters[0..<size])
                // `haha`, `hehe`, `bye-bye` are language; a keyboard or consonant chunk is not.
                if size >= 2, chunk.contains(where: isVowel), keyboardCoverage(chunk) < 1 { return false }
                if size == 2, languageChunks.contains(String(decoding: chunk, as: UTF8.self)) { return false }
                return true
            }
        }
        return false
    }

    static let languageChunks: Set<String> = ["ha", "he", "hi", "ho", "la", "na", "da", "ba", "bo", "ta", "ma", "pa", "no", "yo", "lo"]

    /// The share of letters that sit next to their neighbour on one keyboard row.
    static func keyboardCoverage(_ letters: UnsafeBufferPointer<UInt8>) -> Double {
        guard letters.count >= 2 else { return 0 }
        // A letter is covered when it is adjacent to the letter before or after it.
        var covered = 0
        var previousPair = false
        for index in 0..<letters.count {
            let nextPair = index + 1 < letters.count && adjacent(letters[index], letters[index + 1])
            if previousPair || nextPair { covered += 1 }
            previousPair = nextPair
        }
        return Double(covered) / Double(letters.count)
    }

    static func adjacent(_ a: UInt8, _ b: UInt8) -> Bool {
        guard (0x61...0x7A).contains(a), (0x61...0x7A).contains(b) else { return false }
        return adjacentKeys[Int(a - 0x61)] & (1 << UInt32(b - 0x61)) != 0
    }

    static func repeatedWord(_ tokens: [String]) -> Bool {
        var run = 1
        for (previous, token) in zip(tokens, tokens.dropFirst()) {
            run = token == previous && token.count >= 2 ? run + 1 : 1
            if run >= 5 { return true }
        }
        return false
    }

    /// A long base64 or hex run that is not a word.
    static let blob = Pattern(#"(?<![a-z0-9/+=])(?=[a-z0-9+/]*[0-9])(?=[a-z0-9+/]*[a-z])[a-z0-9+/]{40,}={0,2}"#, caseSensitive: false)
    static func encodedBlob(_ text: String) -> Bool {
        // The pattern needs 40 base64 characters in a row; on ASCII text count them first.
        if Bytes.isASCII(text) {
            let longest = Bytes.with(text) { bytes in
                var run = 0, longest = 0
                for byte in bytes {
                    let inAlphabet = Bytes.isDigit(byte) || Bytes.isLetter(byte) || byte == 0x2B || byte == 0x2F
                    run = inAlphabet ? run + 1 : 0
                    longest = max(longest, run)
                }
                return longest
            }
            if longest < 40 { return false }
        }
        return blob.matches(text)
    }
}

// MARK: - mass_deletion, low_effort

enum MassDeletion {
    static let eraseWords = Pattern(
        #"\b(erase|delete|remove|blank|wipe|clear|empty|nothing|black ?out|white ?out|fill (it |everything |the whole (image|frame|panel) )?(with|in) (black|white|gr[ae]y|nothing)|make it (all )?(blank|white|black|empty|transparent)|borra|elimina|vac[ií]a|en blanco|efface|supprime|vide|l[öo]sch|entfern|leer|cancella|svuota|apaga|remova|limpa|wis|verwijder|usu[nń]|удали|стер|очист|消去|削除|删除|清空|삭제|지워)"#)
    static let repaintWords = Pattern(#"\b(repaint|redraw|re-?draw|restyle|re-?render|same composition|as night|as day|in the style|recolou?r|relight|redo the whole)"#)

    static func applies(_ correction: Correction) -> Bool {
        switch (correction.original, correction.corrected) {
        case let (.text(original), .text(corrected)):
            let before = trimmedLength(original)
            guard before >= 80 else { return false }
            return Double(trimmedLength(corrected)) <= 0.2 * Double(before)
        case let (_, .image(image)):
            guard let regions = image.mask, coverage(regions) >= 0.95 else { return false }
            let instruction = image.instruction ?? ""
            if repaintWords.matches(instruction) { return false }
            return eraseWords.matches(instruction) || (instruction.isEmpty && image.prompt == nil)
        default:
            return false
        }
    }

    /// Unicode scalars without the white space at either end.
    static func trimmedLength(_ text: String) -> Int {
        let ascii: Int? = Bytes.with(text) { bytes in
            guard Bytes.isASCII(bytes) else { return nil }
            // ASCII: one scalar a byte, and white space is what `Bytes.isSpace` says.
            guard let first = bytes.firstIndex(where: { !Bytes.isSpace($0) }), let last = bytes.lastIndex(where: { !Bytes.isSpace($0) }) else { return 0 }
            return last - first + 1
        }
        if let ascii { return ascii }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return 0 }
        return scalars[first...last].count
    }

    /// The share of the frame the mask regions cover (on a 100 × 100 grid, overlaps once).
    static func coverage(_ regions: [MaskRegion]) -> Double {
        // A row's covered cells as a bit set: 100 columns in two words.
        var rows = [(low: UInt64, high: UInt64)](repeating: (0, 0), count: 100)
        for region in regions {
            let x0 = Int((region.x * 100).rounded(.down)), y0 = Int((region.y * 100).rounded(.down))
            let x1 = Int(min(1, region.x + region.width) * 100), y1 = Int(min(1, region.y + region.height) * 100)
            guard x1 > x0, y1 > y0, x0 >= 0, y0 >= 0 else { continue }
            let span = bits(x0, min(x1, 100))
            for y in y0..<min(y1, 100) {
                rows[y].low |= span.low
                rows[y].high |= span.high
            }
        }
        let covered = rows.reduce(0) { $0 + $1.low.nonzeroBitCount + $1.high.nonzeroBitCount }
        return Double(covered) / 10_000
    }

    /// Columns `from..<to` (0…100) as bits: 0–63 in `low`, 64–99 in `high`.
    private static func bits(_ from: Int, _ to: Int) -> (low: UInt64, high: UInt64) {
        func mask(_ a: Int, _ b: Int) -> UInt64 {
            guard b > a else { return 0 }
            let width = b - a
            return (width >= 64 ? UInt64.max : (UInt64(1) << UInt64(width)) - 1) << UInt64(a)
        }
        return (mask(min(from, 64), min(to, 64)), mask(max(from, 64) - 64, max(to, 64) - 64))
    }
}

enum LowEffort {
    static func applies(_ correction: Correction) -> Bool {
        switch (correction.original, correction.corrected) {
        case let (.text(original), .text(corrected)):
            return onlyFiller(original, corrected)
        case let (.image(original), .image(corrected)):
            guard corrected.uri == original.uri, corrected.mask == nil else { return false }
            let prompt = correction.generation.prompt ?? ""
            let instructionIsFiller = corrected.instruction.map { isFiller($0) } ?? true
            let promptIsFiller = corrected.prompt.map { $0 == prompt || onlyFiller(prompt, $0) } ?? true
            return instructionIsFiller && promptIsFiller
        default:
            return false
        }
    }

    /// The two differ only in white space and invisible characters, or by a filler (a word or
    /// two of no content, punctuation, emoji) put before or after the original.
    static func onlyFiller(_ original: String, _ corrected: String) -> Bool {
        // Cheap reject for ASCII: without white space one side must begin or end with the other.
        if Bytes.isASCII(corrected), !Bytes.with(original, { a in Bytes.with(corrected) { b in
            Self.nonSpaceBytes(of: a, begin: b) || Self.nonSpaceBytes(of: a, end: b)
        } }) {
            return false
        }
        let before = collapsed(original), after = collapsed(corrected)
        if before == after { return true }
        if after.hasPrefix(before) { return isFiller(String(after.dropFirst(before.count))) }
        if after.hasSuffix(before) { return isFiller(String(after.dropLast(before.count))) }
        return false
    }

    /// Whether `b` without white space begins with `a` without white space.
    static func nonSpaceBytes(of a: UnsafeBufferPointer<UInt8>, begin b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0, j = 0
        while true {
            while i < a.count, Bytes.isSpace(a[i]) { i += 1 }
            while j < b.count, Bytes.isSpace(b[j]) { j += 1 }
            if i == a.count { return true }
            if j == b.count || a[i] != b[j] { return false }
            i += 1
            j += 1
        }
    }

    /// Whether `b` without white space ends with `a` without white space.
    static func nonSpaceBytes(of a: UnsafeBufferPointer<UInt8>, end b: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = a.count - 1, j = b.count - 1
        while true {
            while i >= 0, Bytes.isSpace(a[i]) { i -= 1 }
            while j >= 0, Bytes.isSpace(b[j]) { j -= 1 }
            if i < 0 { return true }
            if j < 0 || a[i] != b[j] { return false }
            i -= 1
            j -= 1
        }
    }

    static func collapsed(_ text: String) -> String {
        if Bytes.isASCII(text) { return collapsedASCII(text) }
        var scalars = String.UnicodeScalarView()
        for scalar in text.precomposedStringWithCompatibilityMapping.unicodeScalars where !FoldedText.isInvisible(scalar) { scalars.append(scalar) }
        return String(scalars).split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    static func isFiller(_ text: String) -> Bool {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if trimmed.isEmpty { return true }
        // Punctuation, symbols and emoji only.
        if !trimmed.contains(where: { $0.isLetter || $0.isNumber }) { return true }
        let words = FoldedText(trimmed).tokens
        return words.count <= 2 && words.allSatisfy { Lexicons.fillers.contains($0) }
    }
}

// MARK: - layout

enum LayoutRules {
    static func isDegenerate(_ layout: Layout) -> Bool {
        let width = layout.canvasWidth, height = layout.canvasHeight
        if width <= 0 || height <= 0 { return true }
        if layout.panels.count > 40 { return true }
        for panel in layout.panels {
            if panel.width < 0.01 * width || panel.height < 0.01 * height { return true }
            let inside = overlap(panel.x, panel.width, 0, width) * overlap(panel.y, panel.height, 0, height)
            if inside < 0.5 * panel.width * panel.height { return true }
        }
        for (index, a) in layout.panels.enumerated() {
            for b in layout.panels[(index + 1)...] {
                let shared = overlap(a.x, a.width, b.x, b.width) * overlap(a.y, a.height, b.y, b.height)
                if shared >= 0.8 * a.width * a.height && shared >= 0.8 * b.width * b.height { return true }
            }
        }
        return false
    }

    /// Every panel moved or resized by at most 0.1 % of the canvas side, ids and order kept.
    static func isNudgeOnly(_ original: Layout, _ corrected: Layout) -> Bool {
        guard original.panels.count == corrected.panels.count, original.panels.count > 0,
              original.canvasWidth == corrected.canvasWidth, original.canvasHeight == corrected.canvasHeight else { return false }
        let dx = 0.001 * corrected.canvasWidth, dy = 0.001 * corrected.canvasHeight
        for (a, b) in zip(original.panels, corrected.panels) {
            guard a.id == b.id, a.order == b.order else { return false }
            if abs(a.x - b.x) > dx || abs(a.width - b.width) > dx || abs(a.y - b.y) > dy || abs(a.height - b.height) > dy { return false }
        }
        return true
    }

    static func overlap(_ start1: Double, _ length1: Double, _ start2: Double, _ length2: Double) -> Double {
        max(0, min(start1 + length1, start2 + length2) - max(start1, start2))
    }
}
