//! Process-wide allocator settings.

/// Large freed buffers go back to the operating system at once.
///
/// glibc's malloc serves allocations of 128 KiB and more with mappings of their own, which a
/// free returns to the system; but by default each such free raises that threshold to the
/// freed size (up to 32 MiB), so later large buffers (a client's reply buffer, a node's reply
/// of a large value) come from the heap instead, where they stay resident once freed: after
/// one client had read 2,000 replies of 1 MiB, 19 MiB stayed (436 MiB before the output
/// limits). Setting the threshold fixes it at its default and keeps buffers mapped, measured
/// with `benches/output_memory.py` (RSS back to its starting value after the drain).
/// Call once, at start, before other threads exist.
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets an allocator parameter; it is called before any other
    // thread exists, so no allocation runs concurrently.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
