import Foundation
import Testing
import TensorCore
import TestSupport
@testable import CraftCore

/// Test-time token pruning: code frequencies, the rarity pruner, the random control and the FLOPs
/// count (docs/token-pruning.md). Every expected value below is worked out by hand in the comments.
@Suite struct PruningTests {
    // MARK: - CodeFrequencies

    @Test func frequenciesSmoothUnseenCodesToAFiniteRarity() throws {
        var frequencies = CodeFrequencies(entries: 3)
        try frequencies.add(codes: [0, 0, 2, 0])
        #expect(frequencies.counts == [3, 0, 1] && frequencies.total == 4)
        // (count + 1) / (4 + 3)
        #expect(try frequencies.probability(of: 0) == 4.0 / 7)
        #expect(try frequencies.probability(of: 1) == 1.0 / 7)
        #expect(try frequencies.rarity(of: 1) == 7)
        // (0 + 0.5) / (4 + 1.5)
        #expect(try frequencies.probability(of: 1, smoothing: 0.5) == 0.5 / 5.5)
        let sum = try (0..<3).reduce(0.0) { $0 + (try frequencies.probability(of: $1)) }
        #expect(abs(sum - 1) < 1e-12)
        #expect(throws: CraftCoreError.self) { try frequencies.probability(of: 3) }
        #expect(throws: CraftCoreError.self) { try frequencies.probability(of: 0, smoothing: 0) }
        #expect(throws: CraftCoreError.self) { try frequencies.add(codes: [1, 3]) }
        #expect(frequencies.counts == [3, 0, 1] && frequencies.total == 4, "a rejected batch counts nothing")
    }

    @Test func frequenciesRoundTripThroughTheBundleJSON() throws {
        let frequencies = try CodeFrequencies(entries: 4, counts: [5, 0, 2, 1])
        let data = try JSONEncoder().encode(frequencies)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(object["entries"] as? Int == 4 && object["total"] as? Int == 8 && object["counts"] as? [Int] == [5, 0, 2, 1])
        #expect(try JSONDecoder().decode(CodeFrequencies.self, from: data) == frequencies)
    }

