// Fuzzes the bundle manifest parser (`craft.json`): strict JSON, every section, validation.
import CraftBundles
import FuzzDriver

runFuzzer { data in
    guard let manifest = try? BundleManifest.decode(data) else { return }
    _ = manifest.problems()
    _ = try? manifest.validate()
    _ = try? manifest.canonicalJSON()
}
