import Testing
@testable import CraftCLI
