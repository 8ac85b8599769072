//! How an io_uring is set up for a thread that runs one executor (a shard, a load generator).

/// Builds with a ring whose completions do not interrupt the running thread, or, where the
/// kernel refuses that (before 5.19, `EINVAL`), with a plain ring.
///
/// With `COOP_TASKRUN` the kernel runs a completion's work when the thread next enters it (an
/// executor does, for every submit and park) instead of sending an inter-processor interrupt to
/// the running thread for each completion. On the no-bid path that interrupt cost ~1.5 us of
/// system time per request, and the sender's kernel pays for it: a load generator on a plain
/// ring makes the server it measures look slower than it is.
pub fn with_cooperative_ring<T>(
    build: impl Fn(io_uring::Builder) -> std::io::Result<T>,
) -> std::io::Result<T> {
    let mut setup = io_uring::IoUring::builder();
    setup.setup_coop_taskrun().setup_taskrun_flag();
    match build(setup) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => build(io_uring::IoUring::builder()),
        built => built,
    }
}
