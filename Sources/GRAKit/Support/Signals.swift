import CCurl

#if canImport(Glibc)
import Glibc
#endif

nonisolated(unsafe) private var interruptFlag: sig_atomic_t = 0

/// Process-wide set-up shared by every gra tool: signals, and the allocator's thresholds.
///
/// SIGPIPE is ignored so a closed stdout shows up as EPIPE (then the tools exit 0 quietly);
/// SIGINT and SIGTERM set a flag the stages poll, so they flush complete lines and exit 130.
public enum Signals {
    public static func install() {
        // Not a signal, but every tool wants it at start-up too: see gra_tune_allocator.
        gra_tune_allocator()
        signal(SIGPIPE, SIG_IGN)
        // No SA_RESTART: a read(2) blocked on a quiet stdin returns EINTR and the tool stops.
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in interruptFlag = 1 }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
        unblockTermination()
    }

    /// Unblocks SIGINT and SIGTERM. A parent may have blocked them (libdispatch's threads do,
    /// and a blocked mask survives exec): without this, Ctrl-C or kill would never arrive.
    public static func unblockTermination() {
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGINT)
        sigaddset(&unblock, SIGTERM)
        sigprocmask(SIG_UNBLOCK, &unblock, nil)
    }

    /// True once SIGINT or SIGTERM has arrived.
    public static var interrupted: Bool { interruptFlag != 0 }
}
