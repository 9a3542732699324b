/// Stratified sampling with a contributor cap (`docs/datasets.md#sampling`): pure functions over
/// counts and sequences, so the build's choices are unit-tested without a database and the same
/// inputs always give the same dataset.
public enum Sampling {
    public enum Allocation: String, Sendable, CaseIterable {
        /// Each stratum in proportion to what it has (the dataset looks like the data).
        case proportional
        /// The same for every stratum, as far as each has rows (small strata are not drowned).
        case equal
    }

    /// How many examples each stratum gives, for `available` rows per stratum and a `target`
    /// total. Every stratum gets at least `floor` (or all it has), the rest follows the
    /// allocation; no stratum gets more than it has. Deterministic: remainders go by largest
    /// fraction, ties to the lower index.
    public static func quotas(available: [Int], target: Int, allocation: Allocation, floor: Int = 0) -> [Int] {
        let total = available.reduce(0, +)
        guard target < total else { return available }
        guard target > 0, !available.isEmpty else { return available.map { _ in 0 } }
        // The floors first (never more than a stratum has, nor than the target allows).
        var quotas = available.map { min($0, floor) }
        var left = target - quotas.reduce(0, +)
        if left < 0 {
            // Floors alone exceed the target: an equal share of it instead.
            return Self.quotas(available: available, target: target, allocation: .equal)
        }
        switch allocation {
        case .proportional:
            // The rest in proportion to what each stratum still has, largest remainder.
            let rest = zip(available, quotas).map { $0 - $1 }
            let restTotal = rest.reduce(0, +)
            guard restTotal > 0 else { return quotas }
            var fractions: [(index: Int, fraction: Double)] = []
            for index in rest.indices {
                let exact = Double(left) * Double(rest[index]) / Double(restTotal)
                let whole = min(rest[index], Int(exact))
                quotas[index] += whole
                fractions.append((index, exact - Double(whole)))
            }
            left = target - quotas.reduce(0, +)
            for (index, _) in fractions.sorted(by: { $0.fraction != $1.fraction ? $0.fraction > $1.fraction : $0.index < $1.index })
            where left > 0 && quotas[index] < available[index] {
                quotas[index] += 1
                left -= 1
            }
        case .equal:
            // Water-filling: raise every unfilled stratum by one share until the target is met.
            while left > 0 {
                let open = quotas.indices.filter { quotas[$0] < available[$0] }
                guard !open.isEmpty else { break }
                let share = max(1, left / open.count)
                for index in open where left > 0 {
                    let add = min(share, available[index] - quotas[index], left)
                    quotas[index] += add
                    left -= add
                }
            }
        }
        return quotas
    }

    /// Which rows to take. `rows` lists each candidate's stratum and contributor (indexes) in
    /// the build's random order (a seeded hash of the example id); a row is taken while its
    /// stratum's quota is open and its contributor is under the cap, so a capped contributor's
    /// place goes to the next row of the same stratum. The cap is a share of the dataset as it
    /// comes out: when the cap itself made the dataset smaller, the cap is recomputed for the
    /// smaller size and the selection repeated (it only shrinks, so this ends). A cap never
    /// goes below one example per contributor.
    public static func select(rows: [(stratum: Int32, contributor: Int32)], quotas: [Int], maxContributorShare: Double?) -> Selection {
        let target = quotas.reduce(0, +)
        var cap = maxContributorShare.map { max(1, Int(($0 * Double(target)).rounded(.down))) } ?? Int.max
        while true {
            let selection = pass(rows: rows, quotas: quotas, cap: cap)
            guard let share = maxContributorShare else { return selection }
            let allowed = max(1, Int((share * Double(selection.count)).rounded(.down)))
            if allowed >= cap || selection.largestContribution <= allowed { return selection }
            cap = allowed
        }
    }

    static func pass(rows: [(stratum: Int32, contributor: Int32)], quotas: [Int], cap: Int) -> Selection {
        var open = quotas
        var perContributor: [Int32: Int] = [:]
        var selected = [Bool](repeating: false, count: rows.count)
        var capped = 0, count = 0, largest = 0
        for (index, row) in rows.enumerated() where open[Int(row.stratum)] > 0 {
            let taken = perContributor[row.contributor, default: 0]
            guard taken < cap else {
                capped += 1
                continue
            }
            perContributor[row.contributor] = taken + 1
            largest = max(largest, taken + 1)
            open[Int(row.stratum)] -= 1
            selected[index] = true
            count += 1
        }
        return Selection(selected: selected, count: count, cappedRows: capped, largestContribution: largest, cap: cap == Int.max ? nil : cap)
    }

    public struct Selection: Sendable, Equatable {
        /// Per row of the input, whether it is in the dataset.
        public var selected: [Bool]
        public var count: Int
        /// Rows passed over because their contributor had reached the cap.
        public var cappedRows: Int
        /// The most examples any one contributor has in the dataset.
        public var largestContribution: Int
        /// The cap applied (examples per contributor), if any.
        public var cap: Int?
    }
}
