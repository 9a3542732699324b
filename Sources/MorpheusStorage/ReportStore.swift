import Foundation
import MorpheusCore
import Postgres

/// Counts behind the A/B and model-version reports (`docs/reports.md`).
///
/// The unit is a generation shown to a user: (generation, user). It is *seen* when the user
/// reported an outcome for it or corrected it, and *corrected* when a correction of it is stored
/// or the outcome was `corrected` — counted once however many of both arrived.
public struct ReportStore: Sendable {
    public let pool: PostgresPool

    public init(pool: PostgresPool) {
        self.pool = pool
    }

    public struct Filter: Sendable {
        public var modality: Modality?
        /// Outcomes and corrections that occurred in [since, until).
        public var since: Date?
        public var until: Date?
        public init(modality: Modality? = nil, since: Date? = nil, until: Date? = nil) {
            self.modality = modality
            self.since = since
            self.until = until
        }
    }

    /// Seen and corrected per group and modality, and corrected per group, modality and
    /// correction type.
    public struct Counts: Sendable {
        public var byModality: [Key: (seen: Int, corrected: Int)] = [:]
        public var byType: [Key: Int] = [:]

        public struct Key: Hashable, Sendable, Comparable {
            public var group: String
            public var modality: String
            public var correctionType: String?
            public static func < (lhs: Key, rhs: Key) -> Bool {
                (lhs.group, lhs.modality, lhs.correctionType ?? "") < (rhs.group, rhs.modality, rhs.correctionType ?? "")
            }
        }
    }

    /// Per arm of `experiment`.
    public func experiment(_ experiment: String, _ filter: Filter) async throws -> Counts {
        try await counts(group: "experiment_arm", condition: "experiment_id = $4", extra: [experiment], filter)
    }

    /// Per `model@modelVersion` (optionally of one model).
    public func models(_ model: String?, _ filter: Filter) async throws -> Counts {
        try await counts(group: "model || '@' || model_version", condition: "($4::text IS NULL OR model = $4)", extra: [model], filter)
    }

    func counts(group: String, condition: String, extra: [(any PostgresEncodable)?], _ filter: Filter) async throws -> Counts {
        let parameters: [any PostgresEncodable] = [filter.modality?.rawValue, filter.since, filter.until] + extra.map { $0 ?? String?.none }
        let common = """
            \(condition) AND ($1::text IS NULL OR modality = $1) AND ($2::timestamptz IS NULL OR occurred_at >= $2)
            AND ($3::timestamptz IS NULL OR occurred_at < $3)
            """
        return try await pool.withConnection { connection in
            var counts = Counts()
            for row in try connection.query("""
                WITH units AS (
                    SELECT \(group) AS grp, modality, generation_id, user_id, outcome = 'corrected' AS corrected FROM outcomes WHERE \(common)
                    UNION ALL
                    SELECT \(group), modality, generation_id, user_id, true FROM feedback WHERE \(common)
                ), per_unit AS (
                    SELECT grp, modality, bool_or(corrected) AS corrected FROM units GROUP BY grp, modality, generation_id, user_id
                )
                SELECT grp, modality, count(*) AS seen, count(*) FILTER (WHERE corrected) AS corrected FROM per_unit GROUP BY 1, 2
                """, parameters) {
                let key = Counts.Key(group: try row.decode("grp", as: String.self), modality: try row.decode("modality", as: String.self))
                counts.byModality[key] = (try row.decode("seen", as: Int.self), try row.decode("corrected", as: Int.self))
            }
            for row in try connection.query("""
                SELECT \(group) AS grp, modality, correction_type, count(DISTINCT (generation_id, user_id)) AS corrected
                FROM feedback WHERE \(common) GROUP BY 1, 2, 3
                """, parameters) {
                let key = Counts.Key(group: try row.decode("grp", as: String.self), modality: try row.decode("modality", as: String.self),
                                     correctionType: try row.decode("correction_type", as: String.self))
                counts.byType[key] = try row.decode("corrected", as: Int.self)
            }
            return counts
        }
    }
}

extension ReportStore.Counts {
    /// The report: overall per group, then per modality and per correction type (a type's
    /// rate is its corrections over the generations of its modality seen).
    public func report(title: String, control: String?, planned: [String: Double]?, srmAlpha: Double) -> CorrectionRateReport {
        let groupNames = Set(byModality.keys.map(\.group)).sorted()
        let modalities = Set(byModality.keys.map(\.modality)).sorted()
        func total(_ group: String) -> CorrectionRateReport.Group {
            let rows = byModality.filter { $0.key.group == group }.values
            return .init(name: group, seen: rows.reduce(0) { $0 + $1.seen }, corrected: rows.reduce(0) { $0 + $1.corrected })
        }
        var slices: [(name: String, groups: [CorrectionRateReport.Group])] = []
        for modality in modalities {
            slices.append((modality, groupNames.map { group in
                let counts = byModality[Key(group: group, modality: modality)] ?? (0, 0)
                return .init(name: group, seen: counts.seen, corrected: counts.corrected)
            }))
            let types = Set(byType.keys.filter { $0.modality == modality }.compactMap(\.correctionType)).sorted()
            for type in types {
                slices.append(("\(modality)/\(type)", groupNames.map { group in
                    .init(name: group, seen: byModality[Key(group: group, modality: modality)]?.seen ?? 0,
                          corrected: byType[Key(group: group, modality: modality, correctionType: type)] ?? 0)
                }))
            }
        }
        let shares = planned.map { planned in groupNames.map { planned[$0] ?? 0 } }
        return CorrectionRateReport(title: title, groups: groupNames.map(total), control: control, planned: shares, srmAlpha: srmAlpha, slices: slices)
    }
}
