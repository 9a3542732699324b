/// A UUID as two integers, parsed from and printed to its lower-case text by hand: a dataset
/// build handles millions of ids, and Foundation's UUID goes through sscanf and snprintf for
/// each (a tenth of the build's CPU). Ordered like PostgreSQL orders `uuid` (by its bytes).
struct UUIDBits: Hashable, Comparable, Sendable {
    var high: UInt64
    var low: UInt64

    init?(_ text: String) {
        var high: UInt64 = 0, low: UInt64 = 0, digits = 0
        for byte in text.utf8 {
            let value: UInt64
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = UInt64(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = UInt64(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = UInt64(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: "-"): continue
            default: return nil
            }
            if digits < 16 { high = high << 4 | value } else { low = low << 4 | value }
            digits += 1
        }
        guard digits == 32 else { return nil }
        self.high = high
        self.low = low
    }

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lower case.
    var text: String {
        let alphabet: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: 36) { buffer in
            var index = 0
            for nibble in 0..<32 {
                if nibble == 8 || nibble == 12 || nibble == 16 || nibble == 20 {
                    buffer[index] = UInt8(ascii: "-")
                    index += 1
                }
                let word = nibble < 16 ? high : low
                let shift = UInt64(60 - (nibble % 16) * 4)
                buffer[index] = alphabet.utf8Start[Int((word >> shift) & 0xF)]
                index += 1
            }
            return 36
        }
    }

    static func < (a: UUIDBits, b: UUIDBits) -> Bool { (a.high, a.low) < (b.high, b.low) }
}
