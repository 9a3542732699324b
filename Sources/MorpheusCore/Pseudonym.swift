import Crypto
import Foundation

/// Keyed, non-reversible stand-ins for user ids: HMAC-SHA-256 under the service's secret.
///
/// Without the secret a pseudonym cannot be traced back to its user, nor computed for a
/// guessed user id; with it, the same user always gets the same pseudonym, so lineage holds.
public struct Pseudonymizer: @unchecked Sendable {
    /// The MAC with the key already absorbed: copied per use, so the key schedule (two SHA-256
    /// blocks) is not redone for every correction. A value type that is never mutated in place,
    /// hence the unchecked conformance (swift-crypto 3 does not mark it Sendable).
    private let keyed: HMAC<SHA256>

    public init(secret: [UInt8]) {
        precondition(secret.count >= 16, "the pseudonym secret needs at least 16 bytes")
        keyed = HMAC<SHA256>(key: SymmetricKey(data: secret))
    }

    /// `u_` and 32 hex digits (128 bits of the MAC).
    public func pseudonym(for userId: String) -> String {
        var mac = keyed
        var userId = userId
        userId.withUTF8 { mac.update(data: UnsafeRawBufferPointer($0)) }
        let code = mac.finalize()
        return code.withUnsafeBytes { bytes in
            "u_" + String(unsafeUninitializedCapacity: 32) { out in writeHex(UnsafeRawBufferPointer(rebasing: bytes[0..<16]), into: out) }
        }
    }
}

@inline(__always)
private func hexDigit(_ nibble: UInt8) -> UInt8 { nibble < 10 ? 48 + nibble : 87 + nibble }

/// Writes two lower-case hex digits per byte into `out` (which has room) and returns the count.
@inline(__always)
func writeHex(_ bytes: UnsafeRawBufferPointer, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
    var position = 0
    for byte in bytes {
        out[position] = hexDigit(byte >> 4)
        out[position + 1] = hexDigit(byte & 0x0f)
        position += 2
    }
    return position
}

/// SHA-256 as lower-case hex.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).withUnsafeBytes { digest in
        String(unsafeUninitializedCapacity: 64) { writeHex(digest, into: $0) }
    }
}

/// Lower-case hex digits of `bytes`. (`String(format: "%02x")` per byte cost a fifth of the
/// service's CPU in a profile.)
public func lowercaseHex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    var text: [UInt8] = []
    text.reserveCapacity(64)
    for byte in bytes {
        text.append(hexDigit(byte >> 4))
        text.append(hexDigit(byte & 0x0f))
    }
    return String(decoding: text, as: UTF8.self)
}

/// SHA-256 over data that arrives in pieces (a dataset file as it is written).
public struct StreamingSHA256 {
    private var hasher = SHA256()
    public init() {}
    public mutating func update(_ bytes: [UInt8]) { hasher.update(data: bytes) }
    public func hex() -> String { lowercaseHex(hasher.finalize()) }
}
