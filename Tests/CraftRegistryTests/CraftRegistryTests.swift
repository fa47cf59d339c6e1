import Testing
@testable import CraftRegistry
