import CraftCLI

runCommandLine(RegistryCommand.self)
