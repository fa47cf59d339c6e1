// The registry server's HTML pages, rendered on the server (no JavaScript): a home page listing every
// bundle with a search box, and one page per bundle (docs/registry.md, "Serving a registry").
import CraftBundles
import CraftCore
import CraftRegistry
import Foundation
import Hummingbird
import NIOCore

struct RegistryPages: Sendable {
    let registry: Registry

    /// `GET /[?q=QUERY]`: every bundle (newest visible version), or the search results for QUERY.
    func home(_ request: Request) throws -> Response {
        let query = (request.uri.queryParameters.get("q") ?? "").trimmingCharacters(in: .whitespaces)
        let bundles: [ResolvedBundle]
        let problems: [RegistryError]
        if query.isEmpty {
            (bundles, problems) = try registry.list()
        } else {
            let found = try registry.search(query)
            (bundles, problems) = (found.hits.map(\.bundle), found.problems)
        }
        var body = """
            <form class="search" action="/" method="get"><input name="q" type="search" value="\(escape(query))" \
            placeholder="search names, summaries, domains" aria-label="search"><button type="submit">Search</button></form>
            """
        let heading = query.isEmpty
            ? "\(bundles.count) bundle\(bundles.count == 1 ? "" : "s")"
            : "\(bundles.count) result\(bundles.count == 1 ? "" : "s") for “\(escape(query))” · <a href=\"/\">all bundles</a>"
        body += "<p class=\"count\">\(heading)</p>"
        if !bundles.isEmpty {
            body += "<table><thead><tr><th>Name</th><th>Version</th><th>Kind</th><th>Runtime</th><th>Codebook</th><th>Summary</th></tr></thead><tbody>"
            for bundle in bundles {
                let record = bundle.record
                body += "<tr><td><a href=\"/bundle/\(escape(bundle.name))\">\(escape(bundle.name))</a></td><td>\(escape(record.version))</td>"
                    + "<td><span class=\"kind \(record.kind.rawValue)\">\(record.kind.rawValue)</span></td><td>\(escape(record.runtime.id))</td>"
                    + "<td><code>\(escape(String(record.codebook.hash.prefix(19))))</code></td><td>\(escape(record.summary))</td></tr>"
            }
            body += "</tbody></table>"
        }
        body += warnings(problems)
        body += """
            <h2>Use this registry</h2>
            <pre>craft-registry --registry \(escape(Self.baseURL(request))) search QUERY
            craft-registry --registry \(escape(Self.baseURL(request))) pull NAME</pre>
            """
        return Self.page(title: "Craft registry", body: body)
    }

    /// `GET /bundle/NAME[?version=V]`: one bundle in full.
    func bundle(_ name: String, request: Request) throws -> Response {
        let version = request.uri.queryParameters.get("version")
        let reference = try BundleReference(parsing: version.map { "\(name)@\($0)" } ?? name)
        let bundle = try registry.resolve(reference)
        let shard = try registry.shard(named: bundle.name)
        let record = bundle.record
        let manifest = try? BundleArchive.readManifest(of: registry.bundleURL(for: record))
        let status = try? registry.signatureStatus(of: bundle)
        let partners = (try? registry.compatible(with: BundleReference(parsing: bundle.reference)).partners) ?? []
        let base = Self.baseURL(request)

        var body = "<p class=\"crumbs\"><a href=\"/\">All bundles</a></p>"
        body += "<h1>\(escape(bundle.name)) <span class=\"version\">\(escape(record.version))</span>\(record.yanked ? " <span class=\"yanked\">yanked</span>" : "")</h1>"
        body += "<p class=\"summary\">\(escape(record.summary))</p>"
        var facts: [(String, String)] = [
            ("Kind", "<span class=\"kind \(record.kind.rawValue)\">\(record.kind.rawValue)</span>"),
            ("Runtime", "\(escape(record.runtime.id)) \(escape(record.runtime.version))"),
            ("Codebook", "<code>\(escape(record.codebook.hash))</code> (K=\(record.codebook.entries), D=\(record.codebook.dim), depth \(record.codebook.depth), \(escape(record.codebook.metric)))"),
            ("License", escape(record.license)),
            ("Domains", escape(record.domains.joined(separator: ", "))),
            ("Digest", "<code>\(escape(record.digest))</code>"),
            ("Size", "\(record.size) bytes"),
        ]
        if let status {
            facts.append(("Signatures", status.keyIDs.isEmpty ? "unsigned" : "\(escape(status.label)) · signed by \(status.keyIDs.map { "<code>\(escape($0))</code>" }.joined(separator: ", "))"))
        }
        body += definitionList(facts)
        body += modelCard(of: record, listed: manifest?.files.contains { $0.path == ModelCard.fileName } ?? false)

