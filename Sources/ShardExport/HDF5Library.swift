import CShardHDF5

#if canImport(Glibc)
    import Glibc
#endif

/// The one lock around libhdf5. Debian's serial build of the library is not thread-safe, so
/// every call into it, from any thread, is made while holding this lock: ``locked(_:)`` and the
/// checked calls ``id(_:_:_:)`` and ``check(_:_:_:)``. The lock is recursive, so a helper that
/// holds it may call another. HDF5's automatic printing of its error stack is switched off the
/// first time the lock is taken; failures are read from the stack instead and thrown as
/// ``ExportError/hdf5(call:path:message:)``.
enum HDF5Library {
    /// A recursive pthread mutex that lives for the whole process.
    private final class RecursiveMutex: @unchecked Sendable {
        let mutex: UnsafeMutablePointer<pthread_mutex_t>

        init() {
            mutex = .allocate(capacity: 1)
            var attributes = pthread_mutexattr_t()
            pthread_mutexattr_init(&attributes)
            pthread_mutexattr_settype(&attributes, Int32(PTHREAD_MUTEX_RECURSIVE))
            pthread_mutex_init(mutex, &attributes)
            pthread_mutexattr_destroy(&attributes)
        }
    }

    private static let lock = RecursiveMutex()
    /// Whether automatic error printing is off yet; read and written under the lock only.
    nonisolated(unsafe) private static var isQuiet = false

    /// Runs `body` holding the HDF5 lock.
    static func locked<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(lock.mutex)
        defer { pthread_mutex_unlock(lock.mutex) }
        if !isQuiet {
            // No library shutdown at exit: after a failed H5Fclose (a full disk) libhdf5 1.10
            // keeps the half-closed file's id, and closing it again at exit dereferences freed
            // memory (SIGSEGV in H5F__close_cb). Every file is closed explicitly before exit, so
            // the shutdown has nothing to do. Must come before the first call that starts the
            // library, which this lock makes the next line.
            H5dont_atexit()
            H5Eset_auto2(shard_h5e_default(), nil, nil)
            isQuiet = true
        }
        return try body()
    }

    /// Calls `body` (a libhdf5 call that returns an id) under the lock.
    ///
    /// - Parameters:
    ///   - call: the function's name, for the error (`"H5Dcreate2"`).
    ///   - path: what the call works on (the file, and the object inside it), for the error.
    /// - Throws: ``ExportError/hdf5(call:path:message:)`` with the HDF5 error stack's message
    ///   when the id is negative.
    static func id(_ call: String, _ path: String, _ body: () -> hid_t) throws -> hid_t {
        try locked {
            let id = body()
            guard id >= 0 else { throw ExportError.hdf5(call: call, path: path, message: takeErrorMessage()) }
            return id
        }
    }

    /// Calls `body` (a libhdf5 call that returns a status) under the lock.
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)`` when the status is negative.
    static func check(_ call: String, _ path: String, _ body: () -> herr_t) throws {
        try locked {
            guard body() >= 0 else { throw ExportError.hdf5(call: call, path: path, message: takeErrorMessage()) }
        }
    }

    /// The HDF5 error stack as one clause, its outermost description (the API call's) then its
    /// innermost (the cause), and clears the stack. Call under the lock.
    static func takeErrorMessage() -> String {
        var descriptions: [String] = []
        let walker: H5E_walk2_t = { _, error, context in
            guard let error, let context, let text = error.pointee.desc else { return 0 }
            context.assumingMemoryBound(to: [String].self).pointee.append(String(cString: text))
            return 0
        }
        withUnsafeMutablePointer(to: &descriptions) { pointer in
            _ = H5Ewalk2(shard_h5e_default(), H5E_WALK_DOWNWARD, walker, pointer)
        }
        H5Eclear2(shard_h5e_default())
        let parts = descriptions.map(oneLine).filter { !$0.isEmpty }
        guard let outer = parts.first, let inner = parts.last else { return "no message on the HDF5 error stack" }
        return outer == inner ? outer : outer + ": " + inner
    }

    /// A description from the error stack on one line. The POSIX driver's multi-line report of
    /// a failed system call ("file write failed: time = …, errno = 28, error message = 'No space
    /// left on device', buf = …") becomes "file write failed: No space left on device (errno 28)".
    static func oneLine(_ description: String) -> String {
        let flat = description.split(whereSeparator: { $0 == "\n" || $0 == "\r" }).joined(separator: " ")
        guard let errnoRange = flat.firstRange(of: "errno = ") else { return flat }
        let digits = flat[errnoRange.upperBound...].prefix { $0.isNumber }
        guard let code = Int32(digits) else { return flat }
        let head = flat.firstRange(of: ": time = ").map { String(flat[..<$0.lowerBound]) } ?? "system call failed"
        return "\(head): \(String(cString: strerror(code))) (errno \(code))"
    }

    /// The `errno` a libhdf5 failure reports (`(errno 28)` in ``takeErrorMessage()``'s text), if any.
    static func systemErrno(in message: String) -> Int32? {
        guard let start = message.ranges(of: "(errno ").last else { return nil }
        return Int32(message[start.upperBound...].prefix { $0.isNumber })
    }
}

/// An HDF5 identifier this process owns (a file, group, dataset, dataspace, datatype, property
/// list or attribute), closed by ``close()`` or, at the latest, when the handle is released.
final class HDF5Handle {
    /// What the id names, which decides the close call.
    enum Kind {
        case file, group, dataset, dataspace, datatype, propertyList, attribute
    }

    /// The id (negative once closed).
    private(set) var id: hid_t
    let kind: Kind

    private init(id: hid_t, kind: Kind) {
        self.id = id
        self.kind = kind
    }

    /// Makes the id with `body` under the HDF5 lock and owns it.
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)`` when `body` returns a negative id.
    static func make(_ kind: Kind, _ call: String, _ path: String, _ body: () -> hid_t) throws -> HDF5Handle {
        HDF5Handle(id: try HDF5Library.id(call, path, body), kind: kind)
    }

    /// Closes the id now (for a file: flushes it), reporting a failure. Safe to call twice.
    ///
    /// - Throws: ``ExportError/hdf5(call:path:message:)`` naming `path`.
    func close(path: String) throws {
        guard id >= 0 else { return }
        try HDF5Library.locked {
            let (name, status) = Self.close(id, kind)
            id = -1
            if status < 0 {
                throw ExportError.hdf5(call: name, path: path, message: HDF5Library.takeErrorMessage())
            }
        }
    }

    deinit {
        guard id >= 0 else { return }
        HDF5Library.locked {
            // A file closed with H5F_CLOSE_STRONG has closed its objects already.
            if H5Iis_valid(id) > 0 { _ = Self.close(id, kind) }
            H5Eclear2(shard_h5e_default())
        }
    }

    private static func close(_ id: hid_t, _ kind: Kind) -> (String, herr_t) {
        switch kind {
        case .file: return ("H5Fclose", H5Fclose(id))
        case .group: return ("H5Gclose", H5Gclose(id))
        case .dataset: return ("H5Dclose", H5Dclose(id))
        case .dataspace: return ("H5Sclose", H5Sclose(id))
        case .datatype: return ("H5Tclose", H5Tclose(id))
        case .propertyList: return ("H5Pclose", H5Pclose(id))
        case .attribute: return ("H5Aclose", H5Aclose(id))
        }
    }
}