    @Test(arguments: [
        #"{"entries": 3, "counts": [1, 2], "total": 3}"#,
        #"{"entries": 2, "counts": [1, -2], "total": -1}"#,
        #"{"entries": 2, "counts": [1, 2], "total": 4}"#,
        #"{"entries": 0, "counts": [], "total": 0}"#,
        #"{"entries": 2, "counts": [1, 2]}"#,
        #"{"entries": 2, "counts": [1, 2.5], "total": 3}"#,
        #"[1, 2]"#,
    ])
    func badFrequencyJSONIsADecodingError(json: String) {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(CodeFrequencies.self, from: Data(json.utf8)) }
    }

    // MARK: - TokenPruner

    @Test func rareCodesAreKeptBeforeCommonOnes() throws {
        // Domain counts [97, 1, 0] → p = [98, 2, 1] / 101. The image holds three 0s and one 1; keeping
        // 2 of 4: breakpoints 2/101 (first 1) then 98/101 (first 0) → one token of each, the rare one
        // despite its zero residual, and the 0 with the largest residual (index 1).
        let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: 3, counts: [97, 1, 0]), isolationWeight: 0)
        let kept = try pruner.select(codes: [0, 0, 0, 1], residualNorms: [0.1, 0.5, 0.3, 0], grid: (rows: 2, columns: 2), keepRatio: 0.5)
        #expect(kept == [1, 3])
        // Keeping 1: only the rarest code's token.
        #expect(try pruner.select(codes: [0, 0, 0, 1], residualNorms: [0.1, 0.5, 0.3, 0], grid: (rows: 2, columns: 2), keepRatio: 0.25) == [3])
    }

    @Test func withinACodeTheLargestResidualComesFirst() throws {
        let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: 2), isolationWeight: 0)
        let codes = [1, 1, 1, 1, 1, 1]
        let norms: [Float] = [0.2, 0.9, 0.1, 0.7, 0.9, 0.3]
        // Ranking: 0.9 (index 1, wins the tie with index 4 by index), 0.9 (4), 0.7 (3), 0.3 (5), ...
        #expect(try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 2, columns: 3), keepRatio: 1.0 / 6) == [1])
        #expect(try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 2, columns: 3), keepRatio: 0.5) == [1, 3, 4])
    }

    @Test func isolationWeightBreaksATie() throws {
        // A 1×4 row [0, 0, 0, 1], equal residuals. Keeping 2 keeps the lone 1 and one 0: without a
        // bonus the tie goes to index 0; with one, index 2 (its right neighbour differs) wins.
        let frequencies = CodeFrequencies(entries: 2)
        let codes = [0, 0, 0, 1]
        let norms: [Float] = [0.2, 0.2, 0.2, 0.2]
        let plain = try TokenPruner(frequencies: frequencies, isolationWeight: 0)
        let isolated = try TokenPruner(frequencies: frequencies, isolationWeight: 0.1)
        #expect(try plain.select(codes: codes, residualNorms: norms, grid: (rows: 1, columns: 4), keepRatio: 0.5) == [0, 3])
        #expect(try isolated.select(codes: codes, residualNorms: norms, grid: (rows: 1, columns: 4), keepRatio: 0.5) == [2, 3])
        #expect(throws: CraftCoreError.self) { try TokenPruner(frequencies: frequencies, isolationWeight: -1) }
        #expect(throws: CraftCoreError.self) { try TokenPruner(frequencies: frequencies, isolationWeight: .nan) }
    }

    /// A 2×4 image with residual norms of realistic size (2.3 to 5.4, mean 3.7875):
    ///
    ///     codes  0 0 0 1      norms  4.2 2.5 3.9 5.4
    ///            0 0 1 2             2.3 3.0 5.0 4.0
    ///
    /// Domain counts [1000, 1, 0] make code 2 the rarest and code 0 the commonest, so keeping 4 keeps
    /// codes 2 and 1 entirely (indices 3, 6, 7) and one token of code 0.
    static let realistic = (
        codes: [0, 0, 0, 1, 0, 0, 1, 2], norms: [Float](arrayLiteral: 4.2, 2.5, 3.9, 5.4, 2.3, 3.0, 5.0, 4.0),
        grid: (rows: 2, columns: 4), frequencies: try! CodeFrequencies(entries: 3, counts: [1000, 1, 0]))

    @Test func isolationChangesTheSelectionAtTheDefaultWeightOnRealisticResiduals() throws {
        let (codes, norms, grid, frequencies) = Self.realistic
        // Code 0's best by residual is index 0 (4.2, no differing neighbour: 4.2 / 3.7875 = 1.109);
        // index 2 (3.9, its right and lower neighbours carry code 1) scores 3.9 / 3.7875 + 2 · 0.1 = 1.230.
        let full = try TokenPruner(frequencies: frequencies)
        #expect(full.isolationWeight == 0.1)
        #expect(try full.select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0.5) == [2, 3, 6, 7])
        let noIsolation = try TokenPruner(frequencies: frequencies, components: [.rarity, .residual])
        #expect(try noIsolation.select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0.5) == [0, 3, 6, 7])
        // The old additive bonus of 0.05 residual units per neighbour (3.9 + 0.1 < 4.2) was inert here;
        // its scale-free equivalent, 0.05 / 3.7875 per neighbour, is too.
        let inert = try TokenPruner(frequencies: frequencies, isolationWeight: 0.05 / 3.7875)
        #expect(try inert.select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0.5) == [0, 3, 6, 7])
    }

    @Test func eachSwitchTurnsItsTermOff() throws {
        let (codes, norms, grid, frequencies) = Self.realistic
        func kept(_ components: PruningComponents, _ ratio: Double) throws -> [Int] {
            try TokenPruner(frequencies: frequencies, components: components).select(
                codes: codes, residualNorms: norms, grid: grid, keepRatio: ratio)
        }
        // Rarity on: keeping 2 keeps code 2 (the rarest) and code 1's best (index 3: 5.4 / 3.7875 + 2 · 0.1
        // = 1.626 against index 6's 5.0 / 3.7875 + 3 · 0.1 = 1.620).
        #expect(try kept(.all, 0.25) == [3, 7])
        // Rarity off: every code opens one token per round (codes 0, 1, 2 at γ = 1) and the overshoot
        // leaves from the highest code index, so keeping 2 keeps code 0's best and code 1's best.
        #expect(try kept([.residual, .isolation], 0.25) == [2, 3])
        // Residual off: code 0 ranks by isolation alone (index 2, two differing neighbours, first), and
        // code 1's index 6 (three differing neighbours) overtakes index 3 (two).
        #expect(try kept([.rarity, .isolation], 0.5) == [2, 3, 6, 7])
        #expect(try kept([.isolation], 0.375) == [2, 6, 7])
        // Isolation off: residuals alone (index 0 for code 0, index 3 for code 1).
        #expect(try kept([.residual], 0.375) == [0, 3, 7])
        // Residual and isolation off: every score is 0, so each code's lowest index wins.
        #expect(try kept([.rarity], 0.5) == [0, 3, 6, 7])
        #expect(try kept([], 0.375) == [0, 3, 7])
    }

    @Test func scalingEveryResidualLeavesTheSelectionUnchanged() throws {
        var generator = SplitMix64(seed: 23)
        for trial in 0..<40 {
            let (rows, columns, entries, codes, norms, counts, ratio) = Self.randomImage(
                &generator, minimumSide: 2, maximumEntries: 4) { 2 + Float($0.next() % 4000) / 1000 }
            let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: entries, counts: counts))
            let grid = (rows: rows, columns: columns)
            let reference = try pruner.select(codes: codes, residualNorms: norms, grid: grid, keepRatio: ratio)
            for factor: Float in [0.001, 0.5, 3, 1000] {
                let scaled = try pruner.select(codes: codes, residualNorms: norms.map { $0 * factor }, grid: grid, keepRatio: ratio)
                #expect(scaled == reference, "trial \(trial): residuals × \(factor) changed the selection")
            }
        }
        // All-zero residuals (the scale guards against 0): isolation and index order decide.
        let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: 2))
        #expect(try pruner.select(codes: [0, 0, 0, 1], residualNorms: [0, 0, 0, 0], grid: (rows: 1, columns: 4), keepRatio: 0.5) == [2, 3])
    }

    @Test func quotasHitTheTargetAndDropTheOvershootFromCommonCodes() {
        // counts [3, 1], p [0.5, 0.1]: breakpoints 0.1 (code 1), 0.5, 1.0, 1.5 (code 0).
        #expect(TokenPruner.quotas(counts: [3, 1], probabilities: [0.5, 0.1], target: 1) == [0, 1])
        #expect(TokenPruner.quotas(counts: [3, 1], probabilities: [0.5, 0.1], target: 3) == [2, 1])
        // Equal probabilities reach each breakpoint together: 4 of [2, 2, 2] overshoots to 6 at 2p and
        // drops one from each of the two highest code indices.
        #expect(TokenPruner.quotas(counts: [2, 2, 2], probabilities: [0.25, 0.25, 0.25], target: 4) == [2, 1, 1])
        // p [0.2, 0.1]: the 1st token of code 0 and the 2nd of code 1 both open at 0.2; the commoner
        // code 0 gives way.
        #expect(TokenPruner.quotas(counts: [2, 3], probabilities: [0.2, 0.1], target: 2) == [0, 2])
    }

    /// A random image for the property tests: sides of `minimumSide` to `minimumSide + 5`, 1 to
    /// `maximumEntries` codes, residual norms drawn by `norm`, domain counts below 50, a keep ratio in (0, 1].
    static func randomImage(
        _ generator: inout SplitMix64, minimumSide: Int, maximumEntries: Int, norm: (inout SplitMix64) -> Float
    ) -> (rows: Int, columns: Int, entries: Int, codes: [Int], norms: [Float], counts: [Int], ratio: Double) {
        let rows = Int(generator.next() % 6) + minimumSide, columns = Int(generator.next() % 6) + minimumSide
        let entries = Int(generator.next() % UInt64(maximumEntries)) + 1
        let codes = (0..<(rows * columns)).map { _ in Int(generator.next() % UInt64(entries)) }
        let norms = (0..<(rows * columns)).map { _ in norm(&generator) }
        let counts = (0..<entries).map { _ in Int(generator.next() % 50) }
        return (rows, columns, entries, codes, norms, counts, Double(generator.next() % 1000 + 1) / 1000)
    }

    @Test func keepsExactlyRoundedCountForRandomInputs() throws {
        var generator = SplitMix64(seed: 11)
        for trial in 0..<60 {
            let (rows, columns, entries, codes, norms, counts, ratio) = Self.randomImage(
                &generator, minimumSide: 1, maximumEntries: 5) { Float($0.next() % 1000) / 1000 }
            let n = rows * columns
            // Every combination of switches keeps the count, is deterministic and nests.
            let components = PruningComponents(rawValue: trial % 8)
            let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: entries, counts: counts), components: components)
            let kept = try pruner.select(codes: codes, residualNorms: norms, grid: (rows: rows, columns: columns), keepRatio: ratio)
            let expected = Int((ratio * Double(n)).rounded(.toNearestOrAwayFromZero))
            #expect(kept.count == expected, "trial \(trial): \(n) tokens at \(ratio)")
            #expect(kept == Array(Set(kept)).sorted() && kept.allSatisfy { (0..<n).contains($0) }, "trial \(trial)")
            let again = try pruner.select(codes: codes, residualNorms: norms, grid: (rows: rows, columns: columns), keepRatio: ratio)
            #expect(again == kept, "trial \(trial) is not deterministic")
            // The quotas take a prefix of one fixed order of (code, slot) pairs, so a smaller ratio keeps
            // a subset of what a larger one keeps.
            for smaller in [ratio / 2, ratio * 0.75, ratio / 5] where smaller > 0 {
                let fewer = try pruner.select(codes: codes, residualNorms: norms, grid: (rows: rows, columns: columns), keepRatio: smaller)
                #expect(Set(fewer).isSubset(of: Set(kept)), "trial \(trial) \(components): keep \(smaller) is not nested in keep \(ratio)")
            }
        }
    }

    @Test func keepOneIsIdentityAndBadRatiosThrow() throws {
        let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: 3), isolationWeight: 0.1)
        let codes = [2, 0, 1, 1], norms: [Float] = [0, 1, 2, 3]
        #expect(try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 2, columns: 2), keepRatio: 1) == [0, 1, 2, 3])
        for ratio in [0, -0.5, 1.0001, .nan, .infinity] {
            #expect(throws: CraftCoreError.self) { try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 2, columns: 2), keepRatio: ratio) }
        }
        // Disagreeing inputs.
        #expect(throws: CraftCoreError.self) { try pruner.select(codes: codes, residualNorms: norms, grid: (rows: 1, columns: 3), keepRatio: 0.5) }
        #expect(throws: CraftCoreError.self) { try pruner.select(codes: codes, residualNorms: [0, 1], grid: (rows: 2, columns: 2), keepRatio: 0.5) }
        #expect(throws: CraftCoreError.self) { try pruner.select(codes: [2, 0, 1, 3], residualNorms: norms, grid: (rows: 2, columns: 2), keepRatio: 0.5) }
        #expect(throws: CraftCoreError.self) { try pruner.select(codes: codes, residualNorms: [0, .nan, 1, 1], grid: (rows: 2, columns: 2), keepRatio: 0.5) }
        let duplicate = [GridPosition(row: 0, column: 0), GridPosition(row: 0, column: 0)]
        #expect(throws: CraftCoreError.self) {
            try pruner.select(codes: [0, 1], residualNorms: [0, 0], positions: duplicate, grid: (rows: 2, columns: 2), keepRatio: 0.5)
        }
    }

    @Test func prunedVisualTokensKeepOrderAndPositions() throws {
        // 2×3 grid; codes [0, 0, 0, 0, 2, 0] with code 2 rare: keeping half keeps index 4 and the two
        // 0s with the largest residuals (indices 5 and 0).
        let grid = (rows: 2, columns: 3)
        let positions = (0..<6).map { GridPosition(row: $0 / 3, column: $0 % 3) }
        let tokens = try VisualTokens(
            codebookHash: "sha256:x", grid: grid, codes: IndexTensor([0, 9, 0, 9, 0, 9, 0, 9, 2, 9, 0, 9], shape: [6, 2]),
            positions: positions, residualNorms: [0.8, 0.1, 0.2, 0.3, 0.0, 0.9],
            features: Tensor((0..<12).map(Float.init), shape: [6, 2]))
        let pruner = try TokenPruner(frequencies: CodeFrequencies(entries: 3, counts: [100, 5, 0]), isolationWeight: 0)
        let pruned = try tokens.pruned(by: pruner, keepRatio: 0.5)
        #expect(pruned.positions == [positions[0], positions[4], positions[5]])
        #expect(pruned.codes.scalars == [0, 9, 2, 9, 0, 9])
        #expect(pruned.residualNorms == [0.8, 0.0, 0.9])
        #expect(pruned.features?.scalars == [0, 1, 8, 9, 10, 11])
        // A pruned set prunes again by its positions (the grid stays the full image's).
        let twice = try pruned.pruned(by: pruner, keepRatio: 0.34)
        #expect(twice.positions == [positions[4]])
        #expect(try tokens.pruned(by: pruner, keepRatio: 1).positions == positions)
    }

    // MARK: - RandomPruner

    @Test func randomPrunerKeepsExactlyTheCountAndIsSeeded() throws {
        let n = 64
        let codes = Array(repeating: 0, count: n), norms = [Float](repeating: 0, count: n)
        let grid = (rows: 8, columns: 8)
        let first = try RandomPruner(seed: 5).select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0.5)
        #expect(first.count == 32 && first == Array(Set(first)).sorted() && first.allSatisfy { (0..<n).contains($0) })
        #expect(try RandomPruner(seed: 5).select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0.5) == first)
        #expect(try RandomPruner(seed: 6).select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0.5) != first)
        for (ratio, expected) in [(0.8, 51), (0.01, 1), (1.0, 64), (0.0078125, 1), (0.007, 0)] {
            #expect(try RandomPruner(seed: 1).select(codes: codes, residualNorms: norms, grid: grid, keepRatio: ratio).count == expected)
        }
        #expect(throws: CraftCoreError.self) { try RandomPruner(seed: 1).select(codes: codes, residualNorms: norms, grid: grid, keepRatio: 0) }
    }

    // MARK: - PruningCost

    @Test func forwardFLOPsMatchAHandCount() throws {
        // layers 2, h 4, heads 2, kv heads 1 (head size 2, kv width 2), f 8, vocabulary 10; n = 2 + 1.
        // per layer: q,o 2·(2·3·4·4) = 192; k,v 2·(2·3·4·2) = 96; scores+values 2·(2·3·3·4) = 144;
        // gated MLP 3·(2·3·4·8) = 576 → 1008; two layers 2016; head 2·4·10 = 80 at the last position.
        let cost = try PruningCost(shape: DecoderShape(layers: 2, hidden: 4, heads: 2, kvHeads: 1, mlpSize: 8, vocabulary: 10))
        #expect(try cost.forwardFLOPs(textTokens: 2, visualTokens: 1) == 2096)
        #expect(try cost.forwardFLOPs(textTokens: 2, visualTokens: 1, logitsAtEveryPosition: true) == 2016 + 240)
        // Two-matrix MLP: 2·(2·3·4·8) = 384 → per layer 816.
        let plain = try PruningCost(shape: DecoderShape(layers: 2, hidden: 4, heads: 2, kvHeads: 1, mlpSize: 8, vocabulary: 10, gatedMLP: false))
        #expect(try plain.forwardFLOPs(textTokens: 2, visualTokens: 1) == 1712)
        #expect(try cost.forwardFLOPs(textTokens: 0, visualTokens: 0) == 0)
        // Keeping 2 of 4 visual tokens: n goes from 6 to 4.
        let savings = try cost.savings(textTokens: 2, visualTokens: 4, keepRatio: 0.5)
        #expect(savings.full == (try cost.forwardFLOPs(textTokens: 2, visualTokens: 4)))
        #expect(savings.pruned == (try cost.forwardFLOPs(textTokens: 2, visualTokens: 2)))
        #expect(abs(savings.savedFraction - (1 - savings.pruned / savings.full)) < 1e-15 && savings.savedFraction > 0)
        #expect(throws: CraftCoreError.self) { try cost.savings(textTokens: 2, visualTokens: 4, keepRatio: 1.5) }
        #expect(throws: CraftCoreError.self) { try cost.forwardFLOPs(textTokens: -1, visualTokens: 4) }
        #expect(throws: CraftCoreError.self) { try PruningCost(shape: DecoderShape(layers: 1, hidden: 5, heads: 2, kvHeads: 1, mlpSize: 8, vocabulary: 10)) }
        #expect(throws: CraftCoreError.self) { try PruningCost(shape: DecoderShape(layers: 1, hidden: 4, heads: 2, kvHeads: 3, mlpSize: 8, vocabulary: 10)) }
        #expect(throws: CraftCoreError.self) { try PruningCost(shape: DecoderShape(layers: 0, hidden: 4, heads: 2, kvHeads: 1, mlpSize: 8, vocabulary: 10)) }
    }

    @Test func gpt2SmallSavingsMatchTheDocumentedTable() throws {
        // docs/token-pruning.md: GPT-2 small, 32 text + 256 visual tokens, keep 0.8 → 205 visual.
        let cost = try PruningCost(shape: DecoderShape(layers: 12, hidden: 768, heads: 12, kvHeads: 12, mlpSize: 3072, vocabulary: 50257, gatedMLP: false))
        let savings = try cost.savings(textTokens: 32, visualTokens: 256, keepRatio: 0.8)
        #expect(savings.full == 52_057_204_224 && savings.pruned == 42_406_835_712)
        #expect(abs(savings.savedFraction - 0.185) < 0.001)
    }
}
