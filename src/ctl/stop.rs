//! `launch stop NAME`: the stop signal, a grace period, then SIGKILL to everything.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec::state::{self, Instance};
use crate::exit;

fn wait_gone(dir: &Path, until: Instant) -> bool {
    while Instant::now() < until {
        if !dir.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !dir.exists()
}

fn stop_one(root: &Path, inst: &Instance, timeout: Option<Duration>) -> Result<(), String> {
    let Some(st) = &inst.state else {
        return Err(format!(
            "{} has no state file yet; try again",
            inst.instance()
        ));
    };
    let sig: Signal = st.stop.signal.parse().unwrap_or(Signal::SIGTERM);
    let grace = timeout.unwrap_or(Duration::from_millis(st.stop.timeout_ms));
    let pid = Pid::from_raw(st.pid);
    let _ = kill(pid, sig);
    if wait_gone(&inst.dir, Instant::now() + grace) {
        return Ok(());
    }
    // Past the grace period: kill everything in the container. Its launcher then cleans up.
    for g in &st.cgroups {
        crate::sys::cgroup::kill_all(g);
    }
    let _ = kill(pid, Signal::SIGKILL);
    if wait_gone(&inst.dir, Instant::now() + Duration::from_secs(5)) {
        return Ok(());
    }
    // The launcher did not clean up: if it is gone, gc does it.
    if !state::journal_locked(&inst.dir.join("journal")) {
        let _lock = state::lock_root(root).map_err(|e| e.to_string())?;
        crate::exec::gc::collect(root);
        return Ok(());
    }
    Err(format!(
        "{} did not stop (launcher {} still running)",
        inst.instance(),
        st.launcher_pid
    ))
}

/// `launch stop NAME [--timeout D]`.
pub fn stop(root: &Path, name: &str, timeout: Option<Duration>) -> u8 {
    let instances = match super::find(root, name) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let mut code = exit::OK;
    for inst in &instances {
        match stop_one(root, inst, timeout) {
            Ok(()) => println!("stopped {}", inst.instance()),
            Err(e) => {
                eprintln!("launch: error: {e}");
                code = exit::LAUNCHER;
            }
        }
    }
    code
}
