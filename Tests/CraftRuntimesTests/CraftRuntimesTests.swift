import Testing
@testable import CraftRuntimes
