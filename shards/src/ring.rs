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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn failing_first_with(errno: i32) -> (std::io::Result<u8>, u32) {
        let calls = Cell::new(0);
        let built = with_cooperative_ring(|_| {
            calls.set(calls.get() + 1);
            match calls.get() {
                1 => Err(std::io::Error::from_raw_os_error(errno)),
                _ => Ok(7),
            }
        });
        (built, calls.get())
    }

    #[test]
    fn a_kernel_without_cooperative_task_running_gets_a_plain_ring() {
        let (built, calls) = failing_first_with(libc::EINVAL);
        assert_eq!(built.unwrap(), 7);
        assert_eq!(calls, 2);
    }

    #[test]
    fn other_setup_errors_are_reported_not_retried() {
        let (built, calls) = failing_first_with(libc::EPERM);
        assert_eq!(built.unwrap_err().raw_os_error(), Some(libc::EPERM));
        assert_eq!(calls, 1);
    }
}
