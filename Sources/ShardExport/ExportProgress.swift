/// Where a running export is, for a progress display. Reported from the exporting thread, at
/// most a few hundred times a second; render it at whatever rate suits.
public struct ExportProgress: Sendable, Equatable {
    /// The stage of the export.
    public enum Phase: String, Sendable {
        /// Reading the index and checking names and types before anything is written.
        case planning
        /// Copying members.
        case writing
        /// Flushing, syncing and renaming the output into place.
        case publishing
    }

    public var phase: Phase
    /// Samples written so far.
    public var samplesDone: Int
    /// Samples the export writes in all.
    public var samplesTotal: Int
    /// Member bytes read so far.
    public var bytes: Int64
    /// Seconds since the export started.
    public var seconds: Double

    public init(phase: Phase, samplesDone: Int, samplesTotal: Int, bytes: Int64, seconds: Double) {
        self.phase = phase
        self.samplesDone = samplesDone
        self.samplesTotal = samplesTotal
        self.bytes = bytes
        self.seconds = seconds
    }
}
