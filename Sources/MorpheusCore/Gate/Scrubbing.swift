import Foundation

/// Personal data taken out of free text, for anonymization: each finding of the `pii` rule
/// replaced by a typed placeholder (`[email]`, `[phone]`, `[card]`, `[iban]`, `[id]`,
/// `[address]`).
public enum PersonalDataScrubber {
    /// `text` with every finding replaced. The rule's patterns run on the text as stored; if the
    /// detector still finds personal data afterwards (a disguise only the folded text reveals),
    /// the whole text is replaced by `[redacted]`, so nothing it can see survives.
    public static func scrub(_ text: String) -> String {
        var out = text
        /// `keep` answers the part of a match to replace (`nil`: leave it).
        func replace(_ pattern: Pattern, with placeholder: String, part: (Substring) -> Substring?) {
            // As byte offsets, so that each replacement leaves the others' positions valid.
            let spans = pattern.all(out).compactMap(part).map { match in
                (out.utf8.distance(from: out.startIndex, to: match.startIndex), out.utf8.distance(from: out.startIndex, to: match.endIndex))
            }
            guard !spans.isEmpty else { return }
            var bytes = Array(out.utf8)
            for (start, end) in spans.reversed() { bytes.replaceSubrange(start..<end, with: placeholder.utf8) }
            out = String(decoding: bytes, as: UTF8.self)
        }
        func replace(_ pattern: Pattern, with placeholder: String, where keep: (Substring) -> Bool = { _ in true }) {
            replace(pattern, with: placeholder) { keep($0) ? $0 : nil }
        }
        replace(PersonalData.email, with: "[email]") { match in
            let parts = match.lowercased().split(separator: "@", maxSplits: 1)
            let user = parts.first.map(String.init) ?? "", domain = parts.count > 1 ? String(parts[1]) : ""
            return !(PersonalData.technicalEmailUsers.contains(user) || PersonalData.technicalEmailDomains.contains { domain == $0 || domain.hasSuffix($0) })
        }
        replace(PersonalData.obfuscatedEmail, with: "[email]")
        replace(PersonalData.streetAddress, with: "[address]")
        replace(PersonalData.europeanAddress, with: "[address]")
        replace(PersonalData.iban, with: "[iban]", part: { candidate -> Substring? in
            // The run may have taken the next word too: only the groups that check out.
            let groups = candidate.split(separator: " ")
            guard let count = stride(from: groups.count, through: 2, by: -1).first(where: { PersonalData.ibanChecksum(groups.prefix($0).joined()) })
            else { return nil }
            return candidate[candidate.startIndex..<groups[count - 1].endIndex]
        })
        replace(PersonalData.cardRun, with: "[card]") { run in
            let digits = run.compactMap(\.wholeNumberValue)
            return digits.count >= 13 && PersonalData.luhn(digits)
        }
        replace(PersonalData.ssn, with: "[id]")
        replace(PersonalData.ukInsurance, with: "[id]")
        // Phone-shaped runs of seven digits or more; ids next to their word.
        replace(PersonalData.digitRun, with: "[phone]") { run in
            run.filter(\.isNumber).count >= 7 && !PersonalData.isoDate(run)
        }
        if PersonalData.idContext.matches(out) { replace(PersonalData.idValue, with: "[id]") }
        let folded = FoldedText(out)
        if PersonalData.found(in: out, folded: folded) { return "[redacted]" }
        return out
    }
}

extension Correction {
    /// The correction as stored for a user who asked to be anonymized: under `pseudonym`, with
    /// personal data scrubbed from the free text the user wrote (text, image prompt and
    /// instruction). The model's side and the identifiers of the generation stay.
    public func anonymized(as pseudonym: String) -> Correction {
        var copy = self
        copy.userId = pseudonym
        func replacing(_ key: String, with value: String?) {
            guard let value, case .object(var members) = copy.correctedJSON else { return }
            if let index = members.firstIndex(where: { $0.key == key }) { members[index].value = .string(value) }
            copy.correctedJSON = .object(members)
        }
        switch corrected {
        case .text(let text):
            let clean = PersonalDataScrubber.scrub(text)
            copy.corrected = .text(clean)
            replacing("text", with: clean)
        case .image(var image):
            image.prompt = image.prompt.map(PersonalDataScrubber.scrub)
            image.instruction = image.instruction.map(PersonalDataScrubber.scrub)
            copy.corrected = .image(image)
            replacing("prompt", with: image.prompt)
            replacing("instruction", with: image.instruction)
        case .layout:
            break
        }
        return copy
    }
}
