/// Prints rows as columns padded to their widest cell (the first row is the header).
func printTable(_ rows: [[String]]) {
    let widths = (rows.first ?? []).indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
    for row in rows {
        print(row.enumerated().map { $0 == row.count - 1 ? $1 : $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

/// Prints `key  value` lines, keys padded to the longest.
func printFields(_ fields: [(String, String)]) {
    let width = fields.map(\.0.count).max() ?? 0
    for (key, value) in fields { print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
}
