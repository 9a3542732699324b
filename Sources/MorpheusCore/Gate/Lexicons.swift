/// Word lists of the quality gate, in folded form (see ``FoldedText``: lower case, Latin
/// look-alikes, no diacritics). Kept short and strong on purpose: a mild word (`damn`, `hell`)
/// is not profanity, and a word that hides inside innocent ones (`ass` in `class`, `cock` in
/// `cockpit`, `dick` as a name) is only matched as a whole token, or not at all.
enum Lexicons {
    /// Strong profanity, obscenity, slurs and insults; whole tokens.
    static let profanity: Set<String> = [
        // English
        "fuck", "fucks", "fucked", "fucker", "fuckers", "fucking", "fuckin", "fuckface", "fck", "fcking", "fuk", "fukin", "fukking",
        "motherfucker", "motherfuckers", "motherfucking", "mf", "wtf", "stfu", "gtfo",
        "shit", "shits", "shitty", "shite", "bullshit", "shithead", "dipshit", "horseshit", "shitshow", "apeshit",
        "bitch", "bitches", "bitchy", "sonofabitch", "cunt", "cunts", "asshole", "assholes", "arsehole", "arseholes",
        "dickhead", "dickheads", "dumbass", "dumbasses", "jackass", "dipstick", "douchebag", "douche",
        "bastard", "bastards", "wanker", "wankers", "twat", "twats", "prick", "pricks", "slut", "sluts", "whore", "whores",
        "cocksucker", "cocksuckers", "retard", "retarded", "faggot", "fag", "fags", "nigger", "niggers", "nigga", "spic", "kike",
        "tranny", "pussy", "piss", "pissed", "bollocks", "bellend", "tosser",
        // Spanish
        "mierda", "puta", "putas", "puto", "joder", "jodete", "cono", "cabron", "cabrones", "pendejo", "pendejos", "gilipollas",
        "chinga", "chingada", "chingar", "verga", "culero", "mamon", "hijueputa", "hijoputa", "malparido", "marica", "maricon",
        // French
        "merde", "putain", "connard", "connards", "connasse", "salope", "salopes", "encule", "encules", "enculer", "bordel",
        "batard", "nique", "niquer", "ntm", "fdp", "pute", "couille", "couilles", "trouduc",
        // German
        "scheisse", "scheiss", "scheisse", "arschloch", "arschlocher", "fotze", "wichser", "hurensohn", "fick", "ficken", "gefickt",
        "missgeburt", "schlampe", "spast", "vollidiot", "drecksau", "kacke",
        // Italian
        "cazzo", "cazzi", "vaffanculo", "fanculo", "stronzo", "stronzi", "stronza", "merda", "puttana", "troia", "minchia",
        "coglione", "coglioni", "porca", "figa",
        // Portuguese
        "porra", "caralho", "foda", "fodase", "foder", "fodido", "buceta", "cacete", "arrombado", "viado", "otario",
        // Dutch
        "kut", "klootzak", "godverdomme", "kanker", "lul", "hoer", "tering", "tyfus",
        // Polish, Czech
        "kurwa", "kurwy", "chuj", "huj", "pierdole", "pierdolic", "jebac", "jebany", "skurwysyn", "spierdalaj", "zajebiste",
        "kurva", "pica", "prdel", "zmrd", "debil",
        // Swedish, Danish, Norwegian, Finnish
        "fitta", "kuk", "javla", "helvete", "faen", "kusipaa", "vittu", "perkele", "saatana",
        // Turkish, Romanian, Hungarian
        "siktir", "amk", "orospu", "pizda", "pula", "muie", "kurva", "geci", "bazmeg",
        // Transliterated Russian
        "blyat", "blyad", "suka", "pizdec", "nahui", "nahuy", "huy", "ebat", "yebat",
    ]

    /// Stems that appear in no innocent word: matched inside a token (`clusterfuck`, `fuckwit`).
    static let profanityStems: [String] = ["fuck", "motherf", "cocksuck", "shithead", "bullshit", "asshole", "arsehole", "dickhead", "wanker", "bitchass", "scheiss", "arschloch", "hurensohn", "vaffancul", "skurwysyn"]

