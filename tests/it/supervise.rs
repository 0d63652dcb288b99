//! Supervision against the real kernel (as root): terminals (driven through tmux, as a person
//! would), signals sent to the launcher, `process.init`, `launch stop` and stop timeouts,
//! `launch ps`, `launch exec`, `launch gc` after a launcher was SIGKILLed, one instance per name
//! unless `multiple = true`, and plain pipes and redirections without a terminal.
//!
//! Every test has its own sandbox (its own `LAUNCH_STATE_ROOT`), so `ps`, `stop` and `gc` only
//! ever see the instances of the test that runs them.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::fixtures::*;

/// How long a container may take to notice something (a signal, a stop, a keystroke).
const SOON: Duration = Duration::from_secs(10);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `launch ARGS` to completion, failing (and killing it) after [`SOON`]: for commands that must
/// not wait for anything (a refused run, `stop`, `gc`).
#[track_caller]
fn launch_soon(sb: &Sandbox, args: &[&str]) -> Out {
    let mut child = sb.command(args).spawn().unwrap();
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let what = format!("launch {}", args.join(" "));
    let status = wait_timeout(&mut child, SOON, &what);
    Out {
        what,
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `launch ps --format json`, parsed: the instances of this sandbox's state root.
#[track_caller]
fn ps_json(sb: &Sandbox) -> Vec<Value> {
    let out = sb.launch(&["ps", "--format", "json"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("`launch ps --format json` is not JSON: {e}\n{out}"));
    v.as_array()
        .unwrap_or_else(|| panic!("`launch ps --format json` is not an array\n{out}"))
        .clone()
}

/// The one instance directory of `name` in the state root.
#[track_caller]
fn instance_dir(sb: &Sandbox, name: &str) -> String {
    let found: Vec<String> = sb
        .state_entries()
        .into_iter()
        .filter(|e| is_instance_of(e, name))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "not one state dir of {name} in {}: {:?}",
        sb.state.display(),
        sb.state_entries()
    );
    found[0].clone()
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// `readlink /proc/PID/ns/NS`.
fn ns(pid: i32, ns: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .map(|l| l.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

/// A `/proc/PID/status` line (`Uid:`), whitespace-normalized.
fn status_line(pid: i32, key: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(normalize)
        .unwrap_or_default()
}

/// The only process whose command line mentions `marker`, whose name is `comm` and whose parent
/// does not match too (the container's shell: not the `launch` whose arguments may mention the
/// marker, nor a child it forked that has not exec'd yet).
#[track_caller]
fn the_process(marker: &str, comm: &str) -> i32 {
    let matching: Vec<i32> = pids_with(marker)
        .into_iter()
        .filter(|p| {
            fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim_end() == comm)
        })
        .collect();
    let found: Vec<i32> = matching
        .iter()
        .copied()
        .filter(|p| {
            let ppid = status_line(*p, "PPid:");
            let ppid = ppid.strip_prefix("PPid: ").and_then(|n| n.parse().ok());
            !ppid.is_some_and(|pp: i32| matching.contains(&pp))
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "not one `{comm}` process mentioning {marker:?}: {:?}",
        processes_with(marker)
    );
    found[0]
}

/// A running `launch` (see [`Running`]) that is SIGKILLed, taking its container with it (the
/// parent-death signal), when the test fails before finishing it: a failed test leaves no
/// container running.
struct Live(Option<Running>);

impl Live {
    fn start(sb: &Sandbox, args: &[&str]) -> Live {
        Live(Some(Running::start(sb, args)))
    }

    fn finish(mut self, input: &str) -> Out {
        self.0.take().unwrap().finish(input)
    }
}

impl std::ops::Deref for Live {
    type Target = Running;
    fn deref(&self) -> &Running {
        self.0.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Live {
    fn deref_mut(&mut self) -> &mut Running {
        self.0.as_mut().unwrap()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(mut r) = self.0.take() {
            r.kill();
            let _ = r.finish("");
        }
    }
}

// --- terminals, through tmux ------------------------------------------------------------------

const TMUX: &str = "/usr/bin/tmux";

/// A tmux server of our own (its socket in the sandbox) with one session, killed on drop, also
/// when the test fails.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// A detached `width`×`height` session running `shell`.
    fn start(sb: &Sandbox, width: u16, height: u16, shell: &str) -> Tmux {
        assert!(
            Path::new(TMUX).exists(),
            "{TMUX} is missing: this test drives a terminal through tmux \
             (apt-get install tmux; .ci/run installs it)"
        );
        let t = Tmux {
            socket: s(&sb.dir.join("tmux.sock")).to_string(),
            session: unique("tty"),
        };
        let (w, h) = (width.to_string(), height.to_string());
        let dir = s(&sb.dir).to_string();
        t.ok(&[
            "new-session",
            "-d",
            "-s",
            &t.session.clone(),
            "-x",
            &w,
            "-y",
            &h,
            "-c",
            &dir,
            shell,
        ]);
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new(TMUX)
            .args(["-S", &self.socket, "-f", "/dev/null"])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// Run a tmux command that must succeed; its stdout.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> String {
        let out = self.cmd(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Type `text` and Enter.
    fn type_line(&self, text: &str) {
        self.ok(&["send-keys", "-t", &self.session, "-l", text]);
        self.ok(&["send-keys", "-t", &self.session, "Enter"]);
    }

    /// The whole pane, history included, wrapped lines joined.
    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-J", "-S", "-", "-t", &self.session])
    }

    /// `tmux display -p FORMAT`.
    fn display(&self, format: &str) -> String {
        self.ok(&["display-message", "-p", "-t", &self.session, format])
            .trim()
            .to_string()
    }

    /// Poll the screen until one of its lines satisfies `pred`; the screen.
    #[track_caller]
    fn wait_line(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.wait_line_within(what, SOON, pred)
    }

    /// [`Tmux::wait_line`], failing after `limit` instead of [`SOON`].
    #[track_caller]
    fn wait_line_within(&self, what: &str, limit: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let screen = self.screen();
            if screen.lines().any(|l| pred(l.trim_end())) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} on the terminal within {limit:?}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A 100×30 terminal running a plain interactive bash (prompt `host> `) in the sandbox.
    fn host_shell(sb: &Sandbox) -> Tmux {
        let shell = "env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
                     HOME=/root TERM=screen HISTFILE= PS1='host> ' bash --norc --noprofile";
        let tmux = Tmux::start(sb, 100, 30, shell);
        tmux.wait_line("host prompt", |l| l == "host>");
        tmux
    }

    /// Assert the terminal (tmux's pane, launch's stdin) is in raw mode.
    #[track_caller]
    fn assert_raw(&self) {
        let pane_tty = self.display("#{pane_tty}");
        let stty = Command::new("stty")
            .args(["-a", "-F", &pane_tty])
            .output()
            .unwrap();
        let modes = String::from_utf8_lossy(&stty.stdout).into_owned();
        let words: Vec<&str> = modes
            .split(|c: char| c.is_whitespace() || c == ';')
            .collect();
        for flag in ["-icanon", "-echo", "-isig"] {
            assert!(
                words.contains(&flag),
                "the host terminal {pane_tty} is not raw while the container runs (no {flag}):\n\
                 {modes}\n{}",
                self.screen()
            );
        }
    }

    /// Wait until the host shell wrote `file` (non-empty); its contents.
    #[track_caller]
    fn wait_written(&self, file: &Path) -> String {
        let deadline = Instant::now() + SOON;
        loop {
            match fs::read_to_string(file) {
                Ok(text) if !text.trim().is_empty() => return text,
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "the shell did not write {}\n{}",
                file.display(),
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// A person in a terminal (tmux) runs `launch run` of an interactive bash: they get a pty of the
/// container's own devpts, bash is PID 1, session leader with job control, sees the hostname and
/// the window size, follows a resize; the host terminal is raw meanwhile; `exit 3` is launch's
/// status, and the terminal settings are exactly as before.
#[test]
fn interactive_shell_in_a_terminal() {
    need_root();
    let sb = Sandbox::new("tty");
    let host_name = unique("ttybox");
    let m = App::new("tty", "")
        .command(&["/bin/bash", "--norc", "--noprofile"])
        .top(&format!("hostname = {}", q(&host_name)))
        // The first prompt shows the size bash starts with (then never again).
        .process(
            "env = { PS1 = \"ctr> \", TERM = \"dumb\", HISTFILE = \"\", \
             PROMPT_COMMAND = \"echo P0 $(stty size); unset PROMPT_COMMAND\" }",
        )
        .write(&sb);
    let tmux = Tmux::host_shell(&sb);
    tmux.type_line(&format!(
        "stty -g > before.txt; LAUNCH_STATE_ROOT='{}' NO_COLOR=1 '{}' run '{}'; echo EXIT=$?; \
         stty -g > after.txt",
        s(&sb.state),
        launch_bin(),
        s(&m)
    ));
    tmux.wait_line("container prompt `ctr>`", |l| l == "ctr>");
    let (h, w) = (
        tmux.display("#{pane_height}"),
        tmux.display("#{pane_width}"),
    );
    let screen = tmux.screen();
    assert!(
        screen
            .lines()
            .any(|l| l.trim_end() == format!("P0 {h} {w}")),
        "the command did not start with the terminal's size ({h} rows, {w} columns):\n{screen}"
    );

    // While the container runs, the host terminal (tmux's pane) is in raw mode.
    tmux.assert_raw();

    tmux.type_line("hostname");
    tmux.wait_line("the container's hostname", |l| l == host_name);
    tmux.type_line("echo $$");
    tmux.wait_line("PID 1", |l| l == "1");
    tmux.type_line("tty");
    tmux.wait_line("a /dev/pts/N terminal", |l| {
        l.strip_prefix("/dev/pts/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    // /proc/PID/stat: session (6th field), tty_nr (7th), foreground group (8th): bash is the
    // session leader, its controlling terminal is set, and it is in the foreground.
    tmux.type_line("read -a f < /proc/$$/stat; echo SID ${f[5]} FG ${f[7]} TTY $((f[6] != 0))");
    tmux.wait_line("the session line", |l| l.starts_with("SID "));
    let screen = tmux.screen();
    assert!(
        screen.lines().any(|l| l.trim_end() == "SID 1 FG 1 TTY 1"),
        "bash is not the session leader with a controlling terminal in the foreground:\n{screen}"
    );

    // The window size is still the pane's.
    tmux.type_line("echo M0 $(stty size)");
    tmux.wait_line("the first size line", |l| l.starts_with("M0 "));
    let screen = tmux.screen();
    assert!(
        screen
            .lines()
            .any(|l| l.trim_end() == format!("M0 {h} {w}")),
        "the container's window size is not the terminal's ({h} rows, {w} columns):\n{screen}"
    );

    // A resize reaches the container (SIGWINCH → TIOCSWINSZ). Let launch take the SIGWINCH
    // before asking, and ask again for a little while.
    tmux.ok(&[
        "resize-window",
        "-t",
        &tmux.session.clone(),
        "-x",
        "120",
        "-y",
        "40",
    ]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux.display("#{pane_width}x#{pane_height}") != "120x40" {
        assert!(Instant::now() < deadline, "tmux did not resize the pane");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut resized = false;
    for n in 1..=5 {
        tmux.type_line(&format!("echo M{n} $(stty size)"));
        let tag = format!("M{n} ");
        let screen = tmux.wait_line("a size line", |l| l.starts_with(&tag));
        if screen
            .lines()
            .any(|l| l.trim_end() == format!("M{n} 40 120"))
        {
            resized = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    let screen = tmux.screen();
    assert!(
        resized,
        "the container never saw the new size 40 rows × 120 columns:\n{screen}"
    );

    tmux.type_line("exit 3");
    tmux.wait_line("EXIT=3", |l| l == "EXIT=3");
    let after = tmux.wait_written(&sb.dir.join("after.txt"));
    let before = fs::read_to_string(sb.dir.join("before.txt")).unwrap();
    let screen = tmux.screen();
    assert_eq!(
        before, after,
        "the terminal settings were not restored (stty -g before, after)\n{screen}"
    );
    for bad in [
        "no job control",
        "cannot set terminal process group",
        "launch: error",
    ] {
        assert!(!screen.contains(bad), "{bad:?} on the terminal:\n{screen}");
    }
    sb.assert_state_empty(&screen);
}

/// `launch exec` from a terminal gets a pty of the container's own (its `tty` resolves inside),
/// the terminal's size, raw mode on the host meanwhile, the typed input, its status, and the
/// terminal settings back.
#[test]
fn exec_in_a_terminal() {
    need_root();
    let sb = Sandbox::new("exectty");
    let name = unique("exectty");
    let m = App::new(&name, "echo READY; read x; echo \"main $x\"").write(&sb);
    let mut main = Live::start(&sb, &["run", s(&m)]);
    main.wait_for_within("READY", SOON);

    let tmux = Tmux::host_shell(&sb);
    tmux.type_line(&format!(
        "stty -g > before.txt; LAUNCH_STATE_ROOT='{}' NO_COLOR=1 '{}' exec {name} -- sh -c \
         'echo T $(tty); echo S $(stty size); read -r line; echo \"got $line\"; exit 5'; \
         echo EXIT=$?; stty -g > after.txt",
        s(&sb.state),
        launch_bin(),
    ));
    tmux.wait_line("the size line", |l| l.starts_with("S "));
    tmux.assert_raw();
    let (h, w) = (
        tmux.display("#{pane_height}"),
        tmux.display("#{pane_width}"),
    );
    tmux.type_line("typed-in");
    tmux.wait_line("EXIT=5", |l| l == "EXIT=5");
    let after = tmux.wait_written(&sb.dir.join("after.txt"));
    let before = fs::read_to_string(sb.dir.join("before.txt")).unwrap();
    let screen = tmux.screen();
    let lines: Vec<&str> = screen.lines().map(str::trim_end).collect();
    // Anywhere on a line: when the typed command line fills the pane's width exactly, the
    // output starts on the same screen line as far as capture-pane is concerned.
    assert!(
        lines
            .iter()
            .any(|l| l.split("T /dev/pts/").skip(1).any(|n| {
                let digits: String = n.chars().take_while(char::is_ascii_digit).collect();
                !digits.is_empty() && digits.len() == n.trim_end().len()
            })),
        "exec has no terminal of the container's devpts:\n{screen}"
    );
    assert!(lines.contains(&format!("S {h} {w}").as_str()), "{screen}");
    assert!(lines.contains(&"got typed-in"), "{screen}");
    assert_eq!(
        before, after,
        "the terminal settings were not restored (stty -g before, after)\n{screen}"
    );
    let out = main.finish("done\n");
    out.expect_stdout("READY\nmain done\n");
    sb.assert_state_empty(&out);
}

/// A command started in a terminal, by `run` or `exec`, has the terminal's size from its first
/// instruction on (not 0×0 until launch gets round to it): 20 of each, as the size is a race.
#[test]
fn commands_start_with_the_terminals_size() {
    need_root();
    let sb = Sandbox::new("size");
    // The exec target lives in a state root of its own: the runs below never wait for it.
    let other = Sandbox::new("size-exec");
    let name = unique("szexec");
    let target = App::new(&name, "echo READY; read x").write(&other);
    let mut main = Live::start(&other, &["run", s(&target)]);
    main.wait_for_within("READY", SOON);
    let m = sb.write(
        "size.toml",
        App::new("size", "").command(&["stty", "size"]).toml(),
    );

    let tmux = Tmux::host_shell(&sb);
    let (h, w) = (
        tmux.display("#{pane_height}"),
        tmux.display("#{pane_width}"),
    );
    let bin = launch_bin();
    tmux.type_line(&format!(
        "for i in $(seq 20); do LAUNCH_STATE_ROOT='{}' '{bin}' run '{}'; \
         LAUNCH_STATE_ROOT='{}' '{bin}' exec {name} -- stty size; done 2>&1 | tr -d '\\r' \
         | sort | uniq -c > sizes.txt; echo FIN''ISHED",
        s(&sb.state),
        s(&m),
        s(&other.state),
    ));
    // 40 containers one after the other: a second or two here, a minute under emulation (the
    // QEMU guest of scripts/vm/test-v2.sh).
    tmux.wait_line_within("FINISHED", TIMEOUT * 2, |l| l == "FINISHED");
    let sizes = fs::read_to_string(sb.dir.join("sizes.txt")).unwrap();
    let sizes: Vec<String> = sizes.lines().map(normalize).collect();
    assert_eq!(
        sizes,
        [format!("40 {h} {w}")],
        "sizes seen by `stty size` as the first command (count, rows, columns)\n{}",
        tmux.screen()
    );
    let out = main.finish("\n");
    out.expect_stdout("READY\n");
    sb.assert_state_empty(&out);
    other.assert_state_empty(&out);
}

// --- signals ------------------------------------------------------------------------------------

/// Signals sent to the launcher (`kill`) reach the container's command: every forwarded signal
/// through `launch-init`, and SIGTERM to a shell that is PID 1 itself (with a trap).
#[test]
fn signals_sent_to_the_launcher_reach_the_container() {
    need_root();
    let sb = Sandbox::new("signals");
    let traps = "trap 'echo got HUP' HUP; trap 'echo got INT' INT; trap 'echo got QUIT' QUIT; \
                 trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; \
                 trap 'echo got TERM; exit 0' TERM; echo READY; while :; do sleep 0.1; done";
    let cases = [
        (
            "with init",
            App::new("sig-init", traps).process("init = true"),
            vec![
                (Signal::SIGHUP, "HUP"),
                (Signal::SIGINT, "INT"),
                (Signal::SIGQUIT, "QUIT"),
                (Signal::SIGUSR1, "USR1"),
                (Signal::SIGUSR2, "USR2"),
            ],
        ),
        (
            "shell as PID 1",
            App::new("sig-pid1", traps),
            vec![(Signal::SIGUSR1, "USR1")],
        ),
    ];
    for (label, app, signals) in cases {
        let m = app.write(&sb);
        let mut r = Live::start(&sb, &["run", s(&m)]);
        r.wait_for_within("READY", SOON);
        for (sig, name) in signals {
            r.signal(sig);
            r.wait_for_within(&format!("got {name}"), SOON);
        }
        r.signal(Signal::SIGTERM);
        let out = r.finish("");
        assert_eq!(out.code(), Some(0), "{label}: SIGTERM not handled\n{out}");
        assert!(
            out.stdout.ends_with("got TERM\n"),
            "{label}: the trap did not run\n{out}"
        );
        sb.assert_state_empty(&out);
    }
}

// --- stop -----------------------------------------------------------------------------------------

/// `launch stop` of a container that ignores SIGTERM kills it after the stop timeout (from
/// `--timeout`, or from the manifest), with everything it started, also without a pid
/// namespace; `launch stop` returns once the instance is gone and cleaned up.
#[test]
fn stop_kills_what_ignores_the_stop_signal_after_the_timeout() {
    need_root();
    let sb = Sandbox::new("stopkill");
    let cg = Cgroups::new();
    let host = Host::snapshot();
    let mark = unique("stopmark");
    // A background shell that ignores SIGTERM too: only a kill of everything ends it.
    // (`$b`: the main shell's command line must not contain the background one's marker.)
    let script = format!(
        "trap '' TERM; b=bg; sh -c \"trap '' TERM; : {mark}-$b; while :; do sleep 0.1; done\" & \
         : {mark}; echo READY; while :; do sleep 0.1; done"
    );
    let cases = [
        (
            "pid namespace, --timeout 1s",
            App::new("stopkill", &script).limits(&cg),
            vec!["--timeout", "1s"],
        ),
        (
            "no pid namespace, stop_timeout = \"1s\"",
            App::new("stopkill", &script)
                .no_proc()
                .process("stop_timeout = \"1s\"")
                .tables("[namespaces]\npid = false")
                .limits(&cg),
            vec![],
        ),
    ];
    for (label, app, extra) in cases {
        let m = app.write(&sb);
        let mut r = Live::start(&sb, &["run", s(&m)]);
        r.wait_for_within("READY", SOON);
        let deadline = Instant::now() + SOON;
        while pids_with(&format!("{mark}-bg")).len() != 1 {
            assert!(
                Instant::now() < deadline,
                "{label}: the background shell is not running: {:?}",
                processes_with(&mark)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut args = vec!["stop", "stopkill"];
        args.extend(extra);
        let start = Instant::now();
        let stop = launch_soon(&sb, &args);
        let took = start.elapsed();
        stop.expect_code(0);
        // Gone and cleaned when stop returns.
        let entries = sb.state_entries();
        let left = processes_with(&mark);
        let out = r.finish("");
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_secs(5),
            "{label}: stop took {took:?}, not the 1 s timeout\n{stop}\n{out}"
        );
        assert!(
            entries.is_empty(),
            "{label}: state left when stop returned: {entries:?}\n{stop}\n{out}"
        );
        assert!(
            left.is_empty() || processes_gone(&mark, Duration::from_millis(500)),
            "{label}: processes left after stop: {left:?}\n{stop}\n{out}"
        );
        assert_eq!(out.code(), Some(137), "{label}: not SIGKILLed\n{out}");
        // It says what it sent, how long it waits, and when it escalates.
        let said: Vec<&str> = stop.stderr.lines().collect();
        assert!(
            said.len() == 2
                && said[0].starts_with("stopping stopkill-")
                && said[0].contains(": sent SIGTERM to ")
                && said[0].ends_with(", waiting up to 1s before SIGKILL")
                && said[1]
                    .contains(": still running after 1s: sending SIGKILL to all its processes"),
            "{label}: {stop}"
        );
        host.assert_clean(&sb, Some(&cg), &out);
    }
}

/// `process.stop_signal` is what `launch stop` sends; a container that exits on it ends the
/// stop long before the timeout, with its own status.
#[test]
fn stop_sends_the_stop_signal() {
    need_root();
    let sb = Sandbox::new("stopsig");
    let m = App::new(
        "stopsig",
        "trap 'echo got USR1; exit 5' USR1; trap 'echo got TERM; exit 6' TERM; echo READY; \
         while :; do sleep 0.1; done",
    )
    .process("stop_signal = \"SIGUSR1\"\nstop_timeout = \"30s\"")
    .write(&sb);
    let mut r = Live::start(&sb, &["run", s(&m)]);
    r.wait_for_within("READY", SOON);
    let start = Instant::now();
    let stop = launch_soon(&sb, &["stop", "stopsig"]);
    let took = start.elapsed();
    let out = r.finish("");
    stop.expect_code(0);
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}: the stop signal did not end it\n{stop}\n{out}"
    );
    assert_eq!(out.code(), Some(5), "{out}");
    assert_eq!(out.stdout, "READY\ngot USR1\n", "{out}");
    let said = stop.stderr.trim_end();
    assert!(
        said.starts_with("stopping stopsig-")
            && said.contains(": sent SIGUSR1 to ")
            && said.ends_with(", waiting up to 30s before SIGKILL")
            && !said.contains('\n'),
        "{stop}"
    );
    sb.assert_state_empty(&out);
}

/// The forms of `stop_timeout` and `stop_signal` the contract names validate; nonsense does not.
#[test]
fn stop_settings_validate() {
    let sb = Sandbox::new("stopval");
    let good = [
        "stop_timeout = \"500ms\"",
        "stop_timeout = \"2s\"",
        "stop_timeout = \"1m\"",
        "stop_timeout = 3",
        "stop_signal = \"SIGTERM\"",
        "stop_signal = \"SIGINT\"",
        "stop_signal = \"SIGQUIT\"",
        "stop_signal = \"SIGUSR1\"",
        "init = true\nterminal = true",
    ];
    for keys in good {
        let m = App::new("val", "true").process(keys).write(&sb);
        let out = sb.launch(&["validate", s(&m)]);
        assert_eq!(out.code(), Some(0), "{keys} is refused\n{out}");
    }
    let bad = [
        "stop_timeout = \"soon\"",
        "stop_timeout = \"-1s\"",
        "stop_signal = \"SIGNOPE\"",
    ];
    for keys in bad {
        let m = App::new("val", "true").process(keys).write(&sb);
        let out = sb.launch(&["validate", s(&m)]);
        assert_eq!(out.code(), Some(2), "{keys} is accepted\n{out}");
    }
    let m = App::new("val", "true").top("multiple = true").write(&sb);
    sb.launch(&["validate", s(&m)]).expect_code(0);
}

// --- init ---------------------------------------------------------------------------------------

/// Count the processes named `sleep` whose parent is PID 1 (once all 3 are there, or after 3 s);
/// then, once no `sleep` is left (their 2 s ran out and init reaped them; at most 10 s), the
/// zombies; then PID 1's name and the shell's pid. Counted with shell builtins and polled, not
/// timed: exec and fork are slow under emulation (the QEMU guest of scripts/vm/test-v2.sh).
const ORPHANS: &str = "for i in 1 2 3; do (sleep 2 &); done; \
    count() { n=0; for f in /proc/[0-9]*/status; do nm=; pp=; \
      while read -r k v; do case $k in Name:) nm=$v;; PPid:) pp=$v;; esac; done 2>/dev/null <$f; \
      [ \"$nm\" = sleep ] && [ \"$1\" = any -o \"$pp\" = 1 ] && n=$((n+1)); done; }; \
    i=0; while count orphans; [ $n -lt 3 ] && [ $i -lt 60 ]; do sleep 0.05; i=$((i+1)); done; \
    echo orphans $n; \
    i=0; while count any; [ $n -gt 0 ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; \
    echo zombies $(cat /proc/[0-9]*/stat 2>/dev/null | grep -c '^[0-9]* ([^)]*) Z'); \
    echo init $(cat /proc/1/comm); echo pid $$; exit 9";

/// With `init = true`, `launch-init` is PID 1, reaps orphans, and exits with the command's
/// status (or its signal); without it the command is PID 1.
#[test]
fn init_reaps_orphans_and_passes_the_status_on() {
    need_root();
    let sb = Sandbox::new("init");
    let m = App::new("init", ORPHANS).process("init = true").write(&sb);
    let out = sb.run(&m);
    out.expect_code(9);
    let lines = out.lines();
    assert_eq!(
        lines[..3],
        ["orphans 3", "zombies 0", "init launch-init"],
        "{out}"
    );
    assert!(
        lines
            .get(3)
            .is_some_and(|l| l != "pid 1" && l.starts_with("pid ")),
        "with init, the command must not be PID 1\n{out}"
    );
    sb.assert_state_empty(&out);

    // The command killed by a signal: 128+N, through init.
    let m = App::new("initkill", "kill -KILL $$")
        .process("init = true")
        .write(&sb);
    let out = sb.run(&m);
    out.expect_code(137);
    sb.assert_state_empty(&out);

    // Without init, the command itself is PID 1.
    let m = App::new("noinit", "echo init $(cat /proc/1/comm); echo pid $$").write(&sb);
    sb.run(&m).expect_stdout("init sh\npid 1\n");
}

/// With a terminal, the command is in the terminal's foreground process group, with or without
/// `launch-init` as PID 1 (a command stopped by SIGTTOU/SIGTTIN would hang the container).
#[test]
fn init_with_a_terminal_runs_the_command_in_the_foreground() {
    need_root();
    let sb = Sandbox::new("inittty");
    let script = "[ -t 0 ] && echo TTY; \
                  read -r pid comm st ppid pgrp sid tty tpgid rest < /proc/$$/stat; \
                  [ \"$pgrp\" = \"$tpgid\" ] && echo FOREGROUND; cat /proc/1/comm; exit 6";
    for (label, init, pid1) in [
        ("with init", true, "launch-init"),
        ("without init", false, "sh"),
    ] {
        let m = App::new("inittty", script)
            .process(&format!("terminal = true\ninit = {init}"))
            .write(&sb);
        let mut r = Live::start(&sb, &["run", s(&m)]);
        r.wait_for_within("TTY", SOON);
        let out = r.finish("");
        assert_eq!(out.code(), Some(6), "{label}\n{out}");
        assert_eq!(
            out.stdout.replace('\r', ""),
            format!("TTY\nFOREGROUND\n{pid1}\n"),
            "{label}\n{out}"
        );
        sb.assert_state_empty(&out);
    }
}

// --- the launcher dies; gc ----------------------------------------------------------------------

/// The launcher SIGKILLed: its container dies within a second (parent-death signal); its state
/// dir and cgroups stay until `launch gc`, which removes them (extracted rootfs included) and
/// leaves a live container of the same state root alone.
#[test]
fn gc_cleans_after_a_killed_launcher_and_spares_live_ones() {
    need_root();
    let sb = Sandbox::new("gc");
    let (cg_dead, cg_live) = (Cgroups::new(), Cgroups::new());
    let host = Host::snapshot();
    let (dead_mark, live_mark) = (unique("gcdead"), unique("gclive"));

    let live = App::new(
        "gclive",
        &format!(": {live_mark}; echo READY; read x; echo \"live $x\""),
    )
    .limits(&cg_live);
    let live_m = sb.write("live.toml", live.toml());
    let mut live = Live::start(&sb, &["run", s(&live_m)]);
    live.wait_for_within("READY", SOON);

    let dead = App::new(
        "gcdead",
        &format!(": {dead_mark}; echo READY; while :; do sleep 0.1; done"),
    )
    .rootfs_tar()
    .limits(&cg_dead);
    let dead_m = sb.write("dead.toml", dead.toml());
    let mut dead = Live::start(&sb, &["run", s(&dead_m)]);
    dead.wait_for_within("READY", SOON);
    the_process(&dead_mark, "sh");
    let dead_instance = instance_dir(&sb, "gcdead");
    let live_instance = instance_dir(&sb, "gclive");
    let live_pid = the_process(&live_mark, "sh");

    dead.signal(Signal::SIGKILL);
    let start = Instant::now();
    let gone = processes_gone(&dead_mark, Duration::from_secs(1));
    let left = processes_with(&dead_mark);
    let out = dead.finish("");
    assert!(
        gone,
        "the container outlived its SIGKILLed launcher by {:?}: {left:?}\n{out}",
        start.elapsed()
    );
    // Leftovers stay until gc.
    assert!(
        sb.state.join(&dead_instance).exists(),
        "the dead launcher's state dir is already gone (nothing for gc to do?)\n{out}"
    );
    assert!(
        !cg_dead.children().is_empty(),
        "the dead launcher's cgroups are already gone\n{out}"
    );

    let gc = launch_soon(&sb, &["gc"]);
    gc.expect_code(0);
    assert_eq!(
        gc.stdout.lines().count(),
        1,
        "not one line per cleaned instance\n{gc}"
    );
    assert!(gc.stdout.contains(&dead_instance), "{gc}");
    assert!(!gc.stdout.contains(&live_instance), "{gc}");
    assert_eq!(
        sb.state_entries(),
        std::slice::from_ref(&live_instance),
        "gc left the dead instance or removed the live one\n{gc}"
    );
    cg_dead.assert_empty(&gc);
    assert!(
        !cg_live.children().is_empty(),
        "gc removed the live container's cgroups\n{gc}"
    );
    assert_mounts(&host.mounts, &gc);
    assert_eq!(
        pids_with(&live_mark),
        [live_pid],
        "gc touched the live container\n{gc}"
    );

    // Nothing left to do: a second gc cleans nothing.
    let again = launch_soon(&sb, &["gc"]);
    again.expect_code(0);
    assert!(
        !again.stdout.contains(&dead_instance) && !again.stdout.contains(&live_instance),
        "{again}"
    );

    let out = live.finish("still\n");
    out.expect_stdout("READY\nlive still\n");
    host.assert_clean(&sb, Some(&cg_live), &out);
    cg_dead.assert_empty(&out);
}

/// `launch run` collects what a SIGKILLed launcher left, and a name whose launcher is dead is
/// not "already running".
#[test]
fn run_collects_a_killed_launchers_leftovers() {
    need_root();
    let sb = Sandbox::new("autogc");
    let cg = Cgroups::new();
    let host = Host::snapshot();
    let mark = unique("autogc");
    let first = App::new(
        "autogc",
        &format!(": {mark}; echo READY; while :; do sleep 0.1; done"),
    )
    .limits(&cg)
    .write(&sb);
    let mut r = Live::start(&sb, &["run", s(&first)]);
    r.wait_for_within("READY", SOON);
    let instance = instance_dir(&sb, "autogc");
    r.signal(Signal::SIGKILL);
    let out = r.finish("");
    assert!(
        processes_gone(&mark, Duration::from_secs(1)),
        "the container outlived its SIGKILLed launcher\n{out}"
    );
    assert!(sb.state.join(&instance).exists(), "{out}");

    let second = sb.write(
        "second.toml",
        App::new("autogc", "echo second").limits(&cg).toml(),
    );
    let out = sb.run(&second);
    out.expect_stdout("second\n");
    host.assert_clean(&sb, Some(&cg), &out);
}

// --- ps, exec, stop -----------------------------------------------------------------------------

/// `ps` (JSON and text), `exec` and `stop` against a running container, by its name and by its
/// instance name; then `ps` no longer lists it and `stop`/`exec` of it or of unknown names
/// exit 2.
#[test]
fn ps_exec_and_stop_a_running_container() {
    need_root();
    let sb = Sandbox::new("ps");
    let cg = Cgroups::new();
    let host = Host::snapshot();
    let name = unique("ps");
    let mark = unique("psmark");
    let app = App::new(
        &name,
        &format!(": {mark}; trap 'echo bye; exit 0' TERM; echo READY; while :; do sleep 0.1; done"),
    )
    .top("hostname = \"psbox\"")
    .limits(&cg);
    let m = app.write(&sb);
    let started = now_secs();
    let mut r = Live::start(&sb, &["run", s(&m)]);
    r.wait_for_within("READY", SOON);
    let cpid = the_process(&mark, "sh");

    // ps --format json
    let list = ps_json(&sb);
    assert_eq!(list.len(), 1, "{list:#?}");
    let e = &list[0];
    let instance = e["instance"].as_str().unwrap_or_default().to_string();
    assert_eq!(e["name"], name.as_str(), "{e:#}");
    assert!(is_instance_of(&instance, &name), "{e:#}");
    assert_eq!(instance, instance_dir(&sb, &name), "{e:#}");
    // The host sees one file in the state directory, the journal (the state is in it), and no
    // mount: the container's root is mounted on the directory in the container's namespace only.
    let dir = sb.state.join(&instance);
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files, ["journal"], "{}", dir.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(dir.to_str().unwrap()),
        "{} is a mount point on the host\n{mountinfo}",
        dir.display()
    );
    assert_eq!(
        e["pid"].as_i64(),
        Some(cpid as i64),
        "not the container's host pid {cpid}: {e:#}"
    );
    assert_eq!(e["launcher_pid"].as_i64(), Some(r.pid() as i64), "{e:#}");
    let t0 = e["started"].as_f64().unwrap_or(0.0);
    assert!(
        t0 >= started.floor() - 1.0 && t0 <= now_secs() + 1.0,
        "started {t0} is not now ({started})\n{e:#}"
    );
    assert!(
        e["uptime_seconds"]
            .as_f64()
            .is_some_and(|u| (0.0..30.0).contains(&u)),
        "{e:#}"
    );
    let manifest = e["manifest"].as_str().unwrap_or_default();
    assert!(
        Path::new(manifest) == m || Path::new(manifest) == m.canonicalize().unwrap(),
        "manifest {manifest:?} is not {}\n{e:#}",
        m.display()
    );
    assert!(e["cpu_ns"].is_u64(), "{e:#}");
    assert!(
        e["memory_bytes"].as_u64().is_some_and(|b| b > 0),
        "no memory usage from its cgroup: {e:#}"
    );

    // ps, text
    let ps = sb.launch(&["ps"]);
    ps.expect_code(0);
    let lines = ps.lines();
    assert_eq!(lines.len(), 2, "a header and one instance\n{ps}");
    let header: Vec<&str> = lines[0].split(' ').collect();
    assert_eq!(
        header,
        [
            "NAME", "PID", "UPTIME", "CPU", "MEMORY", "NETWORK", "PORTS", "MANIFEST"
        ],
        "{ps}"
    );
    let row: Vec<&str> = lines[1].split(' ').collect();
    assert_eq!(row.first(), Some(&instance.as_str()), "{ps}");
    assert_eq!(row.get(1), Some(&cpid.to_string().as_str()), "{ps}");
    assert!(
        lines[1].ends_with(s(&m)) || lines[1].contains("app.toml"),
        "{ps}"
    );

    // completion: bash offers the running containers for NAME of stop and exec, and only there
    let script = sb.launch(&["completions", "bash"]);
    script.expect_code(0);
    let script_file = sb.write("launch.bash", &script.stdout);
    let complete = |words: &[&str]| -> Vec<String> {
        let cword = words.len() - 1;
        // As bash calls it: COMP_WORDS[0] and $1 are the command as typed (here, its path).
        let quoted: Vec<String> = std::iter::once("\"$0\"".to_string())
            .chain(words[1..].iter().map(|w| format!("'{w}'")))
            .collect();
        let prev = if cword > 0 { words[cword - 1] } else { "" };
        let script = format!(
            "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={cword}\n_launch \"$0\" '{}' '{prev}'\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script_file.display(),
            quoted.join(" "),
            words[cword],
        );
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(&script)
            .arg(crate::fixtures::launch_bin())
            .env("LAUNCH_STATE_ROOT", &sb.state)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}\n{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    for words in [
        vec!["launch", "stop", ""],
        vec!["launch", "--color", "never", "stop", "--timeout", "2s", ""],
        vec!["launch", "exec", &name[..3]],
    ] {
        let offered = complete(&words);
        assert!(
            offered.contains(&name) && offered.contains(&instance),
            "{words:?}: {offered:?}"
        );
    }
    // Not NAME: the command of exec, the value of --timeout, an option.
    for words in [
        vec!["launch", "exec", name.as_str(), ""],
        vec!["launch", "stop", "--timeout", ""],
        vec!["launch", "stop", "--"],
    ] {
        let offered = complete(&words);
        assert!(!offered.contains(&name), "{words:?}: {offered:?}");
    }

    // exec, by the manifest's name and by the instance's
    for who in [name.as_str(), instance.as_str()] {
        sb.launch(&["exec", who, "--", "hostname"])
            .expect_stdout("psbox\n");
    }
    // without `--`: the command's own options stay its own
    sb.launch(&["exec", &instance, "ls", "-d", "/proc/1"])
        .expect_stdout("/proc/1\n");
    let out = sb.launch(&[
        "exec",
        &name,
        "--",
        "sh",
        "-c",
        "echo $$; cat /proc/1/cmdline; echo",
    ]);
    out.expect_code(0);
    let mut it = out.stdout.lines();
    let pid: i32 = it
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("no pid\n{out}"));
    assert!(pid > 1, "exec'd command is PID {pid}\n{out}");
    let cmdline = it.next().unwrap_or_default();
    assert!(
        cmdline.starts_with("/bin/sh\0-c\0") && cmdline.contains(&mark),
        "PID 1 seen by exec is not the container's command: {cmdline:?}\n{out}"
    );
    sb.launch(&["exec", &name, "--", "sh", "-c", "[ -t 0 ] || echo notty"])
        .expect_stdout("notty\n");
    sb.launch(&["exec", &name, "--", "sh", "-c", "exit 7"])
        .expect_code(7);
    let missing = unique("nosuchcmd");
    sb.launch(&["exec", &name, "--", &missing]).expect_code(127);
    sb.launch(&["exec", &name, "--", "/etc/passwd"])
        .expect_code(126);
    assert_eq!(
        the_process(&mark, "sh"),
        cpid,
        "exec disturbed the container"
    );

    // stop
    let start = Instant::now();
    let stop = launch_soon(&sb, &["stop", &name]);
    let took = start.elapsed();
    stop.expect_code(0);
    let entries = sb.state_entries();
    let out = r.finish("");
    assert!(
        took < Duration::from_secs(5),
        "stop took {took:?}: SIGTERM did not reach the trap\n{stop}\n{out}"
    );
    assert!(
        entries.is_empty(),
        "state left when stop returned: {entries:?}\n{out}"
    );
    assert_eq!(out.code(), Some(0), "{out}");
    assert_eq!(out.stdout, "READY\nbye\n", "{out}");
    host.assert_clean(&sb, Some(&cg), &out);

    assert_eq!(ps_json(&sb), Vec::<Value>::new());
    let ps = sb.launch(&["ps"]);
    ps.expect_code(0);
    assert!(!ps.stdout.contains(&name), "{ps}");

    let unknown = unique("unknown");
    for args in [
        vec!["stop", name.as_str()],
        vec!["stop", instance.as_str()],
        vec!["stop", unknown.as_str()],
        vec!["exec", name.as_str(), "--", "true"],
        vec!["exec", unknown.as_str(), "--", "true"],
    ] {
        let out = sb.launch(&args);
        out.expect_code(2);
        assert!(out.stderr.contains("no running container"), "{out}");
    }
}

/// `exec` joins all of the container: every namespace (compared on the host), its cgroups, its
/// user and group (through a user namespace's maps), env and cwd, and stdin.
#[test]
fn exec_joins_every_namespace_cgroup_and_identity() {
    need_root();
    let sb = Sandbox::new("exec");
    let cg = Cgroups::new();
    let host = Host::snapshot();
    let name = unique("ex");
    let (mark, emark) = (unique("exmain"), unique("exexec"));
    let greeting = unique("hi");
    let m = App::new(
        &name,
        &format!(": {mark}; echo READY; read x; echo \"main $x\""),
    )
    .top("hostname = \"exbox\"")
    .process(&format!(
        "user = 1000\ngroup = 1000\ncwd = \"/etc\"\nenv = {{ GREETING = {} }}",
        q(&greeting)
    ))
    .limits(&cg)
    .tables(
        "[namespaces]\nnet = true\ncgroup = true\n\n[namespaces.user]\n\
         uid_map = [{ inside = 0, outside = 100000, count = 1000 }, \
                    { inside = 1000, outside = 300000, count = 1 }]\n\
         gid_map = [{ inside = 0, outside = 200000, count = 65536 }]\n\n\
         [limits.rlimits]\nnofile = { soft = 123, hard = 456 }",
    )
    .write(&sb);
    let mut main = Live::start(&sb, &["run", s(&m)]);
    main.wait_for_within("READY", SOON);
    let cpid = the_process(&mark, "sh");

    let script = format!(
        ": {emark}; pwd; echo \"G=$GREETING\"; id -u; id -g; hostname; ulimit -n; ulimit -Hn; \
         echo EXEC-READY; read x; echo \"exec $x\"; exit 4"
    );
    let mut exec = Live::start(&sb, &["exec", &name, "--", "sh", "-c", &script]);
    let seen = exec.wait_for_within("EXEC-READY", SOON);
    let epid = the_process(&emark, "sh");
    let me = std::process::id() as i32;
    let mut report = Vec::new();
    for n in ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"] {
        let (c, e, h) = (ns(cpid, n), ns(epid, n), ns(me, n));
        if c != e || c == h {
            report.push(format!("{n}: container {c}, exec {e}, host {h}"));
        }
    }
    let cgroups = [
        fs::read_to_string(format!("/proc/{cpid}/cgroup")).unwrap_or_default(),
        fs::read_to_string(format!("/proc/{epid}/cgroup")).unwrap_or_default(),
    ];
    let ids = [
        (status_line(cpid, "Uid:"), status_line(epid, "Uid:")),
        (status_line(cpid, "Gid:"), status_line(epid, "Gid:")),
    ];
    let nofile = |pid: i32| {
        fs::read_to_string(format!("/proc/{pid}/limits"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap_or_default()
            .to_string()
    };
    let limits = (nofile(cpid), nofile(epid));
    let environ = fs::read(format!("/proc/{epid}/environ")).unwrap_or_default();
    let environ = String::from_utf8_lossy(&environ).into_owned();
    let exec = exec.finish("in\n");
    let out = main.finish("done\n");

    assert!(
        report.is_empty(),
        "exec is not in the container's namespaces:\n{}\n{exec}",
        report.join("\n")
    );
    assert_eq!(
        seen,
        [
            "/etc",
            &format!("G={greeting}"),
            "1000",
            "1000",
            "exbox",
            "123",
            "456"
        ],
        "{exec}"
    );
    // The container's rlimits, through `launch exec` too.
    assert!(
        limits.0.contains("123") && limits.0.contains("456"),
        "{limits:?}"
    );
    assert_eq!(limits.0, limits.1, "exec runs with other rlimits\n{exec}");
    assert_eq!(
        cgroups[0], cgroups[1],
        "exec is not in the container's cgroups\n{exec}"
    );
    assert!(
        cgroups[0].contains(&format!("{}/{name}-", cg.parent)),
        "{}",
        cgroups[0]
    );
    assert_eq!(ids[0].0, "Uid: 300000 300000 300000 300000", "{exec}");
    for (c, e) in &ids {
        assert_eq!(c, e, "exec runs as another user or group\n{exec}");
    }
    assert!(
        environ
            .split('\0')
            .any(|v| v == format!("GREETING={greeting}")),
        "exec's environment: {environ:?}\n{exec}"
    );
    exec.expect_code(4);
    assert_eq!(
        exec.stdout,
        "/etc\nG=".to_string() + &greeting + "\n1000\n1000\nexbox\n123\n456\nEXEC-READY\nexec in\n",
        "{exec}"
    );
    out.expect_stdout("READY\nmain done\n");
    host.assert_clean(&sb, Some(&cg), &out);
}

// --- one instance per name ----------------------------------------------------------------------

/// A second run of a running name is refused (125, `already running`) and disturbs nothing;
/// with `multiple = true` both run.
#[test]
fn a_name_runs_once_unless_multiple() {
    need_root();
    let sb = Sandbox::new("multi");
    let script = "echo READY; read x; echo \"got $x\"";
    let m = App::new("single", script).write(&sb);
    let mut first = Live::start(&sb, &["run", s(&m)]);
    first.wait_for_within("READY", SOON);
    let instance = instance_dir(&sb, "single");
    let second = launch_soon(&sb, &["run", s(&m)]);
    second.expect_code(125);
    assert!(second.stderr.contains("already running"), "{second}");
    assert!(!second.stdout.contains("READY"), "{second}");
    assert_eq!(sb.state_entries(), [instance], "{second}");
    first.finish("one\n").expect_stdout("READY\ngot one\n");
    sb.assert_state_empty(&second);

    let m = App::new("many", script).top("multiple = true").write(&sb);
    let mut a = Live::start(&sb, &["run", s(&m)]);
    a.wait_for_within("READY", SOON);
    let mut b = Live::start(&sb, &["run", s(&m)]);
    b.wait_for_within("READY", SOON);
    let list = ps_json(&sb);
    let mut instances: Vec<&str> = list
        .iter()
        .filter(|e| e["name"] == "many")
        .filter_map(|e| e["instance"].as_str())
        .collect();
    instances.sort();
    instances.dedup();
    assert_eq!(instances.len(), 2, "two instances of `many`: {list:#?}");
    a.finish("a\n").expect_stdout("READY\ngot a\n");
    let out = b.finish("b\n");
    out.expect_stdout("READY\ngot b\n");
    sb.assert_state_empty(&out);
}

// --- no terminal: pipes and files; a forced terminal ---------------------------------------------

fn inode(f: &impl std::os::fd::AsFd) -> u64 {
    nix::sys::stat::fstat(f.as_fd()).unwrap().st_ino
}

/// Without a terminal the container gets launch's own stdin and stdout (the same pipe, the same
/// file: no relay, no `\r`).
#[test]
fn pipes_and_redirections_without_a_terminal() {
    need_root();
    let sb = Sandbox::new("pipes");

    // echo hello | launch run (cat)
    let m = sb.write("cat.toml", App::new("cat", "").command(&["cat"]).toml());
    let mut cmd = sb.command(&["run", s(&m)]);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello\nworld\n").unwrap();
    }
    finish(child, "echo hello | launch run cat.toml".into()).expect_stdout("hello\nworld\n");

    // The container's stdin is launch's pipe itself.
    let m = sb.write(
        "fd.toml",
        App::new(
            "fd",
            "if [ -t 0 ] || [ -t 1 ] || [ -t 2 ]; then echo tty; else echo notty; fi; \
             stat -L -c %i /proc/self/fd/0; stat -L -c %i /proc/self/fd/1; echo err >&2",
        )
        .toml(),
    );
    let mut cmd = sb.command(&["run", s(&m)]);
    cmd.stdin(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let pipe_in = inode(child.stdin.as_ref().unwrap());
    let pipe_out = inode(child.stdout.as_ref().unwrap());
    let out = finish(child, "launch run fd.toml".into());
    out.expect_stdout(&format!("notty\n{pipe_in}\n{pipe_out}\n"));
    assert!(out.stderr.contains("err\n"), "{out}");

    // launch run fd.toml > file
    let file = sb.dir.join("out.txt");
    let f = fs::File::create(&file).unwrap();
    let ino = inode(&f);
    let mut cmd = sb.command(&["run", s(&m)]);
    cmd.stdout(f);
    let mut child = cmd.spawn().unwrap();
    let mut err = child.stderr.take().unwrap();
    let status = wait_timeout(&mut child, TIMEOUT, "launch run fd.toml > out.txt");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut err, &mut stderr).unwrap();
    let written = fs::read_to_string(&file).unwrap();
    assert!(status.success(), "{status}\n{stderr}");
    let stdin_ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata("/dev/null").unwrap());
    assert_eq!(
        written,
        format!("notty\n{stdin_ino}\n{ino}\n"),
        "launch run > file\n--- stderr ---\n{stderr}"
    );
    sb.assert_state_empty(&stderr);
}

/// `terminal = true` gives a pty even when launch's stdin is not a terminal; all the output
/// comes through (nothing lost when the command exits) with the pty's `\r\n`.
#[test]
fn a_forced_terminal_relays_everything() {
    need_root();
    let sb = Sandbox::new("forcetty");
    let m = App::new(
        "forcetty",
        "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo TTY; tty; echo \"TERM=$TERM\"; seq 1 3000; exit 4",
    )
    .process("terminal = true")
    .write(&sb);
    let out = sb.run(&m);
    out.expect_code(4);
    assert!(out.stdout.contains("\r\n"), "no pty line endings\n{out}");
    let text = out.stdout.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"TTY"), "{out}");
    assert!(
        lines.get(1).is_some_and(|l| l.starts_with("/dev/pts/")),
        "{out}"
    );
    assert_eq!(lines.get(2), Some(&"TERM=xterm"), "{out}");
    let numbers: Vec<String> = (1..=3000).map(|n| n.to_string()).collect();
    assert_eq!(
        lines.get(3..).map(|l| l.to_vec()),
        Some(numbers.iter().map(String::as_str).collect()),
        "output lost or mangled through the terminal\n{}",
        out.stderr
    );
    sb.assert_state_empty(&out);
}

// --- what the container inherits from the launcher ---------------------------------------------

/// Changing ids clears the kernel's parent-death signal: a container whose process runs as
/// another user must die with its SIGKILLed launcher all the same (it is armed again after the
/// id change), with and without a pid namespace.
#[test]
fn a_container_running_as_a_user_dies_with_its_killed_launcher() {
    need_root();
    let sb = Sandbox::new("pdeath");
    let host = Host::snapshot();
    for (i, pid_ns) in ["true", "false"].into_iter().enumerate() {
        let mark = unique("pdeath");
        let m = App::new(
            &format!("pdeath{i}"),
            &format!(": {mark}; echo READY; while :; do sleep 0.1; done"),
        )
        .process("user = 1000\ngroup = 1000")
        .tables(&format!("[namespaces]\npid = {pid_ns}"))
        .write(&sb);
        let mut run = Live::start(&sb, &["run", s(&m)]);
        run.wait_for_within("READY", SOON);
        let pid = the_process(&mark, "sh");
        assert_eq!(status_line(pid, "Uid:"), "Uid: 1000 1000 1000 1000");
        run.signal(Signal::SIGKILL);
        let gone = processes_gone(&mark, Duration::from_secs(2));
        let left = processes_with(&mark);
        let out = run.finish("");
        assert!(
            gone,
            "pid namespace {pid_ns}: the container outlived its SIGKILLed launcher: {left:?}\n{out}"
        );
        let gc = launch_soon(&sb, &["gc"]);
        gc.expect_code(0);
    }
    let out = launch_soon(&sb, &["gc"]);
    host.assert_clean(&sb, None, &out);
}

/// No descriptor reaches the container but its standard streams: not one its caller left open
/// without close-on-exec (here fd 7 on the host's `/`, the CVE-2024-21626 class), nor the
/// launcher's own (journal, cgroup files), in the command and in `launch-init` as PID 1.
/// `preserve_fds` passes the caller's next ones on, on purpose.
#[test]
fn no_launcher_or_caller_descriptor_reaches_the_container() {
    need_root();
    let sb = Sandbox::new("fds");
    let cg = Cgroups::new();
    let host = Host::snapshot();
    let run_with_fd7 = |m: &Path| {
        let mut cmd = Command::new("/bin/sh");
        cmd.args(["-c", "exec 7</ 8</etc; exec \"$0\" run \"$1\""])
            .arg(launch_bin())
            .arg(m)
            .current_dir(&sb.dir)
            .env("LAUNCH_STATE_ROOT", &sb.state)
            .env("LAUNCH_STORE", sb.dir.join("store"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = cmd.spawn().unwrap();
        finish(child, format!("launch run {} (fds 7, 8 open)", m.display()))
    };
    // `ls` runs in a child of the shell: what it lists are the shell's descriptors.
    for (name, extra, expect) in [
        ("fdplain", "", "0\n1\n2\n"),
        ("fdlimits", "limits", "0\n1\n2\n"),
        ("fdinit", "init", "init:\n0\n1\n2\nsh:\n0\n1\n2\n"),
        ("fdkeep", "preserve", "0\n1\n2\n7\n"),
    ] {
        let script = match extra {
            "init" => "echo init:; ls /proc/1/fd; echo sh:; ls /proc/$$/fd",
            _ => "ls /proc/$$/fd",
        };
        let mut app = App::new(name, script);
        match extra {
            "limits" => app = app.limits(&cg),
            "init" => app = app.process("init = true").limits(&cg),
            "preserve" => app = app.process("preserve_fds = 5"),
            _ => {}
        }
        let out = run_with_fd7(&app.write(&sb));
        out.expect_code(0);
        // With preserve_fds = 5, descriptors 3 to 7 pass: 7 does (3 to 6 are not open), 8
        // does not.
        assert_eq!(out.stdout, expect, "{name}\n{out}");
    }
    let out = launch_soon(&sb, &["gc"]);
    host.assert_clean(&sb, Some(&cg), &out);
}

/// The session keyring of this process (keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING)).
fn session_keyring() -> i64 {
    // SAFETY: keyctl with integer arguments only.
    unsafe { libc::syscall(libc::SYS_keyctl, 0, -3, 0) }
}

/// The container gets a new session keyring, as with runc: the caller's (and the keys its login
/// put there) is not reachable from inside.
#[test]
fn the_container_has_a_session_keyring_of_its_own() {
    need_root();
    let sb = Sandbox::new("keyring");
    let host = Host::snapshot();
    let mine = session_keyring();
    assert!(
        mine > 0,
        "this test process has no session keyring ({mine})"
    );
    let script = format!(
        "python3 -c 'import ctypes; print(ctypes.CDLL(None).syscall({}, 0, -3, 0))'",
        libc::SYS_keyctl
    );
    // keyctl is one of the calls the default seccomp filter denies: the keyring is a second
    // line, tested on its own.
    let unfiltered = "[security]\nseccomp = \"unconfined\"";
    for (name, ns) in [("kr", ""), ("kruser", "[namespaces]\nuser = true")] {
        let m = App::new(name, &script)
            .tables(&format!("{ns}\n{unfiltered}"))
            .write(&sb);
        let out = sb.run(&m);
        out.expect_code(0);
        let theirs: i64 = out.stdout.trim().parse().unwrap_or(-1);
        assert!(theirs > 0, "{name}: no session keyring inside\n{out}");
        assert_ne!(
            theirs, mine,
            "{name}: the container shares the caller's session keyring\n{out}"
        );
    }
    let out = sb.launch(&["gc"]);
    host.assert_clean(&sb, None, &out);
}
