//! Addresses on a bridge's subnet, handed out to containers: the leases are a text file under a
//! directory the caller gives (the state root), read and rewritten under an flock, so two live
//! holders never get one address, and an address whose holder died comes back.
//!
//! A holder is a process known by pid *and* start time (field 22 of /proc/PID/stat): a pid
//! reused by a later process does not keep a dead holder's address.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::subnet::Subnet;
use crate::error::{SysError, SysResult};

/// The process that holds an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    /// Its pid.
    pub pid: i32,
    /// Its start time in clock ticks since boot.
    pub start_time: u64,
}

impl Holder {
    /// Process `pid` as it is now; None when there is no such process.
    pub fn of_pid(pid: i32) -> Option<Holder> {
        Some(Holder {
            pid,
            start_time: start_time(pid)?,
        })
    }

    /// The calling process.
    pub fn me() -> Option<Holder> {
        Holder::of_pid(std::process::id() as i32)
    }

    /// Whether the process still runs (the same one: same pid, same start time).
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// A process's start time (clock ticks since boot), from /proc/PID/stat.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// One recorded address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The address.
    pub address: Ipv4Addr,
    /// Who holds it.
    pub holder: Holder,
    /// What it is for (the container's name), for people reading the file and for release.
    pub owner: String,
}

impl Lease {
    fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.address, self.holder.pid, self.holder.start_time, self.owner
        )
    }

    fn parse(line: &str) -> Option<Lease> {
        let mut f = line.split(' ');
        let address = f.next()?.parse().ok()?;
        let pid = f.next()?.parse().ok()?;
        let start_time = f.next()?.parse().ok()?;
        let owner = f.next()?.to_string();
        Some(Lease {
            address,
            holder: Holder { pid, start_time },
            owner,
        })
    }
}

/// The addresses of one bridge: `DIR/BRIDGE.leases`, guarded by an flock on `DIR/BRIDGE.lock`.
#[derive(Debug, Clone)]
pub struct Allocator {
    dir: PathBuf,
    bridge: String,
    subnet: Subnet,
}

impl Allocator {
    /// The allocator of `bridge`'s `subnet`, its files under `dir`.
    pub fn new(dir: &Path, bridge: &str, subnet: Subnet) -> Allocator {
        Allocator {
            dir: dir.to_path_buf(),
            bridge: bridge.to_string(),
            subnet,
        }
    }

