import CraftCLI

runCommandLine(CraftCommand.self)
