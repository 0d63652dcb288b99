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

/// The launcher of `inst`, if it is still the process that wrote the journal. A launcher that
/// has just locked its journal writes its own line a moment later: wait for it briefly.
fn launcher(inst: &Instance) -> Option<Pid> {
    let mut known = inst.launcher;
    let until = Instant::now() + Duration::from_secs(1);
    while known.is_none() && inst.alive && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
        known = std::fs::File::open(inst.dir.join("journal"))
            .ok()
            .and_then(|f| crate::exec::journal::read(f).launcher);
    }
    let (pid, start) = known?;
    (crate::exec::journal::start_time(pid) == Some(start)).then(|| Pid::from_raw(pid))
}

fn stop_one(root: &Path, inst: &Instance, timeout: Option<Duration>) -> Result<(), String> {
    let sig: Signal = inst
        .state
        .as_ref()
        .and_then(|st| st.stop.signal.parse().ok())
        .unwrap_or(Signal::SIGTERM);
    let grace = timeout.unwrap_or(Duration::from_millis(
        inst.state.as_ref().map_or(10_000, |st| st.stop.timeout_ms),
    ));
    let pid = inst.state.as_ref().map(|st| Pid::from_raw(st.pid));
    // The launcher gets a signal it forwards: during start-up it cancels (undoing what it did),
    // once the container runs it passes the signal to the container's main process. Any other
    // stop signal goes to the container directly.
    let forwarded = crate::exec::signals::FORWARDED.contains(&(sig as i32));
    match (launcher(inst), pid) {
        (Some(l), _) if forwarded => {
            let _ = kill(l, sig);
        }
        (_, Some(p)) => {
            let _ = kill(p, sig);
        }
        (Some(l), None) => {
            // Still starting, with a signal launch does not forward: cancel with SIGTERM.
            let _ = kill(l, Signal::SIGTERM);
        }
        (None, None) => {
            return Err(format!(
                "{} has neither a live launcher nor a container process",
                inst.instance()
            ));
        }
    }
    if wait_gone(&inst.dir, Instant::now() + grace) {
        return Ok(());
    }
    // Past the grace period: kill everything in the container. Its launcher then cleans up.
    if let Some(st) = &inst.state {
        for g in &st.cgroups {
            crate::sys::cgroup::kill_all(g);
        }
    }
    if let Some(p) = pid {
        let _ = kill(p, Signal::SIGKILL);
    }
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
        inst.launcher.map_or(0, |l| l.0)
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
