//! The executor: runs a [`Plan`]'s steps in order and nothing else.
//!
//! Host steps run here, in the launcher; the container steps run in the cloned process
//! ([`child`]). Every host-visible step records its undo in the journal *before* it acts and
//! pushes it on the undo stack *after*; whatever happens (failure, normal exit), the stack is
//! unwound in reverse, past undo failures, and every error is reported.

mod channel;
mod child;
mod failure;
pub mod gc;
mod init;
pub mod journal;
pub(crate) mod signals;
pub mod starting;
pub mod state;
pub mod stats;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use self::channel::{Channel, ToChild, ToParent};
pub use self::failure::Failure;
use self::failure::{StepError, failure};
use self::journal::{Entry, Journal, Undo};
use self::stats::Report;
use crate::error::{SysError, SysResult};
use crate::exit;
use crate::plan::{Action, HostAction, PID_PLACEHOLDER, Plan, Side, Step};
use crate::sys::clone::{Forked, clone3};
use crate::sys::{cgroup, net, process, pty, tar};

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Log each step to stderr as it runs.
    pub verbose: bool,
    /// Print CPU time, peak memory and peak pids from the cgroups at exit.
    pub stats: bool,
}

/// A random instance id: 8 hex digits from getrandom(2).
pub(crate) fn new_id() -> String {
    let mut b = [0u8; 4];
    // SAFETY: a valid buffer and its length.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != 4 {
        // Practically unreachable; fall back to pid and time, which are unique enough for one host.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        return format!("{:08x}", (std::process::id() << 16) ^ t);
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Log one step: `launch: step N/M side: effect`.
pub(crate) fn log_step(i: usize, total: usize, step: &Step, pid: Option<Pid>) {
    let side = match step.side() {
        Side::Host => "host",
        Side::Container => "container",
    };
    let effect = step.action.to_string();
    let effect = match pid {
        Some(p) => effect.replace(PID_PLACEHOLDER, &p.to_string()),
        None => effect,
    };
    // One write(2) per line: with an early release the launcher and the container process log
    // at the same time, and a line written in pieces would interleave with the other's.
    let line = format!("launch: step {}/{total} {side}: {effect}\n", i + 1);
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// The launcher's state during a run.
struct Run<'p> {
    plan: &'p Plan,
    opts: RunOptions,
    journal: Option<Journal>,
    undo: Vec<Undo>,
    child: Option<Pid>,
    chan: Option<Channel>,
    /// The container's cgroups, for the usage report.
    cgroups: Vec<PathBuf>,
    /// Groups it joins but does not own (v1: the shared group holding its device list).
    joined: Vec<PathBuf>,
    /// The container's pid once spawned (kept after it is reaped, for messages).
    spawned: Option<Pid>,
    /// Whether this run gives the container a terminal.
    tty: bool,
    /// The master of the container's terminal, once it sent it.
    pty: Option<std::os::fd::OwnedFd>,
    /// The state root's lock, held from the claim until the journal is locked.
    root_lock: Option<state::RootLock>,
    /// v1 `tasks` files the container process writes itself into (closed here after spawn).
    cgroup_fds: Vec<std::os::fd::OwnedFd>,
    /// The group that holds the memory limit, for the OOM verdict at exit.
    memory_group: Option<PathBuf>,
    /// The container runs its command: start-up is over (signals are forwarded, not cancelling).
    started: bool,
    /// The launcher is the subreaper of the container's processes (no pid namespace of its
    /// own): the unwinding kills those left.
    subreaper: bool,
    /// The image's layers, held in the store while the container runs.
    layers: Option<crate::image::store::Hold>,
    /// The locked `persist` directory, for the run.
    persist: Option<std::fs::File>,
    /// The container's address on its bridge, once leased.
    address: Option<std::net::Ipv4Addr>,
    /// The bridge's interface index, once made sure of (the veth goes on it without a lookup).
    bridge_index: Option<i32>,
    /// The container's network namespace, opened before its release (for `Veth`).
    net_ns: Option<crate::sys::net::link::Netns>,
}

/// Execute `plan`. Returns the exit code launch should exit with (the container's status), or
/// the failure after everything was undone.
pub fn run(plan: Plan, opts: &RunOptions) -> Result<u8, Box<Failure>> {
    // Parsing, validation and lowering are done: their code's pages go (docs/performance.md).
    crate::sys::process::drop_startup_text();
    let id = new_id();
    let plan = plan.instantiate(&id);
    let mut r = Run {
        plan: &plan,
        opts: opts.clone(),
        journal: None,
        undo: Vec::new(),
        child: None,
        chan: None,
        cgroups: Vec::new(),
        joined: Vec::new(),
        spawned: None,
        layers: None,
        persist: None,
        address: None,
        bridge_index: None,
        net_ns: None,
        tty: plan
            .spec
            .process
            .terminal
            .unwrap_or_else(|| nix::unistd::isatty(std::io::stdin()).unwrap_or(false)),
        pty: None,
        root_lock: None,
        cgroup_fds: Vec::new(),
        memory_group: None,
        started: false,
        subreaper: false,
    };
    signals::install();
    let total = plan.steps.len();
    let mut status = None;
    for (i, step) in plan.steps.iter().enumerate() {
        let Action::Host(action) = &step.action else {
            continue;
        };
        if r.opts.verbose {
            log_step(i, total, step, r.child);
        }
        // Cancelled (a signal during start-up): stop before the next step. A step that failed
        // because of the cancel (extraction stopped, the container process killed) counts as
        // cancelled too.
        let result = match signals::cancelled() {
            Some(sig) => Err(StepError::from(SysError::other(
                "start",
                None,
                format!("cancelled by signal {sig}"),
            ))),
            None => r.host_step(action, &mut status),
        };
        if let Err(e) = result {
            let cancelled = if r.started {
                None
            } else {
                signals::cancelled()
            };
            // The planned text's placeholders, as this run filled them.
            let mut values = Vec::new();
            if let Some(pid) = r.spawned {
                values.push((PID_PLACEHOLDER, pid.to_string()));
            }
            if let Some(a) = r.address {
                values.push(("{address}", a.to_string()));
            }
            let (undone, undo_errors) = r.unwind();
            return Err(Box::new(failure(
                &plan,
                e.at.unwrap_or(i),
                e.error,
                undone,
                undo_errors,
                cancelled,
                values,
            )));
        }
    }
    let code = status.unwrap_or(exit::LAUNCHER);
    let full = r.opts.stats || r.opts.verbose;
    let usage = match (&r.memory_group, full) {
        (_, true) => stats::collect(&r.cgroups),
        (Some(g), false) => stats::oom_only(g),
        (None, false) => stats::Stats::default(),
    };
    if let Some(line) = usage.oom_line(code) {
        eprintln!("{line}");
    }
    if full {
        eprintln!("{}", usage.line());
    }
    let (_, undo_errors) = r.unwind();
    for (u, e) in undo_errors {
        eprintln!("launch: warning: cleanup could not {u}: {e}");
    }
    Ok(code)
}

impl Run<'_> {
    /// Record an undo in the journal before the step that needs it.
    fn journal(&mut self, u: &Undo) -> SysResult<()> {
        self.record(&Entry::Undo(u.clone()))
    }

    /// Append any entry to the journal, once there is one.
    fn record(&mut self, e: &Entry) -> SysResult<()> {
        match &mut self.journal {
            Some(j) => j.append(e),
            None => Ok(()),
        }
    }

    /// The journal's form of an action's undo: the container's pid filled in.
    fn undo_of(&self, action: &HostAction) -> Option<Undo> {
        action.undo().map(|u| match u {
            crate::plan::Undo::RemoveTree { path } => Undo::RemoveTree { path },
            crate::plan::Undo::RemoveCgroup { path } => Undo::RemoveCgroup { path },
            crate::plan::Undo::KillContainer => {
                let pid = self.child.map_or(0, Pid::as_raw);
                Undo::KillProcess {
                    pid,
                    start_time: journal::start_time(pid),
                }
            }
            crate::plan::Undo::ReleaseAddress { dir, bridge } => Undo::ReleaseAddress {
                dir,
                bridge,
                subnet: match action {
                    HostAction::LeaseAddress { subnet, .. } => *subnet,
                    _ => crate::spec::Subnet::DEFAULT,
                },
                address: self.address.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
                owner: self.plan.instance.clone(),
            },
            crate::plan::Undo::UnpublishPorts { ports } => Undo::UnpublishPorts { ports },
            crate::plan::Undo::DeleteLink { name } => Undo::DeleteLink { name },
            // Filled in by the step, which knows the helper's pid.
            crate::plan::Undo::KillHelper => Undo::KillHelper {
                pid: 0,
                start_time: None,
            },
        })
    }

    /// Record `action`'s undo in the journal and the unwinding list: before the step acts
    /// when it can be undone blindly, after it when the undo needs what the step made.
    fn will_undo(&mut self, action: &HostAction) -> SysResult<()> {
        if let Some(u) = self.undo_of(action) {
            self.journal(&u)?;
            self.undo.push(u);
        }
        Ok(())
    }

    /// The container's leased address, for the steps after the lease.
    fn leased(&self, what: &str) -> SysResult<std::net::Ipv4Addr> {
        self.address
            .ok_or_else(|| SysError::other(what, None, "no address was leased for the container"))
    }

    /// The container process's network namespace.
    fn netns(&self) -> SysResult<crate::sys::net::link::Netns> {
        match self.child {
            Some(pid) => crate::sys::net::link::Netns::of_pid(pid.as_raw()),
            None => Err(SysError::other(
                "open",
                None,
                "no container process whose network namespace to connect",
            )),
        }
    }

    fn host_step(&mut self, action: &HostAction, status: &mut Option<u8>) -> Result<(), StepError> {
        use HostAction::*;
        match action {
            Release => {
                self.send_release()?;
                return self.await_start();
            }
            // The network is connected while the container process sets itself up: open its
            // namespace first (after the release it is not dumpable, and only root may open it).
            ReleaseUntilNetwork => {
                self.net_ns = Some(self.netns()?);
                return self.send_release();
            }
            ReleaseEarly => return self.send_release(),
            AwaitStart => return self.await_start(),
            PrepareProc {
                attrs,
                masked,
                readonly,
            } => self.prepare_proc(attrs, masked, readonly),
            NetworkReady => {
                let sent = self.chan.as_ref().map(|c| c.send(&ToChild::Network));
                // A container process that failed meanwhile closed the channel: its own report
                // of what failed comes in below.
                if let Some(Err(e)) = sent
                    && e.errno() != nix::errno::Errno::EPIPE
                {
                    return Err(StepError::from(e));
                }
                return self.await_start();
            }
            Wait => {
                *status = Some(self.wait()?);
                return Ok(());
            }
            Claim { name, multiple } => self.claim(name, *multiple),
            StateDir {
                path,
                mount_point,
                group,
            } => {
                if let Some(parent) = path.parent() {
                    state::make_root(parent)?;
                }
                match group {
                    None => state::mkdir(path, 0o700)?,
                    Some(g) => {
                        state::mkdir(path, 0o710)?;
                        state::chgrp(path, *g)?;
                    }
                }
                // The journal lives in the directory it undoes: recorded once it exists.
                if let Some(u) = self.undo_of(action) {
                    self.undo.push(u.clone());
                    self.journal = Some(Journal::create(path)?);
                    self.journal(&u)?;
                }
                // The journal is locked now, so gc sees this instance as alive: others may claim.
                self.root_lock = None;
                if *mount_point {
                    state::mkdir(&path.join("root"), 0o755)?;
                }
                Ok(())
            }
            CgroupParent { path } => cgroup::create_parent(path),
            CgroupEnable { path, controllers } => cgroup::enable(path, controllers),
            CgroupCreate { path } => {
                let u = self.undo_of(action);
                if let Some(u) = &u {
                    self.journal(u)?;
                }
                cgroup::create(path)?;
                self.undo.extend(u);
                self.cgroups.push(path.clone());
                let memory = self.plan.host.cgroup.hierarchy("memory");
                let l = &self.plan.spec.limits;
                let limited =
                    l.memory.is_some() || l.memory_high.is_some() || l.memory_reservation.is_some();
                if limited && memory.is_some_and(|m| path.starts_with(m)) {
                    self.memory_group = Some(path.clone());
                }
                Ok(())
            }
            CgroupWrite { path, value } => cgroup::write(path, value),
            DeviceFilter { cgroup, rules } => crate::sys::devices::apply_v2(rules, cgroup),
            DeviceList { cgroup, rules } => crate::sys::devices::apply_v1(rules, cgroup),
            DeviceParent { path, rules } => {
                crate::sys::devices::ensure_v1_group(rules, path).map(drop)
            }
            HoldLayers { store, layers } => {
                let diff_ids = layers
                    .iter()
                    .map(|d| crate::image::Digest::parse(d))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| SysError::other("hold layers", Some(store.clone()), e))?;
                // The store a plan names is input: it must exist already (a pull or import
                // made it; nothing is created at a path a plan names) and be private to us,
                // which Store::open checks; each layer must be complete (hold checks).
                if !store.is_dir() {
                    return Err(SysError::other(
                        "hold layers",
                        Some(store.clone()),
                        "no image store there: pull or import the image first",
                    )
                    .into());
                }
                let hold = crate::image::store::Store::open_existing(store)
                    .and_then(|s| s.hold(&diff_ids, &self.plan.instance))
                    .map_err(|e| {
                        SysError::other("hold layers", Some(store.clone()), e.to_string())
                    })?;
                self.layers = Some(hold);
                Ok(())
            }
            PersistDir { dir, lowers } => {
                self.persist = Some(crate::sys::overlay::take_persist_dir(dir, lowers)?);
                Ok(())
            }
            OverlayDirs { upper, work, owner } => {
                crate::sys::overlay::make_dirs(upper, work, *owner)
            }
            IdmapLayers { layers, .. } => self.idmap_layers(layers),
            NetBridge { name, subnet } => {
                let (index, _) = net::link::ensure_bridge_index(name, subnet)?;
                self.bridge_index = Some(index);
                net::link::set_route_localnet(name)?;
                net::firewall::ensure(name, *subnet).map(drop)
            }
            IpForward => net::link::enable_ip_forward().map(drop),
            LeaseAddress {
                dir,
                bridge,
                subnet,
                address,
            } => {
                let holder = net::alloc::Holder::me().ok_or_else(|| {
                    SysError::other("lease", None, "cannot read the launcher's start time")
                })?;
                let alloc = net::alloc::Allocator::new(dir, bridge, *subnet);
                // Journaled once it is known: a launcher killed in between leaves a lease
                // whose holder is dead, which the next allocation takes back.
                self.address = Some(alloc.allocate(&self.plan.instance, holder, *address)?);
                self.will_undo(action)?;
                Ok(())
            }
            PublishPorts { ports } => {
                let address = self.leased("nft")?;
                // Journaled once published: the transaction adds all or nothing, and its undo
                // removes by key, which must never take a port another container holds (the
                // reason `create element` failed).
                net::firewall::publish(ports, address)?;
                self.will_undo(action)?;
                Ok(())
            }
            NetworkFiles { dir, files } => files.write(dir, self.address),
            Veth {
                bridge,
                host,
                peer,
                subnet,
            } => {
                let address = self.leased("RTM_NEWLINK")?;
                let ns = match self.net_ns.take() {
                    Some(ns) => ns,
                    None => self.netns()?,
                };
                self.will_undo(action)?;
                net::link::attach(
                    &ns,
                    &net::link::Attachment {
                        bridge: bridge.clone(),
                        host: host.clone(),
                        peer: peer.clone(),
                        address,
                        subnet: *subnet,
                    },
                    self.bridge_index,
                )
            }
            NetHelper { argv } => self.net_helper(argv),
            ExtractRootfs {
                archive,
                compression,
                dest,
                owners,
                max_size,
            } => {
                // `dest` is the empty root mount point made with the state directory: undone
                // (emptied) even if extraction stops halfway.
                if let Some(u) = self.undo_of(action) {
                    self.journal(&u)?;
                    self.undo.push(u);
                }
                let privileged = nix::unistd::geteuid().is_root();
                tar::extract(
                    archive,
                    *compression,
                    dest,
                    &tar::ExtractOptions {
                        privileged,
                        owners: owners.clone(),
                        cancelled: Some(signals::is_cancelled),
                        max_bytes: *max_size,
                    },
                )
                .map(|_| ())
            }
            Spawn {
                flags,
                cgroup,
                subreaper,
            } => {
                if *subreaper {
                    process::set_child_subreaper()?;
                    self.subreaper = true;
                }
                self.spawn(action, flags, cgroup.as_deref())
            }
            WriteIdMap { path, value } => {
                let file = path.file_name().map(|f| f.to_string_lossy().into_owned());
                match (self.child, file) {
                    (Some(pid), Some(file)) => crate::sys::idmap::write(pid, &file, value),
                    _ => Err(SysError::other(
                        "write",
                        Some(path.clone()),
                        "no container process to map ids for",
                    )),
                }
            }
            IdMapHelper { argv } => match self.child {
                Some(pid) => crate::sys::idmap::run_helper(argv, pid),
                None => Err(SysError::other(
                    "run",
                    argv.first().map(PathBuf::from),
                    "no container process to map ids for",
                )),
            },
            CgroupLeaf { path } => cgroup::enter_leaf(path),
            CgroupOpen { path } => {
                self.cgroup_fds.push(cgroup::open_tasks(path)?);
                // A group the container joins without owning it (v1: the shared group holding
                // its device list): `launch exec` joins it too, but nothing counts in it or
                // kills what is in it.
                if let Some(dir) = path
                    .parent()
                    .filter(|d| !self.cgroups.iter().any(|c| c == d))
                {
                    self.joined.push(dir.to_path_buf());
                }
                Ok(())
            }
        }
        .map_err(StepError::from)
    }

    fn spawn(
        &mut self,
        action: &HostAction,
        flags: &[crate::plan::CloneFlag],
        cgroup: Option<&Path>,
    ) -> SysResult<()> {
        let (parent_end, child_end) = channel::pair()?;
        let cgroup_fd = match cgroup {
            Some(dir) => Some(
                nix::fcntl::open(
                    dir,
                    nix::fcntl::OFlag::O_RDONLY
                        | nix::fcntl::OFlag::O_DIRECTORY
                        | nix::fcntl::OFlag::O_CLOEXEC,
                    nix::sys::stat::Mode::empty(),
                )
                .map_err(|e| {
                    SysError::new("open", Some(dir.to_path_buf()), e)
                        .args("O_DIRECTORY, for CLONE_INTO_CGROUP")
                })?,
            ),
            None => None,
        };
        // Flush what we buffered so the child does not print it again.
        let _ = std::io::stdout().flush();
        // SAFETY: the launcher is single-threaded (src/main.rs): the one thread it starts, an archive's
        // reader while a tar root is extracted (sys/tar/pipe.rs), is joined before extraction returns.
        let forked = unsafe { clone3(flags, cgroup_fd.as_ref().map(|f| f.as_raw_fd())) }?;
        // The v2 group's descriptor was only for clone3: neither process keeps it (crun closes
        // it at once too); the child's copy would otherwise live on in init.
        drop(cgroup_fd);
        match forked {
            Forked::Child => {
                drop(parent_end);
                child::main(
                    self.plan,
                    child_end,
                    self.opts.verbose,
                    self.tty,
                    &self.cgroup_fds,
                )
            }
            Forked::Parent(pid) => {
                drop(child_end);
                // The child has its own copies; ours must not keep the files open.
                self.cgroup_fds.clear();
                self.child = Some(pid);
                self.spawned = Some(pid);
                signals::set_child(pid);
                self.chan = Some(parent_end);
                if let Some(u) = self.undo_of(action) {
                    self.undo.push(u.clone());
                    self.journal(&u)?;
                }
                let state = self.state(pid);
                self.record(&Entry::State {
                    state: Box::new(state),
                })
            }
        }
    }

    /// Start pasta or slirp4netns for the container's network namespace; journal its pid.
    fn net_helper(&mut self, argv: &[String]) -> SysResult<()> {
        let pid = self
            .child
            .ok_or_else(|| SysError::other("start", None, "no container process to connect"))?;
        let argv: Vec<String> = argv
            .iter()
            .map(|a| a.replace(crate::plan::PID_PLACEHOLDER, &pid.to_string()))
            .collect();
        let helper = net::helper::start(&argv, &self.plan.state_dir())?;
        let u = Undo::KillHelper {
            pid: helper,
            start_time: journal::start_time(helper),
        };
        self.journal(&u)?;
        self.undo.push(u);
        Ok(())
    }

    /// The container process, its channel, and its namespace `kind` opened
    /// (`/proc/PID/ns/KIND`), for host work done on its behalf (`op`, for errors).
    fn child_ns(&self, op: &str, kind: &str) -> SysResult<(Pid, &Channel, std::fs::File)> {
        let (Some(pid), Some(chan)) = (self.child, self.chan.as_ref()) else {
            return Err(SysError::other(op, None, "no container process"));
        };
        let ns = PathBuf::from(format!("/proc/{pid}/ns/{kind}"));
        let file =
            std::fs::File::open(&ns).map_err(|e| SysError::io("open", Some(ns.clone()), &e))?;
        Ok((pid, chan, file))
    }

    /// Send the container process an idmapped copy of each layer, seen through its user
    /// namespace (whose maps are written by now).
    fn idmap_layers(&self, layers: &[PathBuf]) -> SysResult<()> {
        let (_, chan, userns) = self.child_ns("idmap layers", "user")?;
        for layer in layers {
            let tree = crate::sys::overlay::idmapped_copy(layer, &userns)?;
            chan.send_with(&ToChild::Layer, Some(tree.as_raw_fd()))?;
        }
        Ok(())
    }

    /// Make the container's /proc on this side (crate::sys::procfs) and send it, or the word
    /// that this kernel cannot, to the container process, which is building its root
    /// meanwhile. A container process that failed meanwhile closed the channel: its own report
    /// of what failed comes in at the wait for its start.
    fn prepare_proc(
        &self,
        attrs: &[crate::sys::mount::MountAttr],
        masked: &[PathBuf],
        readonly: &[PathBuf],
    ) -> SysResult<()> {
        use crate::sys::procfs::{Prepared, prepare};
        let (pid, chan, pidns) = self.child_ns("prepare /proc", "pid")?;
        let pidns = std::os::fd::OwnedFd::from(pidns);
        let aside = crate::sys::process::step_aside_from(pid.as_raw());
        let prepared = prepare(&pidns, attrs, masked, readonly);
        if let Some(allowed) = &aside {
            crate::sys::process::restore_affinity(allowed);
        }
        let sent = match prepared? {
            Prepared::Tree(tree) => chan.send_with(&ToChild::Proc, Some(tree.as_raw_fd())),
            Prepared::Unsupported(errno) => {
                if self.opts.verbose {
                    eprintln!(
                        "launch: this kernel cannot make a /proc for another pid namespace \
                         ({errno}): the container process mounts its own"
                    );
                }
                chan.send(&ToChild::NoProc)
            }
        };
        match sent {
            Err(e) if e.errno() != nix::errno::Errno::EPIPE => Err(e),
            _ => Ok(()),
        }
    }

    /// Let the child go on, then wait for its verdict: a failed step, or end-of-file because its
    /// end of the channel closed on execve (the command runs). On the way, a terminal's master.
    /// Send the go-ahead to the container process.
    fn send_release(&mut self) -> Result<(), StepError> {
        let chan = self
            .chan
            .as_ref()
            .ok_or_else(|| SysError::other("release", None, "no container process"))?;
        chan.send(&ToChild::Release)?;
        chan.wake()?;
        Ok(())
    }

    /// Wait until the container process runs its command (or reports what failed).
    fn await_start(&mut self) -> Result<(), StepError> {
        let chan = self
            .chan
            .as_ref()
            .ok_or_else(|| SysError::other("release", None, "no container process"))?;
        loop {
            // A signal interrupts the wait. A cancel before the container's execve (nothing to
            // read yet) kills it and undoes everything; one that finds the execve done already
            // is forwarded to the command below.
            if !chan.wait_ready(nix::poll::PollTimeout::NONE)? {
                if let Some(sig) = signals::cancelled() {
                    if !chan.wait_ready(nix::poll::PollTimeout::ZERO)? {
                        return Err(StepError::from(SysError::other(
                            "start",
                            None,
                            format!("cancelled by signal {sig}"),
                        )));
                    }
                }
                continue;
            }
            match chan.recv_with::<ToParent>()? {
                None => {
                    // End of file: the container exec'd its command.
                    self.started = true;
                    // Signals that came while the command was already starting go to it now.
                    for sig in signals::started() {
                        if let Some(pid) = self.child {
                            let _ = nix::sys::signal::kill(
                                pid,
                                nix::sys::signal::Signal::try_from(sig).ok(),
                            );
                        }
                    }
                    return Ok(());
                }
                Some((ToParent::Pty, fd)) => self.pty = fd,
                Some((ToParent::Failed { step, error }, _)) => {
                    return Err(StepError {
                        at: Some(step),
                        error,
                    });
                }
            }
        }
    }

    /// The Claim step: under the state root's lock, clean up after dead launchers, then refuse
    /// a second live instance of this name unless the manifest allows several.
    fn claim(&mut self, name: &str, multiple: bool) -> SysResult<()> {
        let root = &self.plan.host.state_root;
        let lock = state::lock_root(root)?;
        // One listing for both: under the lock, instances neither appear nor come alive.
        let instances = state::list(root);
        for line in gc::clean(&instances) {
            if self.opts.verbose {
                eprintln!("launch: {line}");
            }
        }
        if !multiple {
            // A start record is a launcher still bringing its image in: it claims nothing yet.
            let live = |i: &&state::Instance| i.alive && i.starting.is_none() && i.name() == name;
            if let Some(other) = instances.iter().find(live) {
                let pid = other
                    .state
                    .as_ref()
                    .map_or(String::new(), |s| format!(", pid {}", s.pid));
                return Err(SysError::other(
                    "claim",
                    Some(other.dir.clone()),
                    format!(
                        "a container named `{name}` is already running (instance {}{pid}): stop it with \
                         `launch stop {name}`, or set `multiple = true` in the manifest",
                        other.instance()
                    ),
                ));
            }
        }
        self.root_lock = Some(lock);
        Ok(())
    }

    /// What `ps`, `stop` and `exec` need to know about this run.
    fn state(&self, pid: Pid) -> state::State {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        state::State {
            name: self.plan.name.clone(),
            instance: self.plan.instance.clone(),
            manifest: self.plan.manifest.clone(),
            launcher_pid: std::process::id() as i32,
            pid: pid.as_raw(),
            started,
            cgroups: self.cgroups.clone(),
            joined: self.joined.clone(),
            stop: self.plan.spec.process.stop.clone(),
            process: self.plan.spec.process.clone(),
            security: self.plan.spec.security.clone(),
            network: state::Network {
                mode: self.plan.spec.network.mode.name().to_owned(),
                address: self.address,
                ports: self.plan.spec.network.ports.clone(),
            },
        }
    }

    fn wait(&mut self) -> SysResult<u8> {
        let pid = self
            .child
            .ok_or_else(|| SysError::other("waitid", None, "no container process"))?;
        if let Some(master) = self.pty.take() {
            // Raw mode for exactly as long as the relay runs; the guard restores the terminal.
            let _raw = pty::RawMode::enter();
            pty::relay(&master);
        }
        let status = loop {
            match waitpid(pid, None) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(SysError::new("waitpid", None, e).args(pid.to_string())),
                Ok(st) => match exit::of_status(st) {
                    Some(code) => break code,
                    None => continue,
                },
            }
        };
        // Reaped: its pid may be reused, so it must never be killed by the unwinding. Its
        // veth goes with its network namespace, which the kernel tears down (asynchronously)
        // once the last process in it is gone: deleting the link here would wait for that
        // teardown's RCU grace periods (~18 ms measured) for nothing. A namespace still held
        // (a process left without a pid namespace is killed by the unwinding) goes the same
        // way; `launch gc` still deletes it after a SIGKILLed launcher.
        self.undo
            .retain(|u| !matches!(u, Undo::KillProcess { .. } | Undo::DeleteLink { .. }));
        self.child = None;
        signals::set_child(Pid::from_raw(0));
        Ok(status)
    }

    /// Undo everything in reverse; keep going past failures.
    fn unwind(&mut self) -> (usize, Vec<(Undo, SysError)>) {
        let mut errors: Vec<(Undo, SysError)> = Vec::new();
        let n = self.undo.len();
        let state_dir = self.plan.state_dir();
        // The main process exited on its own (and was reaped): what it left behind goes first.
        if self.subreaper && self.child.is_none() {
            process::kill_children();
        }
        while let Some(u) = self.undo.pop() {
            // When something could not be undone, the state directory stays with its journal,
            // so `launch gc` tries again instead of forgetting the leftovers.
            if !errors.is_empty() && matches!(&u, Undo::RemoveTree { path } if *path == state_dir) {
                let kept = SysError::other(
                    "keep",
                    Some(state_dir.clone()),
                    "kept with its journal: `launch gc` retries what could not be undone",
                );
                errors.push((u, kept));
                continue;
            }
            let main = matches!(u, Undo::KillProcess { .. });
            if let Err(e) = u.run() {
                errors.push((u, e));
            }
            // Right after the container's main process is killed: what it left behind,
            // re-parented to us, before its cgroup and root are removed.
            if main && self.subreaper {
                process::kill_children();
            }
        }
        signals::set_child(Pid::from_raw(0));
        (n, errors)
    }
}
