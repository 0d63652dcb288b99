//! The rootless network modes against the real kernel: pasta (Debian's `passt`) and
//! slirp4netns, run by `launch` as `nobody`.
//!
//! Each scenario runs in a child process (this test binary, one test selected) that
//! `unshare`s a network and a mount namespace first: that network namespace is "the host", with
//! an interface `h0` (192.0.2.10/24, default route via 192.0.2.1) whose other end is in an
//! "outside" namespace holding 192.0.2.1 and the test's servers. Its own mount namespace gives
//! it a /dev/net/tun node of the usual mode 0666 (this machine's is 0600, which no rootless
//! helper can open), and a private /run/netns. Nothing of the machine's own network, firewall
//! or /dev changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sched::CloneFlags;

use crate::fixtures::*;

const CHILD_ENV: &str = "LAUNCH_ROOTLESS_NET_CHILD";
const NOBODY: u32 = 65534;

/// Run `network_rootless::NAME` in a child in network and mount namespaces of its own.
fn in_world(name: &str) {
    need_root();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        &format!("network_rootless::{name}"),
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, "1");
    // SAFETY: unshare is a plain system call, fine between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sched::unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWNS)
                .map_err(std::io::Error::from)
        });
    }
    let out = cmd.output().unwrap();
    let log =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    eprintln!("{log}");
    assert!(out.status.success() && log.contains("1 passed"), "{log}");
}

