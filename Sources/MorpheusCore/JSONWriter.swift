extension JSONValue {
    /// Compact UTF-8 JSON. Deterministic: members in the order given, integers without a
    /// fraction, other numbers in Swift's shortest round-trip form, only the escapes JSON needs.
    public func serialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        write(to: &output, canonical: false)
        return output
    }

    /// The serialization of ``canonicalized()``, written directly (no sorted copy of the tree).
    public func canonicallySerialized() -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(512)
        write(to: &output, canonical: true)
        return output
    }

    public var serializedString: String { String(decoding: serialized(), as: UTF8.self) }

    private func write(to output: inout [UInt8], canonical: Bool) {
        switch self {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let value): output.append(contentsOf: (value ? "true" : "false").utf8)
        case .number(let value): output.append(contentsOf: JSONValue.format(value).utf8)
        case .string(let value): JSONValue.writeString(value, to: &output)
        case .array(let elements):
            output.append(UInt8(ascii: "["))
            for (position, element) in elements.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                element.write(to: &output, canonical: canonical)
            }
            output.append(UInt8(ascii: "]"))
        case .object(let members):
            output.append(UInt8(ascii: "{"))
            func member(_ index: Int, first: Bool) {
                if !first { output.append(UInt8(ascii: ",")) }
                JSONValue.writeString(members[index].key, to: &output)
                output.append(UInt8(ascii: ":"))
                members[index].value.write(to: &output, canonical: canonical)
            }
            // (Objects built in name order, as most are, need no sorted copy of their indices.)
            if canonical && !JSONValue.isCanonicallyOrdered(members) {
                for (position, index) in JSONValue.canonicalOrder(members).enumerated() { member(index, first: position == 0) }
            } else {
                for index in members.indices { member(index, first: index == 0) }
            }
            output.append(UInt8(ascii: "}"))
        }
    }

    static func format(_ value: Double) -> String {
        if value == value.rounded(), abs(value) < 9_007_199_254_740_992 { return String(Int64(value)) }
        return "\(value)"
    }

    private static let hex = Array("0123456789abcdef".utf8)

    static func writeString(_ string: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        // Runs that need no escape are copied whole, found eight bytes at a time; the writer
        // is on every message's hot path (canonical bytes, hashes, training examples).
        Bytes.with(string) { bytes in
            guard let base = bytes.baseAddress else { return }
            let count = bytes.count, raw = UnsafeRawPointer(base)
            var runStart = 0, position = 0
            while position < count {
                if position + 8 <= count, !needsEscape(raw.loadUnaligned(fromByteOffset: position, as: UInt64.self)) {
                    position += 8
                    continue
                }
                let byte = bytes[position]
                position += 1
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<(position - 1)]))
                runStart = position
                switch byte {
                case UInt8(ascii: "\""): output += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
                case UInt8(ascii: "\\"): output += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
                case 0x0A: output += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case 0x0D: output += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case 0x09: output += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                default: output += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
                }
            }
            output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        output.append(UInt8(ascii: "\""))
    }

    /// Whether one of the eight bytes in `word` is a control character, `"` or `\\` (exact:
    /// the classic "has a byte less than n" and "has a zero byte" word tests).
    @inline(__always)
    static func needsEscape(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let control = (word &- ones &* 0x20) & ~word & highs
        let quote = word ^ (ones &* 0x22), backslash = word ^ (ones &* 0x5C)
        let quotes = (quote &- ones) & ~quote & highs, backslashes = (backslash &- ones) & ~backslash & highs
        return control | quotes | backslashes != 0
    }
}

/// Builds objects with a readable literal syntax, dropping `nil` members.
extension JSONValue {
    public static func object(_ members: KeyValuePairs<String, JSONValue?>) -> JSONValue {
        .object(members.compactMap { member in member.value.map { (key: member.key, value: $0) } })
    }
}

extension JSONValue {
    /// The same value with every object's members sorted by name (byte order), so that two
    /// serialisations of the same content hash alike.
    /// Member positions sorted by key in UTF-8 byte order.
    static func canonicalOrder(_ members: [(key: String, value: JSONValue)]) -> [Int] {
        members.indices.sorted { Bytes.precedes(members[$0].key, members[$1].key) }
    }

    /// Whether the members already stand in canonical order (then the stable sort keeps them).
    static func isCanonicallyOrdered(_ members: [(key: String, value: JSONValue)]) -> Bool {
        for index in members.indices.dropFirst() where Bytes.precedes(members[index].key, members[index - 1].key) { return false }
        return true
    }

    public func canonicalized() -> JSONValue {
        switch self {
        case .array(let elements): .array(elements.map { $0.canonicalized() })
        case .object(let members):
            .object(JSONValue.canonicalOrder(members).map { (key: members[$0].key, value: members[$0].value.canonicalized()) })
        default: self
        }
    }
}

