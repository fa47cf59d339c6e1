import Testing
@testable import CraftBundles
