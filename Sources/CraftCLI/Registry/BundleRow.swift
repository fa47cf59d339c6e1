import CraftRegistry
import Foundation

extension BundleRow {
    /// The common table columns for a list of bundles.
    /// A SOURCE column comes first when the bundles come from several configured registries.
    static func table(_ bundles: [ResolvedBundle], extra: [(String, (ResolvedBundle) -> String)] = []) -> String {
        if bundles.contains(where: { $0.source != nil }) {
            return Output.table(
                header: ["SOURCE", "NAME", "VERSION", "KIND", "RUNTIME", "CODEBOOK"] + extra.map(\.0) + ["SUMMARY"],
                rows: bundles.map { bundle in
                    [bundle.source ?? "-", bundle.name, bundle.record.version + (bundle.record.yanked ? " (yanked)" : ""),
                     bundle.record.kind.rawValue, bundle.record.runtime.id, shortHash(bundle.record.codebook.hash)]
                        + extra.map { $0.1(bundle) } + [bundle.record.summary]
                })
        }
        return Output.table(
            header: ["NAME", "VERSION", "KIND", "RUNTIME", "CODEBOOK"] + extra.map(\.0) + ["SUMMARY"],
            rows: bundles.map { bundle in
                [bundle.name, bundle.record.version + (bundle.record.yanked ? " (yanked)" : ""),
                 bundle.record.kind.rawValue, bundle.record.runtime.id, shortHash(bundle.record.codebook.hash)]
                    + extra.map { $0.1(bundle) } + [bundle.record.summary]
            })
    }

    /// `sha256:0123456789ab` (12 hex digits) for tables; JSON always carries the full hash.
    static func shortHash(_ hash: String) -> String {
        hash.hasPrefix("sha256:") ? String(hash.prefix(7 + 12)) : hash
    }
}

/// The JSON shape of a signature check.
struct SignatureRow: Encodable {
    var status: String
    var keyIds: [String]

    init(_ status: SignatureStatus) {
        self.status = status.label
        self.keyIds = status.keyIDs
    }

    var text: String {
        switch status {
        case "unsigned": "unsigned"
        default: "\(status) (key \(keyIds.joined(separator: ", ")))"
        }
    }
}
