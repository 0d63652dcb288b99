//! OCI runtime bundles (runtime-spec 1.1+): a [`crate::spec::Spec`] converts to a bundle's
//! config.json (`launch export oci`) and from one (`launch run --bundle`).
//!
//! What OCI has no field for travels in `annotations` under the keys of [`annotations`], so
//! that a bundle `launch` exported runs again under `launch` exactly as its manifest said
//! (docs/oci.md lists them with the field table).

pub mod export;
pub mod import;
mod security;

/// Annotation keys for the Spec's launch-only settings. Both directions use these constants;
/// docs/oci.md documents the values. Booleans are `"true"` or `"false"`.
pub mod annotations {
    /// `name`: the container's name (OCI's container id is chosen by whoever runs the bundle).
    pub const NAME: &str = "org.launch.name";
    /// `multiple`: several live instances of the name may run at once.
    pub const MULTIPLE: &str = "org.launch.multiple";
    /// `process.init`: PID 1 is launch's minimal init (OCI runtimes run the command as PID 1).
    pub const INIT: &str = "org.launch.init";
    /// `process.stop_signal`: canonical name, `SIGTERM`.
    pub const STOP_SIGNAL: &str = "org.launch.stop-signal";
    /// `process.stop_timeout`, in milliseconds (decimal).
    pub const STOP_TIMEOUT_MS: &str = "org.launch.stop-timeout-ms";
    /// `rootfs.pivot_root`: `"false"` means chroot (`runc run --no-pivot`; config.json cannot say).
    pub const PIVOT_ROOT: &str = "org.launch.pivot-root";
    /// `process.user` given as a name: that name (the ids are in `process.user`).
    pub const USER_NAME: &str = "org.launch.user-name";
    /// `process.terminal`: `"true"`, `"false"`, or `"auto"` (decided at run time: whether standard
    /// input is a terminal); OCI's `process.terminal` holds `false` for `"auto"`.
    pub const TERMINAL: &str = "org.launch.terminal";
    /// `namespaces.user = { map_root = true }`: `"true"` when the single-id maps in
    /// `linux.uidMappings`/`gidMappings` stand for "whoever runs it" rather than the exporter's
    /// ids (present only with a new user namespace).
    pub const MAP_ROOT: &str = "org.launch.map-root";
    /// `limits.parent`: the parent cgroup (`linux.cgroupsPath` is `/PARENT/NAME`).
    pub const CGROUP_PARENT: &str = "org.launch.cgroup-parent";
    /// `process.preserve_fds` (decimal), when not 0: `runc run --preserve-fds N` says the same.
    pub const PRESERVE_FDS: &str = "org.launch.preserve-fds";
    /// `security.capabilities`, the choice behind `process.capabilities`: `unconfined`,
    /// `default`, `list:CAP_X,CAP_Y`, or `add:...;drop:...` (`ALL` for every capability). Used on
    /// the way back only when the bundle's five sets are exactly what that choice gives.
    pub const CAPABILITIES: &str = "org.launch.capabilities";
    /// The name of a custom seccomp profile (the plan shows it; `linux.seccomp` has no name).
    pub const SECCOMP_PROFILE: &str = "org.launch.seccomp-profile";

    /// Every key, for checks that a bundle holds no `org.launch.*` key this version does not know.
    pub const ALL: &[&str] = &[
        NAME,
        MULTIPLE,
        INIT,
        STOP_SIGNAL,
        STOP_TIMEOUT_MS,
        PIVOT_ROOT,
        USER_NAME,
        TERMINAL,
        MAP_ROOT,
        CGROUP_PARENT,
        PRESERVE_FDS,
        CAPABILITIES,
        SECCOMP_PROFILE,
    ];
}
