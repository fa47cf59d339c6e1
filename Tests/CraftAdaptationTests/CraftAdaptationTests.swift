import CraftAdaptation
import Testing
