import CKernels
import Dispatch
import Foundation
import Testing
@testable import TensorCore

/// CKernels' worker pool (`craft_parallel_run`) and `parallelRanges` on top of it.
@Suite struct ParallelLoopTests {
    /// Per part: how many times it ran, and whether it ran on the calling thread.
    final class Record: @unchecked Sendable {
        let runs: UnsafeMutablePointer<Int>
        let onCaller: UnsafeMutablePointer<Bool>
        let caller = pthread_self()
        let parts: Int
        init(parts: Int) {
            self.parts = parts
            runs = .allocate(capacity: parts)
            runs.initialize(repeating: 0, count: parts)
            onCaller = .allocate(capacity: parts)
            onCaller.initialize(repeating: false, count: parts)
        }
        deinit { runs.deallocate(); onCaller.deallocate() }
    }

    static func run(_ record: Record) -> Int32 {
        craft_parallel_run(record.parts, { context, part in
            let record = Unmanaged<Record>.fromOpaque(context!).takeUnretainedValue()
            record.runs[part] += 1
            record.onCaller[part] = pthread_equal(pthread_self(), record.caller) != 0
        }, Unmanaged.passUnretained(record).toOpaque())
    }

    /// Every part exactly once, part 0 on the caller and the others not, over many loops in a row
    /// (workers spinning, then asleep after a pause) and part counts going up and down (a single
    /// part runs inline and is never refused).
    @Test func everyPartRunsOnceAndPartZeroOnTheCaller() throws {
        for round in 0..<300 {
            let parts = [1, 2, 3, 5, 2, 9, 4][round % 7]
            if round == 150 { Thread.sleep(forTimeInterval: 0.05) }  // the workers go to sleep
            let record = Record(parts: parts)
            // Other tests' loops may hold the pool for a moment: a refused loop runs nothing.
            while Self.run(record) == 0 {
                #expect((0..<parts).allSatisfy { record.runs[$0] == 0 })
                sched_yield()
            }
            for part in 0..<parts {
                #expect(record.runs[part] == 1, "round \(round), part \(part) of \(parts)")
                #expect(record.onCaller[part] == (part == 0), "round \(round), part \(part) of \(parts)")
            }
        }
    }

    /// A loop started inside a part finds the pool busy and says so without running anything;
    /// parallelRanges then runs it on Dispatch, with the same ranges.
    @Test func aLoopInsideALoopIsRefusedAndRunsAnotherWay() {
        final class Inner: @unchecked Sendable { var status: Int32 = -1; var covered = [Int](repeating: 0, count: 1000) }
        let inner = Inner()
        var started: Int32 = 0
        while started == 0 {  // other tests' loops may hold the pool for a moment
            started = craft_parallel_run(2, { context, part in
                guard part == 1 else { return }
                let inner = Unmanaged<Inner>.fromOpaque(context!).takeUnretainedValue()
                let record = Record(parts: 2)
                inner.status = ParallelLoopTests.run(record)
                #expect(record.runs[0] == 0 && record.runs[1] == 0)
                ThreadSettings.$taskOverride.withValue(2) {
                    inner.covered.withUnsafeMutableBufferPointer { buffer in
                        let pointer = UncheckedSendable(buffer.baseAddress!)
                        parallelRanges(1000, grain: 10) { range in for i in range { pointer.value[i] += 1 } }
                    }
                }
            }, Unmanaged.passUnretained(inner).toOpaque())
            if started == 0 { sched_yield() }
        }
        #expect(inner.status == 0)
        #expect(inner.covered.allSatisfy { $0 == 1 })
    }

    /// A child process after fork() has none of the parent's workers: its first loop starts its own
    /// (without the pool's fork handler it would wait for the parent's workers forever).
    @Test func aForkedChildStartsItsOwnWorkers() throws {
        while Self.run(Record(parts: 2)) == 0 { sched_yield() }  // the parent has a worker
        // The child touches only memory made before fork() and plain C calls: other tests' threads
        // may hold Swift runtime locks at the moment of the fork.
        let hits = UnsafeMutablePointer<Int>.allocate(capacity: 2)
        defer { hits.deallocate() }
        hits.initialize(repeating: 0, count: 2)
        let child = fork()
        if child == 0 {
            let status = craft_parallel_run(2, { context, part in context!.assumingMemoryBound(to: Int.self)[part] = 1 }, hits)
            _exit(status == 1 && hits[0] == 1 && hits[1] == 1 ? 0 : 1)
        }
        try #require(child > 0)
        var status: Int32 = 0
        var waited = 0
        while waitpid(child, &status, WNOHANG) == 0 {
            if waited == 1000 { kill(child, SIGKILL); waitpid(child, &status, 0); break }
            waited += 1
            usleep(10_000)
        }
        #expect(waited < 1000, "the forked child's loop did not finish within 10 s")
        #expect(status == 0, "the child's loop ran its parts wrongly (wait status \(status))")
    }

    /// Loops from several threads at once: each runs every index once, on the pool or on Dispatch.
    @Test func loopsFromSeveralThreadsAtOnce() {
        final class Counts: @unchecked Sendable { var values = [[Int]](repeating: [Int](repeating: 0, count: 4096), count: 4) }
        let counts = Counts()
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<50 {
                ThreadSettings.$taskOverride.withValue(3) {
                    counts.values[caller].withUnsafeMutableBufferPointer { buffer in
                        let pointer = UncheckedSendable(buffer.baseAddress!)
                        parallelRanges(4096, grain: 64) { range in for i in range { pointer.value[i] += 1 } }
                    }
                }
            }
        }
        for caller in 0..<4 { #expect(counts.values[caller].allSatisfy { $0 == 50 }, "caller \(caller)") }
    }
}
