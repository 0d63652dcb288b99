//! `launch stop NAME`: the stop signal, a grace period, then SIGKILL to everything.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::exec::state::{self, Instance};
use crate::exit;

/// How long a launcher gets to clean up after its container was killed.
const CLEANUP_WAIT: Duration = Duration::from_secs(5);

/// `10s`, `1.5s`, `500ms`: as `--timeout` and `stop_timeout` are written.
fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else if ms >= 1000 {
        format!("{}s", d.as_secs_f64())
    } else {
        format!("{ms}ms")
    }
}

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
    let name = inst.instance();
    // Say what was sent to whom, and what happens next: a stop that waits 10 s is otherwise
    // indistinguishable from a hung one.
    let sent = match (launcher(inst), pid) {
        (Some(l), _) if forwarded => {
            let _ = kill(l, sig);
            format!(
                "sent {} to its launcher (pid {l}), which passes it to the container",
                sig.as_str()
            )
        }
        (_, Some(p)) => {
            let _ = kill(p, sig);
            format!("sent {} to the container (pid {p})", sig.as_str())
        }
        (Some(l), None) => {
            // Still starting, with a signal launch does not forward: cancel with SIGTERM.
            let _ = kill(l, Signal::SIGTERM);
            format!("still starting: sent SIGTERM to its launcher (pid {l}) to cancel the start")
        }
        (None, None) => {
            return Err(format!(
                "{name} has neither a live launcher nor a container process"
            ));
        }
    };
    eprintln!(
        "stopping {name}: {sent}, waiting up to {} before SIGKILL",
        human_duration(grace)
    );
    if wait_gone(&inst.dir, Instant::now() + grace) {
        return Ok(());
    }
    // Past the grace period: kill everything in the container. Its launcher then cleans up.
    eprintln!(
        "stopping {name}: still running after {}: sending SIGKILL to all its processes, \
         then waiting up to {} for its launcher to clean up",
        human_duration(grace),
        human_duration(CLEANUP_WAIT)
    );
    if let Some(st) = &inst.state {
        for g in &st.cgroups {
            crate::sys::cgroup::kill_all(g);
        }
    }
    if let Some(p) = pid {
        let _ = kill(p, Signal::SIGKILL);
    }
    if wait_gone(&inst.dir, Instant::now() + CLEANUP_WAIT) {
        return Ok(());
    }
    // The launcher did not clean up: if it is gone, gc does it.
    if !state::journal_locked(&inst.dir.join("journal")) {
        eprintln!(
            "stopping {name}: its launcher is gone: cleaning up what it left (as `launch gc`)"
        );
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

#[cfg(test)]
mod tests {
    use super::human_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_as_written() {
        assert_eq!(human_duration(Duration::from_secs(10)), "10s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(human_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(human_duration(Duration::ZERO), "0s");
    }
}
