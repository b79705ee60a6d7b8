import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts `process` with no signals blocked.
///
/// Foundation's `Process` on Linux spawns the child with the calling thread's signal mask, and the
/// threads Swift concurrency runs on (Dispatch workers) block almost every signal: the child would ignore
/// `SIGTERM` and `SIGHUP` (swift-corelibs-foundation issue #4772). The spawn happens synchronously inside
/// `run()`, so clearing this thread's mask just around it gives the child a clean mask.
///
/// Every test that starts a server or service binary it later signals uses this.
public func runWithDefaultSignalMask(_ process: Process) throws {
    #if os(Linux)
        var none = sigset_t()
        var saved = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
    #endif
    try process.run()
}