        if case .object(let provenance)? = manifest?.provenance {
            body += "<h2>Provenance</h2>"
            let known: [(String, String)] = [
                ("method", "Method"), ("base", "Base"), ("surrogate", "Surrogate"), ("dataset_digest", "Data digest"),
                ("validation_accuracy_before", "Accuracy before"), ("validation_accuracy_after", "Accuracy after"),
                ("created_by", "Made by"), ("seed", "Seed"), ("steps", "Steps"),
            ]
            body += definitionList(known.compactMap { key, label in provenance[key].map { (label, escape(Self.text($0))) } })
        }
        if let files = manifest?.files, !files.isEmpty {
            body += "<h2>Files</h2><table><thead><tr><th>Path</th><th>Size</th><th>sha256</th></tr></thead><tbody>"
            for file in files {
                body += "<tr><td>\(escape(file.path))</td><td>\(file.size)</td><td><code>\(escape(file.sha256))</code></td></tr>"
            }
            body += "</tbody></table>"
        }
        body += "<h2>Versions</h2><ul class=\"versions\">"
        for entry in shard.versions.reversed() {
            let label = escape(entry.version) + (entry.yanked ? " <span class=\"yanked\">yanked</span>" : "") + (entry.isPrerelease ? " <span class=\"pre\">pre-release</span>" : "")
            body += entry.version == record.version ? "<li><strong>\(label)</strong></li>"
                : "<li><a href=\"/bundle/\(escape(bundle.name))?version=\(escape(entry.version))\">\(label)</a></li>"
        }
        body += "</ul>"
        body += "<h2>Compatible \(record.kind == .encoder ? "backends" : "encoders")</h2>"
        if partners.isEmpty {
            body += "<p>None in this registry shares codebook <code>\(escape(String(record.codebook.hash.prefix(19))))</code>.</p>"
        } else {
            body += "<ul>" + partners.map { "<li><a href=\"/bundle/\(escape($0.name))\">\(escape($0.name))</a> \(escape($0.record.version)) · \(escape($0.record.summary))</li>" }.joined() + "</ul>"
        }
        let partner = partners.first?.name ?? (record.kind == .encoder ? "BACKEND" : "ENCODER")
        let pair = record.kind == .encoder ? "\(bundle.reference) \(partner)" : "\(partner) \(bundle.reference)"
        body += """
            <h2>Use it</h2>
            <pre>craft-registry --registry \(escape(base)) pull \(escape(bundle.reference))
            craft-registry --registry \(escape(base)) pair \(escape(pair))</pre>
            """
        return Self.page(title: "\(bundle.name) \(record.version) · Craft registry", body: body)
    }

    static func errorPage(_ error: RegistryAPIError) -> Response {
        var response = page(title: "Not found · Craft registry",
                            body: "<p class=\"crumbs\"><a href=\"/\">All bundles</a></p><h1>\(error.status.code)</h1><p>\(escapeHTML(error.message))</p>")
        response.status = error.status
        return response
    }

    // MARK: - Rendering

    static func baseURL(_ request: Request) -> String {
        "http://" + (request.head.authority ?? "127.0.0.1")
    }

    static func text(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return text
        case .bool(let flag): return flag ? "yes" : "no"
        case .null: return "—"
        default:
            if let number = value.doubleValue { return number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(format: "%.4g", number) }
            return "\(value)"
        }
    }

    /// The bundle's README.md rendered (``ModelCard``), or nothing when it carries none.
    private func modelCard(of record: IndexedVersion, listed: Bool) -> String {
        guard listed else { return "" }
        let html: String
        do {
            guard let data = try BundleArchive.readListedFile(ModelCard.fileName, of: registry.bundleURL(for: record), maxSize: ModelCard.maxSize) else {
                return ""
            }
            html = ModelCard.html(String(decoding: data, as: UTF8.self))
        } catch {
            let reason = (error as? LocalizedError)?.errorDescription ?? String(describing: error)
            html = "<p>The model card cannot be shown: \(escape(reason))</p>"
        }
        return "<h2>Model card</h2><div class=\"card\">\(html)</div>"
    }

    private func warnings(_ problems: [RegistryError]) -> String {
        problems.isEmpty ? "" : "<div class=\"warning\"><strong>The index is damaged:</strong><ul>" + problems.map { "<li>\(escape($0.message))</li>" }.joined() + "</ul></div>"
    }

    private func definitionList(_ rows: [(String, String)]) -> String {
        "<dl>" + rows.map { "<dt>\(escape($0.0))</dt><dd>\($0.1)</dd>" }.joined() + "</dl>"
    }

    private func escape(_ text: String) -> String { Self.escapeHTML(text) }

    static func escapeHTML(_ text: String) -> String { MarkupText.escaped(text) }

    static func page(title: String, body: String) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escapeHTML(title))</title>
            <style>
            body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
            header{background:#1d2330;color:#fff;padding:14px 32px}header a{color:#fff;text-decoration:none;font-weight:600;font-size:18px}
            main{max-width:1080px;margin:0 auto;padding:20px 32px 48px}
            h1{font-size:26px;margin:8px 0}h1 .version{color:#5b6475;font-weight:400}h2{font-size:18px;margin-top:28px}
            table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
            th,td{text-align:left;padding:7px 10px;border-bottom:1px solid #eceef2;vertical-align:top}th{background:#f0f2f5;font-weight:600}
            code,pre{font:13px ui-monospace,SFMono-Regular,Menlo,monospace}pre{background:#fff;border:1px solid #dde1e8;padding:12px;overflow-x:auto}
            dl{display:grid;grid-template-columns:160px 1fr;gap:4px 16px;background:#fff;border:1px solid #dde1e8;padding:12px}dt{color:#5b6475}dd{margin:0;word-break:break-all}
            .kind{padding:1px 7px;border-radius:9px;font-size:12px}.encoder{background:#dbeafe}.backend{background:#dcfce7}
            .yanked{background:#fee2e2;color:#991b1b;padding:1px 6px;border-radius:6px;font-size:12px}.pre{background:#fef3c7;padding:1px 6px;border-radius:6px;font-size:12px}
            .search input{width:60%;padding:7px;font-size:15px}.search button{padding:7px 14px;font-size:15px}.count{color:#5b6475}
            .card{background:#fff;border:1px solid #dde1e8;padding:4px 18px}.card h3,.card h4,.card h5,.card h6{margin:14px 0 6px}
            .warning{background:#fff7ed;border:1px solid #fdba74;padding:8px 14px;margin-top:16px}a{color:#1d4ed8}
            </style></head>
            <body><header><a href="/">Craft registry</a></header><main>
            \(body)
            </main></body></html>
            """
        return Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"], body: ResponseBody(byteBuffer: ByteBuffer(string: html)))
    }
}
