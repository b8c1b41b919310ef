//! Ctrl-C and SIGTERM (what a job scheduler sends before it kills a job): the first asks training
//! to stop after the current step and write a checkpoint; a second ends the process at once.

/// Set by Ctrl-C or SIGTERM: training stops after the current step, writes a checkpoint and
/// exits cleanly. A second signal ends the process at once.
pub static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[cfg(unix)]
extern "C" fn on_stop_signal(_: libc::c_int) {
    if STOP_REQUESTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        // Only async-signal-safe calls here.
        // SAFETY: `_exit` is async-signal-safe and takes no pointers.
        unsafe { libc::_exit(130) };
    }
}

pub fn catch_stop_signals() {
    #[cfg(unix)]
    // SAFETY: the handler only touches an atomic and calls `_exit`, both async-signal-safe.
    unsafe {
        let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}
