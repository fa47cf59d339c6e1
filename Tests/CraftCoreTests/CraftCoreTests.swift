import Testing
@testable import CraftCore
