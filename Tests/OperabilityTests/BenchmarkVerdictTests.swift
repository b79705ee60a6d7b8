import Foundation
import Testing

/// The rule the benchmark scripts judge their goals by (`bench/paired.py`, docs/benchmarks.md, "How the
/// goals are judged"), run with the Python the scripts use, on ratios whose verdict is known.
@Suite(.timeLimit(.minutes(1)))
struct BenchmarkVerdictTests {
    /// Prints one line per case: the interval's two ends and the verdict.
    static let probe = """
        import sys
        sys.path.insert(0, sys.argv[1])
        from paired import interval, verdict
        cases = [
            ([1.02, 1.10, 1.05, 1.01, 1.20], True),              # ahead in every round
            ([1.00, 1.13, 0.94, 1.08, 0.89, 1.15, 0.99], True),  # engine run 22, keyless, one thread
            ([0.95, 0.90, 0.99, 0.97, 0.80], True),              # behind in every round
            ([0.94, 0.90, 1.07], False),                         # p99 ratios, lower is better
            ([0.5, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.2, 1.3], False),
        ]
        for ratios, good_above in cases:
            _, low, high, cover = interval(ratios)
            print(f"{low:.2f} {high:.2f} {cover:.3f} {verdict(low, high, good_above)}")
        """

    @Test func goalsAreJudgedOnTheRoundsRatios() async throws {
        let bench = PackageRoot.path + "/bench"
        let selfCheck = try await ServiceProcess.run("/usr/bin/python3", [bench + "/paired.py"])
        #expect(selfCheck.status == 0, "bench/paired.py's own checks:\n\(selfCheck.output)")

        let run = try await ServiceProcess.run("/usr/bin/python3", ["-c", Self.probe, bench])
        #expect(run.status == 0, "\(run.output)")
        let lines = run.output.split(separator: "\n").map(String.init)
        #expect(
            lines == [
                "1.01 1.20 0.938 met",
                "0.89 1.15 0.984 level",
                "0.80 0.99 0.938 NOT met",
                "0.90 1.07 0.750 level",
                // Nine rounds: the second smallest and the second largest (96%); seven of nine p99
                // ratios below 1.0 still leave the interval reaching 1.2.
                "0.90 1.20 0.961 level",
            ], "\(run.output)")
    }
}
