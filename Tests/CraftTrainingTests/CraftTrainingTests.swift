import Testing
@testable import CraftTraining
