import Testing
@testable import CraftModels
