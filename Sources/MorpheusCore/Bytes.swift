/// Byte scans for the hot path (the gate over every added text, the JSON writer). `String.utf8`'s generic sequence
/// algorithms (`allSatisfy`, `contains`, `reduce`) cost about 25 instructions a byte in the
/// callgrind profile; these read the contiguous UTF-8 storage directly.
enum Bytes {
    /// Calls `body` with `text`'s UTF-8 bytes (native strings are contiguous; others are copied).
    @inline(__always)
    static func with<Result>(_ text: String, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(text.utf8).withUnsafeBufferPointer(body)
    }

    @inline(__always)
    static func with<Result>(_ text: Substring, _ body: (UnsafeBufferPointer<UInt8>) -> Result) -> Result {
        if let result = text.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(text.utf8).withUnsafeBufferPointer(body)
    }

    /// Whether every byte is below 0x80, eight at a time.
    static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let count = bytes.count
        var index = 0
        let raw = UnsafeRawPointer(base)
        while index + 8 <= count {
            if raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            index += 8
        }
        while index < count {
            if base[index] >= 0x80 { return false }
            index += 1
        }
        return true
    }

    static func isASCII(_ text: String) -> Bool { with(text) { isASCII($0) } }

    static func isASCII(_ text: Substring) -> Bool { with(text) { isASCII($0) } }

    /// Whether some byte of `text` satisfies `predicate`.
    @inline(__always)
    static func contains(_ text: String, where predicate: (UInt8) -> Bool) -> Bool {
        with(text) { bytes in
            for byte in bytes where predicate(byte) { return true }
            return false
        }
    }

    /// Whether every byte of `text` satisfies `predicate`.
    @inline(__always)
    static func all(_ text: String, _ predicate: (UInt8) -> Bool) -> Bool {
        with(text) { bytes in
            for byte in bytes where !predicate(byte) { return false }
            return true
        }
    }

    /// How many bytes of `text` satisfy `predicate`.
    @inline(__always)
    static func count(_ text: String, where predicate: (UInt8) -> Bool) -> Int {
        with(text) { bytes in
            var count = 0
            for byte in bytes where predicate(byte) { count += 1 }
            return count
        }
    }

    /// Whether `a`'s UTF-8 bytes precede `b`'s (`lexicographicallyPrecedes` on `utf8`).
    static func precedes(_ a: String, _ b: String) -> Bool {
        with(a) { a in
            with(b) { b in
                let shared = min(a.count, b.count)
                for index in 0..<shared where a[index] != b[index] { return a[index] < b[index] }
                return a.count < b.count
            }
        }
    }

    /// FNV-1a over the bytes, folded to `Int`: the hash of the gate's byte-keyed word tables.
    static func fnv1a(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { h = (h ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 32))
    }

    @inline(__always) static func isDigit(_ byte: UInt8) -> Bool { byte &- 0x30 < 10 }
    @inline(__always) static func isLower(_ byte: UInt8) -> Bool { byte &- 0x61 < 26 }
    @inline(__always) static func isLetter(_ byte: UInt8) -> Bool { (byte | 0x20) &- 0x61 < 26 }
    /// ASCII white space as `Character.isWhitespace` sees it: space, tab, line feed, vertical tab, form feed, carriage return.
    @inline(__always) static func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte &- 0x09 < 5 }
}