fn sh(script: &str) {
    let out = Command::new("sh").args(["-ec", script]).output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// In the child: build the world. Returns false in the parent process (the scenario then does
/// nothing itself).
fn world() -> bool {
    if std::env::var_os(CHILD_ENV).is_none() {
        return false;
    }
    sh("mount --make-rprivate /
        mkdir -p /run/netns && mount -t tmpfs -o mode=0755 tmpfs /run/netns
        mount -t tmpfs -o mode=0755 tmpfs /dev/net && mknod -m 0666 /dev/net/tun c 10 200
        ip link set lo up
        ip netns add out
        ip link add h0 type veth peer name o0 netns out
        ip addr add 192.0.2.10/24 dev h0 && ip link set h0 up
        ip route add default via 192.0.2.1
        ip -n out addr add 192.0.2.1/24 dev o0
        ip -n out link set o0 up && ip -n out link set lo up");
    true
}

/// A server process, killed when dropped (a failed test must not leave it holding the
/// harness's pipes).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP server in the outside namespace: answers each connection with `peer ADDRESS\n` (the
/// address the connection came from), once. Returns when it listens.
fn outside_server(port: u16) -> Server {
    let script = format!(
        "import socket,sys\n\
         s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', {port})); s.listen(); print('listening', flush=True)\n\
         c,a=s.accept(); c.sendall(('peer %s\\n' % a[0]).encode()); c.close()\n"
    );
    let mut child = Command::new("ip")
        .args(["netns", "exec", "out", "/usr/bin/python3", "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "listening\n");
    Server(child)
}

/// A sandbox whose state root belongs to nobody, and a manifest there.
fn rootless_sandbox(tag: &str, manifest: &str) -> (Sandbox, std::path::PathBuf) {
    let sb = Sandbox::new(tag);
    nix::unistd::chown(&sb.state, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let m = sb.write("app.toml", manifest);
    std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o644)).unwrap();
    (sb, m)
}

/// `launch ARGS` as nobody, with the sandbox's state root.
fn as_nobody(sb: &Sandbox, args: &[&str]) -> Command {
    let mut c = sb.command(args);
    c.uid(NOBODY)
        .gid(NOBODY)
        .env("HOME", &sb.dir)
        .env("XDG_RUNTIME_DIR", &sb.state)
        .env("XDG_DATA_HOME", sb.dir.join("data"));
    c
}

fn manifest(mode: &str, command: &str, extra: &str) -> String {
    format!(
        "name = \"rl\"\nhostname = \"rl\"\n[rootfs]\nhost = true\nreadonly = true\n\
         [namespaces]\nuser = true\n[network]\nmode = \"{mode}\"\n{extra}\n\
         [process]\ncommand = [\"/bin/bash\", \"-c\", {}]\n\
         [[mounts]]\ntype = \"proc\"\ntarget = \"/proc\"\n",
        q(command)
    )
}

/// The pids of processes named `name` run by nobody in this test's network namespace (the
/// scenarios run at once, each in a namespace of its own).
fn helpers(name: &str) -> Vec<i32> {
    let mine = std::fs::read_link("/proc/self/ns/net").unwrap();
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let nobody = status
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("65534"));
        let here = std::fs::read_link(format!("/proc/{pid}/ns/net")).ok() == Some(mine.clone());
        // Debian's pasta execs `pasta.avx2` where the CPU has AVX2, and its daemon calls
        // itself passt.
        let base = comm.trim().split('.').next().unwrap_or_default();
        let named = base == name || (name == "pasta" && base == "passt");
        if named && nobody && here {
            v.push(pid);
        }
    }
    v
}

/// Outbound TCP through pasta reaches a server outside, as the host's own address (pasta
/// speaks for the container with the host's sockets); the files say what the manifest says;
/// nothing is left after the run.
#[test]
fn pasta_connects_a_rootless_container() {
    if !world() {
        return in_world("pasta_connects_a_rootless_container");
    }
    let mut server = outside_server(9000);
    let cmd = "exec 3<>/dev/tcp/192.0.2.1/9000; cat <&3; \
               cat /etc/resolv.conf /etc/hosts; ip -4 -o addr show";
    let (sb, m) = rootless_sandbox(
        "net-pasta",
        &manifest(
            "pasta",
            cmd,
            "dns = [\"192.0.2.53\"]\ndns_search = [\"corp.example\"]\nhosts = { db = \"192.0.2.7\" }",
        ),
    );
    let out = sb.launch_with(as_nobody(&sb, &["run", m.to_str().unwrap()]), &["run"]);
    out.expect_code(0);
    assert!(out.stdout.contains("peer 192.0.2.10\n"), "{out}");
    assert!(out.stdout.contains("nameserver 192.0.2.53\n"), "{out}");
    assert!(out.stdout.contains("search corp.example\n"), "{out}");
    assert!(out.stdout.contains("192.0.2.7\tdb\n"), "{out}");
    assert!(out.stdout.contains("127.0.1.1\trl\n"), "{out}");
    // pasta gave the namespace the host's address.
    assert!(out.stdout.contains("inet 192.0.2.10/24"), "{out}");
    let _ = server.0.wait();
    assert_eq!(
        helpers("pasta"),
        Vec::<i32>::new(),
        "pasta left running\n{out}"
    );
    sb.assert_state_empty(&out);
}

/// A published port through pasta: the host side's loopback reaches the container's server.
#[test]
fn pasta_publishes_a_port() {
    if !world() {
        return in_world("pasta_publishes_a_port");
    }
    let server = "import socket\n\
                  s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                  s.bind(('0.0.0.0', 80)); s.listen(); print('ready', flush=True)\n\
                  c,a=s.accept(); d=c.recv(100); c.sendall(b'echo ' + d); c.close()\n";
    let (sb, m) = rootless_sandbox(
        "net-pasta-port",
        &manifest(
            "pasta",
            &format!("exec /usr/bin/python3 -c {}", shell_quote(server)),
            "[[ports]]\nhost = 18080\ncontainer = 80",
        ),
    );
    let mut cmd = as_nobody(&sb, &["run", m.to_str().unwrap()]);
    let mut child = cmd.spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let mut c = TcpStream::connect(("127.0.0.1", 18080)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"hi").unwrap();
    let mut got = String::new();
    c.read_to_string(&mut got).unwrap();
    assert_eq!(got, "echo hi");
    let status = wait_timeout(&mut child, TIMEOUT, "launch run");
    assert!(status.success());
    assert_eq!(helpers("pasta"), Vec::<i32>::new(), "pasta left running");
    assert!(
        TcpListener::bind(("127.0.0.1", 18080)).is_ok(),
        "the port is still taken"
    );
}

/// slirp4netns: outbound TCP reaches the outside, from the host's address; the container has
/// slirp's own address, which its /etc/hosts names.
#[test]
fn slirp_connects_a_rootless_container() {
    if !world() {
        return in_world("slirp_connects_a_rootless_container");
    }
    let mut server = outside_server(9001);
    let cmd = "exec 3<>/dev/tcp/192.0.2.1/9001; cat <&3; cat /etc/hosts; ip -4 -o addr show";
    let (sb, m) = rootless_sandbox("net-slirp", &manifest("slirp", cmd, ""));
    let out = sb.launch_with(as_nobody(&sb, &["run", m.to_str().unwrap()]), &["run"]);
    out.expect_code(0);
    assert!(out.stdout.contains("peer 192.0.2.10\n"), "{out}");
    assert!(out.stdout.contains("inet 10.0.2.100/24"), "{out}");
    assert!(out.stdout.contains("10.0.2.100\trl\n"), "{out}");
    let _ = server.0.wait();
    assert_eq!(
        helpers("slirp4netns"),
        Vec::<i32>::new(),
        "slirp4netns left running\n{out}"
    );
    sb.assert_state_empty(&out);
}

/// The launcher SIGKILLed while the container runs: `launch gc` kills the helper and removes
/// the instance.
#[test]
fn gc_after_sigkill_kills_the_helper() {
    if !world() {
        return in_world("gc_after_sigkill_kills_the_helper");
    }
    let (sb, m) = rootless_sandbox(
        "net-pasta-kill",
        &manifest("pasta", "echo up; exec sleep 60", ""),
    );
    let mut child = as_nobody(&sb, &["run", m.to_str().unwrap()])
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "up\n");
    assert_eq!(helpers("pasta").len(), 1);
    child.kill().unwrap();
    child.wait().unwrap();
    // The container (a pid namespace's init) is not killed with its launcher; gc kills it.
    // gc waits until the helper has exited.
    let out = sb.launch_with(as_nobody(&sb, &["gc"]), &["gc"]);
    out.expect_code(0);
    assert_eq!(
        helpers("pasta"),
        Vec::<i32>::new(),
        "pasta left running\n{out}"
    );
    sb.assert_state_empty(&out);
}

/// A string as one sh/bash word.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
