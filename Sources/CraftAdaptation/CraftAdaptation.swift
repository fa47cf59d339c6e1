// CraftAdaptation: the training library applied to bundles. `craft train` (adapt an encoder bundle
// against a surrogate backend bundle and write, pack and publish the adapted bundle) and `craft stats`
// (code frequencies into a new encoder bundle version) are thin commands over this module.
