//! Training hooks for the release build's profile (scripts/release.sh, docs/performance.md).
//!
//! The container process is a copy of the launcher that ends in execve, so the profiler's
//! write at exit never runs for it and a profile-guided build would treat its code as never
//! executed: optimised for size and scattered among cold code, where its pages cost resident
//! memory at every start. Built with `--cfg launch_pgo_train` (only the instrumented build of
//! scripts/release.sh is) and `LAUNCH_PGO_CHILD_DIR` set, the container process opens
//! its own profile file while the host's filesystem is still its root, and writes it just before
//! execve. Otherwise both hooks are empty and compile to nothing.

#[cfg(launch_pgo_train)]
mod imp {
    use std::sync::atomic::{AtomicBool, Ordering};

    unsafe extern "C" {
        // The LLVM profiler runtime, linked into every `-Cprofile-generate` build.
        fn __llvm_profile_set_file_object(file: *mut libc::FILE, enable_merge: libc::c_int);
        fn __llvm_profile_write_file() -> libc::c_int;
    }

    static OPEN: AtomicBool = AtomicBool::new(false);

    #[inline(never)]
    pub fn container_started() {
        let Some(dir) = std::env::var_os("LAUNCH_PGO_CHILD_DIR") else {
            return;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::path::Path::new(&dir).join(format!("container-{nanos}.profraw"));
        let Ok(file) = std::fs::File::create(&path) else {
            return;
        };
        let fd = std::os::fd::IntoRawFd::into_raw_fd(file);
        // SAFETY: fdopen takes ownership of a descriptor we own; the mode is a C string.
        let f = unsafe { libc::fdopen(fd, c"w".as_ptr()) };
        if !f.is_null() {
            // SAFETY: a valid FILE*, kept open until the write below.
            unsafe { __llvm_profile_set_file_object(f, 0) };
            OPEN.store(true, Ordering::Relaxed);
        }
    }

    #[inline(never)]
    pub fn before_exec() {
        if OPEN.swap(false, Ordering::Relaxed) {
            // SAFETY: the runtime writes the counters to the FILE* set above.
            unsafe { __llvm_profile_write_file() };
        }
    }
}

#[cfg(not(launch_pgo_train))]
mod imp {
    #[inline(always)]
    pub fn container_started() {}
    #[inline(always)]
    pub fn before_exec() {}
}

/// The process is about to execve: write its profile (training builds only).
pub use imp::before_exec;
/// The container process starts: open its profile file (training builds only).
pub use imp::container_started;
