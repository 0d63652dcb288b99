//! bpf(2): load a device program and attach it to a cgroup v2 directory.
//!
//! Loading a cgroup device program needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN), which
//! launch has as root; without, the kernel says EPERM. The attachment holds a reference to the
//! program: its descriptor may be closed at once, and the program goes away with the group.
//! Since Linux 5.11 a program is charged to the memory cgroup, not RLIMIT_MEMLOCK (crun raises
//! that limit for older kernels; launch needs 5.12 for mount_setattr anyway).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;

use super::bpf::Insn;
use crate::error::{SysError, SysResult};

// linux/bpf.h
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The license string given to the kernel. It only decides whether the program may call
/// GPL-only helpers, and this one calls none (runc says "Apache", crun "GPL").
pub const LICENSE: &str = "Apache-2.0";

/// The program's name, as `bpftool prog` shows it (at most 15 bytes).
pub const NAME: &str = "launch_devices";

/// The head of `union bpf_attr` as BPF_PROG_LOAD reads it (up to `prog_name`); the kernel takes
/// a shorter attr as the fields it has, the rest zero.
#[repr(C)]
#[derive(Default)]
struct LoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
}

/// `union bpf_attr` as BPF_PROG_ATTACH reads it (up to `replace_bpf_fd`).
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> Result<libc::c_long, Errno> {
    // SAFETY: `attr` is a #[repr(C)] prefix of `union bpf_attr` for `cmd`, valid for its size;
    // every pointer in it points into buffers that outlive the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 { Err(Errno::last()) } else { Ok(r) }
}

/// Load `program` as a `BPF_PROG_TYPE_CGROUP_DEVICE` program. When the kernel refuses it, the
/// error carries the verifier's log.
pub fn load(program: &[Insn]) -> SysResult<OwnedFd> {
    let license = std::ffi::CString::new(LICENSE).unwrap_or_default();
    let mut name = [0u8; 16];
    name[..NAME.len()].copy_from_slice(NAME.as_bytes());
    let mut attr = LoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: program.len() as u32,
        insns: program.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        ..LoadAttr::default()
    };
    let args = format!(
        "BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, {} instructions, license {LICENSE:?}",
        program.len()
    );
    let errno = match bpf(BPF_PROG_LOAD, &mut attr) {
        // SAFETY: the kernel just returned this descriptor to us.
        Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(errno) => errno,
    };
    let err = SysError::new("bpf", None, errno).args(args);
    if errno == Errno::EPERM {
        return Err(err.with_detail(
            "loading a cgroup device program needs root (CAP_SYS_ADMIN, or CAP_BPF and CAP_NET_ADMIN)",
        ));
    }
    // Again, with the verifier's log, to say why.
    let mut log = vec![0u8; 64 * 1024];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    if let Ok(fd) = bpf(BPF_PROG_LOAD, &mut attr) {
        // Refused without a log, loaded with one: nothing else differs, keep it.
        // SAFETY: the kernel just returned this descriptor to us.
        return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
    }
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]).trim().to_owned();
    Err(if text.is_empty() {
        err
    } else {
        err.with_detail(format!("verifier: {text}"))
    })
}

/// Attach a loaded device program to the cgroup v2 directory `cgroup`, beside any others
/// (BPF_F_ALLOW_MULTI: every program of the group and of its ancestors must allow an access).
pub fn attach(program: BorrowedFd<'_>, cgroup: &Path) -> SysResult<()> {
    let dir = nix::fcntl::open(
        cgroup,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| {
        SysError::new("open", Some(cgroup.to_path_buf()), e).args("O_DIRECTORY, to attach to")
    })?;
    let mut attr = AttachAttr {
        target_fd: dir.as_raw_fd() as u32,
        attach_bpf_fd: program.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..AttachAttr::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map(|_| ()).map_err(|e| {
        let err = SysError::new("bpf", Some(cgroup.to_path_buf()), e)
            .args("BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI");
        match e {
            Errno::EBADF | Errno::ENOTDIR => {
                err.with_detail("not a cgroup v2 directory (cgroup2 mount)")
            }
            _ => err,
        }
    })
}