    /// Strong profanity in scripts that are not folded to Latin (matched in the plain view).
    static let profanityOtherScripts: [String] = [
        "блять", "блядь", "бля", "сука", "хуй", "хуя", "хуе", "пизд", "ебат", "ебан", "ёбан", "заеб", "мудак", "пидор", "нахуй",
        "кур", "курва",  // Ukrainian/Russian forms of kurwa
        "μαλάκα", "γαμώ", "σκατά",
        "くそったれ", "ファック", "死ね", "他妈的", "操你", "傻逼", "씨발", "개새끼", "병신",
        "كس", "شرموطة", "خرا",
    ]

    /// Fillers: a word or two appended that changes nothing.
    static let fillers: Set<String> = [
        "ok", "okay", "k", "kk", "fine", "yes", "yeah", "yep", "no", "nope", "good", "nice", "cool", "great", "done", "test", "testing",
        "lol", "lmao", "haha", "hehe", "meh", "whatever", "idk", "x", "xx", "xxx", "asdf", "blah", "hmm", "hm", "uh", "um", "so", "yo",
        "si", "bien", "bueno", "vale", "oui", "ja", "gut", "jo", "nee", "nein", "non", "bon", "bene", "ok.", "ok!", "da", "tak",
        "hola", "hello", "hi", "hey", "thanks", "thx", "ty", "please", "pls", "plz", "fixed", "updated", "edit", "edited", "changed",
    ]

    /// What a mass deletion leaves behind instead of content.
    static let deletionFillers: Set<String> = [
        "deleted", "removed", "blank", "none", "null", "nil", "n/a", "na", "empty", "nothing", "tbd", "todo", "redacted", "void",
    ]

    /// Common TLDs of promotional links. Not `space`, `js`, `py`, `md`… (in-world names and
    /// software names end in those), and not one-letter endings (`e.g.`, `a.m.`).
    static let linkTLDs: Set<String> = [
        "com", "net", "org", "info", "biz", "shop", "store", "online", "site", "website", "xyz", "top", "club", "io", "co", "me",
        "ly", "gg", "tv", "app", "link", "click", "pro", "live", "fun", "vip", "win", "bet", "casino", "loan", "money", "buzz",
        "art", "design", "studio", "gallery", "ink", "blog", "news", "world", "today", "life", "ru", "cn", "de", "uk", "fr", "es",
        "it", "nl", "pl", "br", "in", "jp", "kr", "tk", "ml", "ga", "cf", "gq", "su", "ws", "cc", "to", "sh", "am", "fm", "eu", "us",
        "ca", "au", "mx", "ar", "cl", "pe", "ch", "at", "be", "se", "no", "dk", "fi", "pt", "gr", "tr", "ua", "kz", "by", "cz", "sk",
        "hu", "ro", "bg", "vn", "th", "id", "ph", "my", "sg", "tw", "hk", "za", "ng", "ke", "eg", "sa", "ae", "ir", "pk", "bd", "nz",
    ]

    /// Link shorteners and platforms whose paths point outside the comic.
    static let linkHosts: [String] = [
        "bit.ly", "tinyurl", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "cutt.ly", "rb.gy", "t.me", "discord.gg", "linktr.ee",
        "patreon", "ko-fi", "onlyfans", "instagram", "tiktok", "youtube", "youtu.be", "twitch", "twitter", "facebook", "telegram",
        "whatsapp", "wa.me", "snapchat", "linkedin", "reddit", "pinterest", "vk.com", "gumroad", "etsy", "fiverr",
    ]

