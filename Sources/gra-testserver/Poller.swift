#if canImport(Glibc)
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
    // Glibc's Swift module map leaves out <sys/epoll.h>, so the three calls are looked up in
    // libc at start-up and the kernel's struct epoll_event is laid out by hand: packed
    // (12 bytes, data at offset 4) on x86_64, naturally aligned (16 bytes, offset 8) elsewhere.
    private typealias CreateFn = @convention(c) (Int32) -> Int32
    private typealias ControlFn = @convention(c) (Int32, Int32, Int32, UnsafeMutableRawPointer?) -> Int32
    private typealias WaitFn = @convention(c) (Int32, UnsafeMutableRawPointer?, Int32, Int32) -> Int32
    #if arch(x86_64)
    private static let eventSize = 12
    private static let dataOffset = 4
    #else
    private static let eventSize = 16
    private static let dataOffset = 8
    #endif
    private static let epollIn: UInt32 = 0x001, epollOut: UInt32 = 0x004, epollErr: UInt32 = 0x008, epollHup: UInt32 = 0x010
    private static let ctlAdd: Int32 = 1, ctlDel: Int32 = 2, ctlMod: Int32 = 3
    private static let cloexec: Int32 = 0o2000000

    private let epfd: Int32
    private let epollCtl: ControlFn
    private let epollWait: WaitFn
    private let capacity = 512
    private let buffer: UnsafeMutableRawPointer

    init() {
        let libc = dlopen(nil, RTLD_NOW)
        guard let create = dlsym(libc, "epoll_create1"), let ctl = dlsym(libc, "epoll_ctl"),
              let wait = dlsym(libc, "epoll_wait") else { fatalError("epoll is not available") }
        epollCtl = unsafeBitCast(ctl, to: ControlFn.self)
        epollWait = unsafeBitCast(wait, to: WaitFn.self)
        epfd = unsafeBitCast(create, to: CreateFn.self)(Poller.cloexec)
        precondition(epfd >= 0, "epoll_create1: \(String(cString: strerror(errno)))")
        buffer = .allocate(byteCount: capacity * Poller.eventSize, alignment: 8)
    }

    deinit {
        close(epfd)
        buffer.deallocate()
    }

    func add(_ fd: Int32, read: Bool, write: Bool) { control(Poller.ctlAdd, fd, read, write) }
    func modify(_ fd: Int32, read: Bool, write: Bool) { control(Poller.ctlMod, fd, read, write) }
    /// Stops watching `fd`; call before closing it.
    func remove(_ fd: Int32) { control(Poller.ctlDel, fd, false, false) }

    private func control(_ op: Int32, _ fd: Int32, _ read: Bool, _ write: Bool) {
        var event = (UInt64(0), UInt64(0))  // room for either layout
        withUnsafeMutableBytes(of: &event) { p in
            p.storeBytes(of: (read ? Poller.epollIn : 0) | (write ? Poller.epollOut : 0), toByteOffset: 0, as: UInt32.self)
            p.storeBytes(of: UInt64(UInt32(bitPattern: fd)), toByteOffset: Poller.dataOffset, as: UInt64.self)
            _ = epollCtl(epfd, op, fd, p.baseAddress)
        }
    }

    /// Waits up to `timeoutMs` (-1: forever) and replaces `events` with what is ready.
    /// Returns false on an error other than EINTR.
    func wait(timeoutMs: Int32, into events: inout [Event]) -> Bool {
        events.removeAll(keepingCapacity: true)
        let n = epollWait(epfd, buffer, Int32(capacity), timeoutMs)
        if n < 0 { return errno == EINTR }
        for i in 0..<Int(n) {
            let base = buffer + i * Poller.eventSize
            let e = base.loadUnaligned(as: UInt32.self)
            let fd = Int32(truncatingIfNeeded: base.loadUnaligned(fromByteOffset: Poller.dataOffset, as: UInt64.self))
            events.append(Event(fd: fd, readable: e & Poller.epollIn != 0, writable: e & Poller.epollOut != 0,
                                failed: e & (Poller.epollErr | Poller.epollHup) != 0))
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
            events.append(Event(fd: p.fd, readable: r & POLLIN != 0, writable: r & POLLOUT != 0,
                                failed: r & (POLLERR | POLLHUP | POLLNVAL) != 0))
        }
        return true
    }
    #endif
}
