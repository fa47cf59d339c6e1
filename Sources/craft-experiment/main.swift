// craft-experiment: rebuilds the embedded miniature (docs/experiment.md). Filled in with the
// experiment pipeline; for now it only says so.
import Foundation
FileHandle.standardError.write(Data("craft-experiment: the experiment pipeline is not built yet (issue #6)\n".utf8))
exit(1)