extension Correction {
    /// Everything the editor said, as the document whose canonical serialization is hashed.
    /// (The definition; ``hashes`` writes the same bytes without building it.)
    var payloadDocument: JSONValue {
        JSONValue.object([
            "feedbackId": .string(feedbackId), "userId": .string(userId), "modality": .string(modality.rawValue),
            "correctionType": .string(correctionType.rawValue), "occurredAt": .string(RFC3339.format(occurredAt)),
            "target": targetJSON, "generation": generationJSON, "original": originalJSON, "corrected": correctedJSON,
            "editDurationMs": editDurationMs.map { .number(Double($0)) },
            "client": client.map { .object([("app", .string($0.app)), ("version", .string($0.version))]) },
        ])
    }

    /// The correction itself — type, target, both sides — regardless of id and time.
    var contentDocument: JSONValue {
        JSONValue.object([
            "correctionType": .string(correctionType.rawValue), "target": targetJSON,
            "original": originalJSON, "corrected": correctedJSON,
        ])
    }

    /// SHA-256 of everything the editor said, canonically: equal for a republished payload,
    /// different for a reused `feedbackId` with other content (`idempotency_conflict`).
    public var payloadHash: String { hashes.payload }

    /// SHA-256 of the correction itself — type, target, both sides — regardless of id and time:
    /// the same user's identical correction of the same generation is a duplicate.
    public var contentHash: String { hashes.content }

    /// Both hashes, the canonical bytes of the shared parts written once, members in the byte
    /// order of their names (as ``payloadDocument`` and ``contentDocument`` serialize).
    public var hashes: (payload: String, content: String) {
        let hashed = hashedDocuments
        return (hashed.payload, hashed.content)
    }

    /// The hashes with the canonical bytes of both sides they were computed from (what the
    /// store writes as the `original` and `corrected` documents: the same JSON).
    public var hashedDocuments: (payload: String, content: String, original: [UInt8], corrected: [UInt8]) {
        let original = originalJSON.canonicallySerialized(), corrected = correctedJSON.canonicallySerialized()
        let target = targetJSON.canonicallySerialized()
        var content: [UInt8] = []
        content.reserveCapacity(original.count + corrected.count + target.count + 96)
        content += #"{"corrected":"#.utf8
        content += corrected
        content += #","correctionType":"#.utf8
        JSONValue.writeString(correctionType.rawValue, to: &content)
        content += #","original":"#.utf8
        content += original
        content += #","target":"#.utf8
        content += target
        content.append(UInt8(ascii: "}"))

        var payload: [UInt8] = []
        payload.reserveCapacity(content.count + 512)
        payload.append(UInt8(ascii: "{"))
        if let client {
            payload += #""client":{"app":"#.utf8
            JSONValue.writeString(client.app, to: &payload)
            payload += #","version":"#.utf8
            JSONValue.writeString(client.version, to: &payload)
            payload += "},".utf8
        }
        payload += #""corrected":"#.utf8
        payload += corrected
        payload += #","correctionType":"#.utf8
        JSONValue.writeString(correctionType.rawValue, to: &payload)
        if let editDurationMs {
            payload += #","editDurationMs":"#.utf8
            payload += JSONValue.format(Double(editDurationMs)).utf8
        }
        payload += #","feedbackId":"#.utf8
        JSONValue.writeString(feedbackId, to: &payload)
        payload += #","generation":"#.utf8
        payload += generationJSON.canonicallySerialized()
        payload += #","modality":"#.utf8
        JSONValue.writeString(modality.rawValue, to: &payload)
        payload += #","occurredAt":"#.utf8
        JSONValue.writeString(RFC3339.format(occurredAt), to: &payload)
        payload += #","original":"#.utf8
        payload += original
        payload += #","target":"#.utf8
        payload += target
        payload += #","userId":"#.utf8
        JSONValue.writeString(userId, to: &payload)
        payload.append(UInt8(ascii: "}"))
        return (sha256Hex(payload), sha256Hex(content), original, corrected)
    }

    var targetJSON: JSONValue {
        .object([
            "comicId": .string(target.comicId), "sceneId": target.sceneId.map(JSONValue.string),
            "panelId": target.panelId.map(JSONValue.string), "characterId": target.characterId.map(JSONValue.string),
        ])
    }

    var generationJSON: JSONValue {
        .object([
            "id": .string(generation.id), "model": .string(generation.model), "modelVersion": .string(generation.modelVersion),
            "prompt": generation.prompt.map(JSONValue.string),
            "experiment": generation.experiment.map { .object([("id", .string($0.id)), ("arm", .string($0.arm))]) },
        ])
    }
}
