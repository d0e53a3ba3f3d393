#if canImport(Glibc)
import CCurl
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Level-triggered readiness for the event loop's descriptors: epoll on Linux (cost
/// independent of how many connections are idle), poll(2) elsewhere.
final class Poller {
    /// One ready descriptor.
    struct Event {
        var fd: Int32
        var readable: Bool
        var writable: Bool
        /// Hang-up or error: the peer is gone.
        var failed: Bool
    }

    #if os(Linux)
    // epoll through CCurl's C wrappers, the ones the HTTP client uses (Swift's Glibc module
    // leaves out <sys/epoll.h>, and struct epoll_event is packed on x86_64).
    private let epfd: Int32
    private let capacity = 256
    private var readyFDs: [Int32]
    private var readyEvents: [UInt32]

    init() {
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epfd >= 0, "epoll_create1: \(String(cString: strerror(errno)))")
        readyFDs = Array(repeating: 0, count: capacity)
        readyEvents = Array(repeating: 0, count: capacity)
    }

    deinit { close(epfd) }

    func add(_ fd: Int32, read: Bool, write: Bool) {
        _ = gra_epoll_ctl(epfd, EPOLL_CTL_ADD, fd, Poller.mask(read, write))
    }
    func modify(_ fd: Int32, read: Bool, write: Bool) {
        _ = gra_epoll_ctl(epfd, EPOLL_CTL_MOD, fd, Poller.mask(read, write))
    }
    /// Stops watching `fd`; call before closing it.
    func remove(_ fd: Int32) { _ = gra_epoll_ctl(epfd, EPOLL_CTL_DEL, fd, 0) }

    private static func mask(_ read: Bool, _ write: Bool) -> UInt32 {
        (read ? EPOLLIN.rawValue : 0) | (write ? EPOLLOUT.rawValue : 0)
    }

    /// Waits up to `timeoutMs` (-1: forever) and replaces `events` with what is ready.
    /// Returns false on an error other than EINTR.
    func wait(timeoutMs: Int32, into events: inout [Event]) -> Bool {
        events.removeAll(keepingCapacity: true)
        let n = gra_epoll_wait(epfd, &readyFDs, &readyEvents, Int32(capacity), timeoutMs)
        if n < 0 { return errno == EINTR }
        for i in 0..<Int(n) {
            let e = readyEvents[i]
            events.append(
                Event(
                    fd: readyFDs[i], readable: e & EPOLLIN.rawValue != 0, writable: e & EPOLLOUT.rawValue != 0,
                    failed: e & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0))
        }
        return true
    }
    #else
    private var fds: [pollfd] = []
    /// The index in `fds` of each watched descriptor.
    private var slots: [Int32: Int] = [:]

    func add(_ fd: Int32, read: Bool, write: Bool) {
        slots[fd] = fds.count
        fds.append(pollfd(fd: fd, events: Poller.mask(read, write), revents: 0))
    }

    func modify(_ fd: Int32, read: Bool, write: Bool) {
        if let i = slots[fd] { fds[i].events = Poller.mask(read, write) }
    }

    func remove(_ fd: Int32) {
        guard let i = slots.removeValue(forKey: fd) else { return }
        let last = fds.count - 1
        if i != last {
            fds[i] = fds[last]
            slots[fds[i].fd] = i
        }
        fds.removeLast()
    }

    private static func mask(_ read: Bool, _ write: Bool) -> Int16 {
        Int16((read ? POLLIN : 0) | (write ? POLLOUT : 0))
    }

    func wait(timeoutMs: Int32, into events: inout [Event]) -> Bool {
        events.removeAll(keepingCapacity: true)
        let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), timeoutMs) }
        if n < 0 { return errno == EINTR }
        for p in fds where p.revents != 0 {
            let r = Int32(p.revents)
            events.append(
                Event(
                    fd: p.fd, readable: r & POLLIN != 0, writable: r & POLLOUT != 0,
                    failed: r & (POLLERR | POLLHUP | POLLNVAL) != 0))
        }
        return true
    }
    #endif
}