    /// The leases file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(format!("{}.leases", self.bridge))
    }

    /// An address for `owner`, held by `holder`: `want` if given (in the subnet, not the
    /// gateway, not held by a live holder), else the lowest free one. Leases of dead holders are
    /// dropped on the way.
    pub fn allocate(
        &self,
        owner: &str,
        holder: Holder,
        want: Option<Ipv4Addr>,
    ) -> SysResult<Ipv4Addr> {
        if owner.is_empty() || owner.contains(char::is_whitespace) {
            return Err(SysError::other(
                "allocate",
                Some(self.path()),
                format!("owner {owner:?} must be one word"),
            ));
        }
        self.update(|leases| {
            leases.retain(|l| l.holder.is_alive());
            let held = |a: Ipv4Addr| leases.iter().find(|l| l.address == a);
            let address = match want {
                Some(a) => {
                    if !self.subnet.contains(a)
                        || a == self.subnet.gateway()
                        || a == self.subnet.network()
                        || a == self.subnet.broadcast()
                    {
                        return Err(SysError::other(
                            "allocate",
                            Some(self.path()),
                            format!(
                                "{a} is not a container address in {} (gateway {})",
                                self.subnet,
                                self.subnet.gateway()
                            ),
                        ));
                    }
                    if let Some(l) = held(a) {
                        return Err(SysError::new(
                            "allocate",
                            Some(self.path()),
                            Errno::EADDRINUSE,
                        )
                        .args(a.to_string())
                        .with_detail(format!("held by {} (pid {})", l.owner, l.holder.pid)));
                    }
                    a
                }
                None => self
                    .subnet
                    .container_addresses()
                    .find(|a| held(*a).is_none())
                    .ok_or_else(|| {
                        SysError::new("allocate", Some(self.path()), Errno::EADDRNOTAVAIL)
                            .with_detail(format!(
                                "every address in {} is held by a running container",
                                self.subnet
                            ))
                    })?,
            };
            leases.push(Lease {
                address,
                holder,
                owner: owner.to_string(),
            });
            Ok(address)
        })
    }

    /// Give `address` back if `owner` holds it; false when it held nothing there.
    pub fn release(&self, address: Ipv4Addr, owner: &str) -> SysResult<bool> {
        self.update(|leases| {
            let before = leases.len();
            leases.retain(|l| !(l.address == address && l.owner == owner));
            Ok(leases.len() != before)
        })
    }

    /// The leases as recorded, live and dead.
    pub fn leases(&self) -> SysResult<Vec<Lease>> {
        let _lock = self.lock()?;
        self.read()
    }

    fn lock(&self) -> SysResult<Flock<std::fs::File>> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| SysError::io("mkdir", Some(self.dir.clone()), &e))?;
        let path = self.dir.join(format!("{}.lock", self.bridge));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| SysError::io("open", Some(path.clone()), &e).args("O_CREAT|O_WRONLY"))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| SysError::new("flock", Some(path), e).args("LOCK_EX"))
    }

    fn read(&self) -> SysResult<Vec<Lease>> {
        let path = self.path();
        match std::fs::read_to_string(&path) {
            Ok(t) => Ok(t.lines().filter_map(Lease::parse).collect()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(SysError::io("read", Some(path), &e)),
        }
    }

    /// Read, change and write back the leases under the lock (nothing is written when nothing
    /// changed). The new file replaces the old by rename, so a crash leaves one or the other,
    /// never half of one.
    ///
    /// A release must not need free space: on a full state root (no inode or block left for the
    /// new file) nothing could ever be cleaned up, since the instance directories kept for `gc`
    /// after a failed release hold the space the release needs. So when the new file cannot be
    /// written for lack of space and the change only shrinks the file, it is rewritten in
    /// place instead (one write, then a truncation, still under the lock). A launcher killed
    /// in between leaves lines of the old file after the new ones: leases it held before,
    /// which hold an address only while their holder lives.
    fn update<T>(&self, f: impl FnOnce(&mut Vec<Lease>) -> SysResult<T>) -> SysResult<T> {
        let _lock = self.lock()?;
        let before = self.read()?;
        let mut leases = before.clone();
        let out = f(&mut leases)?;
        if leases == before {
            return Ok(out);
        }
        let path = self.path();
        let tmp = self.dir.join(format!("{}.leases.tmp", self.bridge));
        let text: String = leases.iter().map(Lease::line).collect();
        let replaced = std::fs::File::create(&tmp)
            .and_then(|mut t| {
                t.write_all(text.as_bytes())?;
                t.sync_all()
            })
            .map_err(|e| SysError::io("write", Some(tmp.clone()), &e))
            .and_then(|()| {
                std::fs::rename(&tmp, &path).map_err(|e| {
                    SysError::io("rename", Some(tmp.clone()), &e).args(path.display().to_string())
                })
            });
        match replaced {
            Ok(()) => Ok(out),
            Err(e) if matches!(e.errno(), Errno::ENOSPC | Errno::EDQUOT) => {
                let old_len = std::fs::metadata(&path).map_or(0, |m| m.len());
                if text.len() as u64 > old_len {
                    return Err(e);
                }
                let _ = std::fs::remove_file(&tmp);
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|mut f| {
                        f.write_all(text.as_bytes())?;
                        f.set_len(text.len() as u64)?;
                        f.sync_all()
                    })
                    .map_err(|x| {
                        SysError::io("write", Some(path.clone()), &x)
                            .args("in place")
                            .with_detail(format!("after {e}"))
                    })?;
                Ok(out)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "launch-alloc-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn lowest_free_then_wanted_then_released() {
        let d = tmp();
        let a = Allocator::new(&d, "br", "10.1.0.0/29".parse().unwrap());
        let me = Holder::me().unwrap();
        assert_eq!(
            a.allocate("x", me, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        assert_eq!(
            a.allocate("y", me, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 3)
        );
        let w = Ipv4Addr::new(10, 1, 0, 6);
        assert_eq!(a.allocate("z", me, Some(w)).unwrap(), w);
        let e = a.allocate("z2", me, Some(w)).unwrap_err();
        assert_eq!(e.errno(), Errno::EADDRINUSE);
        assert!(e.to_string().contains("held by z"), "{e}");
        assert!(
            a.allocate("g", me, Some(Ipv4Addr::new(10, 1, 0, 1)))
                .is_err()
        );
        assert!(a.release(Ipv4Addr::new(10, 1, 0, 2), "x").unwrap());
        assert!(!a.release(Ipv4Addr::new(10, 1, 0, 2), "x").unwrap());
        assert_eq!(
            a.allocate("v", me, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        assert_eq!(a.leases().unwrap().len(), 3);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_dead_holder_or_a_reused_pid_holds_nothing() {
        let d = tmp();
        let a = Allocator::new(&d, "br", "10.1.0.0/30".parse().unwrap());
        let me = Holder::me().unwrap();
        // Only one address (10.1.0.2) in a /30.
        let reused = Holder {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!reused.is_alive());
        assert_eq!(
            a.allocate("old", reused, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        assert_eq!(
            a.allocate("new", me, None).unwrap(),
            Ipv4Addr::new(10, 1, 0, 2)
        );
        let e = a.allocate("more", me, None).unwrap_err();
        assert_eq!(e.errno(), Errno::EADDRNOTAVAIL);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
