import CraftExperiment
import Testing
