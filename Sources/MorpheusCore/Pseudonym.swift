import Crypto
import Foundation

/// Keyed, non-reversible stand-ins for user ids: HMAC-SHA-256 under the service's secret.
///
/// Without the secret a pseudonym cannot be traced back to its user, nor computed for a
/// guessed user id; with it, the same user always gets the same pseudonym, so lineage holds.
public struct Pseudonymizer: Sendable {
    // Kept as bytes: swift-crypto 3's SymmetricKey is not Sendable.
    private let secret: [UInt8]

    public init(secret: [UInt8]) {
        precondition(secret.count >= 16, "the pseudonym secret needs at least 16 bytes")
        self.secret = secret
    }

    /// `u_` and 32 hex digits (128 bits of the MAC).
    public func pseudonym(for userId: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array(userId.utf8), using: SymmetricKey(data: secret))
        return "u_" + lowercaseHex(Array(mac).prefix(16))
    }
}

/// SHA-256 as lower-case hex.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    lowercaseHex(SHA256.hash(data: bytes))
}

/// Lower-case hex digits of `bytes`. (`String(format: "%02x")` per byte cost a fifth of the
/// service's CPU in a profile.)
public func lowercaseHex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(64)
    for byte in bytes {
        text.append(digits[Int(byte >> 4)])
        text.append(digits[Int(byte & 0x0f)])
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