    /// Keyboard rows, for keyboard mashing (QWERTY, AZERTY, QWERTZ letters all occur here).
    static let keyboardRows: [String] = ["qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "qsdfghjklm", "wxcvbn", "qwertzuiop", "yxcvbnm"]

    /// Placeholder text.
    static let placeholders: [String] = ["lorem ipsum", "dolor sit amet", "consectetur adipiscing", "sed do eiusmod", "the quick brown fox"]
}

/// The word lists a folded token is on, found with one look-up per token when a text is
/// folded (instead of one hash per token and list in every rule).
struct WordClass: OptionSet, Sendable {
    let rawValue: UInt16
    static let at = WordClass(rawValue: 1 << 0)
    static let dot = WordClass(rawValue: 1 << 1)
    static let street = WordClass(rawValue: 1 << 2)
    static let id = WordClass(rawValue: 1 << 3)
    static let account = WordClass(rawValue: 1 << 4)
    static let platform = WordClass(rawValue: 1 << 5)
    static let profanity = WordClass(rawValue: 1 << 6)
    static let abuse = WordClass(rawValue: 1 << 7)
    static let common = WordClass(rawValue: 1 << 8)
    static let rot13Anchor = WordClass(rawValue: 1 << 9)
    /// A word of one of `PromptInjection.foldedNeeds`' groups (its pairs in `LexiconEntry`).
    static let injection = WordClass(rawValue: 1 << 10)
    /// A word `Gibberish.placeholder` looks for.
    static let placeholder = WordClass(rawValue: 1 << 11)
}

/// A token's lists and, for prompt injection, the (pattern, group) pairs it satisfies.
struct LexiconEntry: Sendable {
    var classes: WordClass = []
    var injectionPairs: [Int] = []

    static let none = LexiconEntry()

    static func of(_ token: String) -> LexiconEntry { table[token] ?? none }

    /// `of` for an ASCII token: the same entries, found by the token's bytes.
    static func ofASCII(_ token: String) -> LexiconEntry { asciiTable.value(for: token) ?? none }

    static let asciiTable = ASCIIWordTable(table.filter { Bytes.isASCII($0.key) })

    static let table: [String: LexiconEntry] = {
        var table: [String: LexiconEntry] = [:]
        func add(_ words: some Sequence<String>, _ wordClass: WordClass) {
            for word in words { table[word, default: LexiconEntry()].classes.insert(wordClass) }
        }
        add(PersonalData.atWords, .at)
        add(PersonalData.dotWords, .dot)
        add(PersonalData.streetWords, .street)
        add(PersonalData.idWords, .id)
        add(PersonalData.accountWords, .account)
        add(LinkSpam.platforms, .platform)
        add(Lexicons.profanity, .profanity)
        add(Profanity.abuseWords, .abuse)
        add(Profanity.commonWords, .common)
        add(PromptInjection.rot13Anchors, .rot13Anchor)
        add(Gibberish.placeholderWords, .placeholder)
        for (word, pairs) in PromptInjection.needIndex.words {
            table[word, default: LexiconEntry()].classes.insert(.injection)
            table[word, default: LexiconEntry()].injectionPairs = pairs
        }
        return table
    }()
}

/// A fixed table keyed by ASCII words, looked up by their bytes: an FNV-1a hash and open
/// addressing, where `Dictionary<String, _>` hashes with SipHash and compares by canonical
/// equivalence (the same thing for ASCII, at about five times the cost per token).
struct ASCIIWordTable<Value: Sendable>: Sendable {
    private let keys: [[UInt8]]  // empty for a free slot
    private let values: [Value?]
    private let mask: Int

    init(_ entries: [String: Value]) {
        var capacity = 16
        while capacity < entries.count * 2 { capacity <<= 1 }
        var keys = [[UInt8]](repeating: [], count: capacity)
        var values = [Value?](repeating: nil, count: capacity)
        for (word, value) in entries where !word.isEmpty {
            let bytes = Array(word.utf8)
            var slot = bytes.withUnsafeBufferPointer(Bytes.fnv1a) & (capacity - 1)
            while !keys[slot].isEmpty { slot = (slot + 1) & (capacity - 1) }
            keys[slot] = bytes
            values[slot] = value
        }
        self.keys = keys
        self.values = values
        mask = capacity - 1
    }

    func value(for word: String) -> Value? {
        Bytes.with(word) { bytes in
            guard !bytes.isEmpty else { return nil }
            var slot = Bytes.fnv1a(bytes) & mask
            while !keys[slot].isEmpty {
                if keys[slot].withUnsafeBufferPointer({ $0.elementsEqual(bytes) }) { return values[slot] }
                slot = (slot + 1) & mask
            }
            return nil
        }
    }
}
