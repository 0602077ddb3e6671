import Foundation

/// What a command prints on stdout: an aligned table, or with `--json` one JSON value.
struct Output {
    let json: Bool

    /// `table` is a header row then data rows; nil prints nothing without `--json`.
    func print(json value: Any, table rows: [[String]]?) {
        if json {
            Swift.print(Self.json(value))
        } else if let rows {
            Swift.print(Self.table(rows), terminator: "")
        }
    }

    static func json(_ value: Any) -> String {
        let options: JSONSerialization.WritingOptions = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? JSONSerialization.data(withJSONObject: value, options: options) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Columns padded to their widest cell, two spaces apart; the last one unpadded.
    static func table(_ rows: [[String]]) -> String {
        let columns = rows.map(\.count).max() ?? 0
        let widths = (0..<columns).map { column in
            rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0
        }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }.joined(separator: "  ") + "\n"
        }.joined()
    }
}
