// pair-and-ask: pull an encoder and a backend from a registry, check them, answer a question about an image.
// All logic is in PairAndAsk.swift (tested inside Craft's own test suite).
import Foundation
import PairAndAsk

exit(PairAndAsk.main(Array(CommandLine.arguments.dropFirst())))
