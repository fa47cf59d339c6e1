import Testing
@testable import CraftImaging
