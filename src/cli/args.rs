// The command line's definition, and nothing else: build.rs `include!`s this file to generate the
// completion scripts and the man page, so it may only use std and clap (no `crate::` paths, no
// inner attributes or `//!` docs).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// launch: run a container from a TOML manifest.
///
/// A manifest says where the root filesystem comes from, the limits, the namespaces, the mounts
/// and the process. `launch plan` prints the exact steps a run takes.
#[derive(Debug, Parser)]
#[command(name = "launch", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// When to colour diagnostics.
    #[arg(long, global = true, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
    /// Log each plan step to stderr as it runs (also: LAUNCH_LOG=1).
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the container MANIFEST describes (`launch MANIFEST` is the same).
    Run {
        /// The manifest.
        #[arg(required_unless_present_any = ["plan", "bundle"])]
        manifest: Option<PathBuf>,
        /// Run a plan saved with `launch plan --format json` instead, exactly as it is.
        #[arg(long, value_name = "PLAN.json", conflicts_with_all = ["manifest", "bundle"])]
        plan: Option<PathBuf>,
        /// Run the OCI runtime bundle in DIR (its config.json) instead of a manifest.
        #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
        bundle: Option<PathBuf>,
        /// At exit, print CPU time, peak memory and peak pids from the container's cgroups.
        #[arg(long)]
        stats: bool,
        /// Refuse to run unless launch.lock beside the manifest (in a bundle: DIR/launch.lock) has
        /// an entry for it that every input matches (without it, an entry is checked when there
        /// is one).
        #[arg(long, conflicts_with = "plan")]
        locked: bool,
    },
    /// Print the plan a run of MANIFEST would execute, step by step.
    Plan {
        /// The manifest (`-`: standard input).
        #[arg(required_unless_present = "bundle")]
        manifest: Option<PathBuf>,
        /// Plan the OCI runtime bundle in DIR (its config.json) instead of a manifest.
        #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
        bundle: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also show which file (and line) wrote each value: the manifest, a file it extends,
        /// or an env file.
        #[arg(long, conflicts_with = "bundle")]
        explain: bool,
    },
    /// Check MANIFEST and report every problem (exit 0 if valid, 2 if not).
    Validate {
        /// The manifest (`-`: standard input).
        #[arg(required_unless_present = "bundle")]
        manifest: Option<PathBuf>,
        /// Check the OCI runtime bundle in DIR (its config.json) instead of a manifest.
        #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
        bundle: Option<PathBuf>,
        /// Output format (`json`: machine-readable diagnostics with line and column).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Check what this host and user can run: each capability launch relies on, with a fix.
    ///
    /// With MANIFEST: whether it can run here (exit 0) or not (exit 1), and why. Without: the
    /// same for each kind of container the examples show. docs/doctor.md lists the checks.
    Doctor {
        /// The manifest to check for (default: every example kind).
        manifest: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// List the running containers, with their CPU time and memory.
    Ps {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Only the running containers' names and instances, one a line (for shell completion).
        #[arg(long, hide = true, conflicts_with = "format")]
        names: bool,
    },
    /// Stop a running container: its stop signal, then SIGKILL after its stop_timeout.
    Stop {
        /// The manifest's name (every instance of it) or one instance (`NAME-<id>`).
        name: String,
        /// Override the manifest's stop_timeout (`2s`, `500ms`).
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Run a command inside a running container (its namespaces, cgroups, user, env and cwd).
    Exec {
        /// The container's name or instance.
        name: String,
        /// The command and its arguments (after `--`, or right after NAME: everything from the
        /// command on is its own, `-l` included).
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Clean up what launchers that no longer exist left behind.
    Gc,
    /// List the images in the store (reference, digest, size, last use).
    Images,
    /// Remove an image from the store (what a running container uses stays).
    ///
    /// The name goes; its blobs and layers go too when no other image needs them and no running
    /// container uses them.
    Rmi {
        /// A reference as `launch images` lists it, or an image digest (12 hex digits or more).
        image: String,
    },
    /// Remove what no image needs from the store (never what a container uses).
    ///
    /// Blobs and layers no image and no tar root needs, tar roots whose archive is gone, and
    /// leftovers of interrupted imports.
    Prune,
    /// Bring a local image into the store (docs/images.md).
    Import {
        /// The kind of source.
        #[command(subcommand)]
        source: ImportSource,
    },
    /// Write MANIFEST in another format.
    Export {
        /// The format.
        #[command(subcommand)]
        format: ExportFormat,
    },
    /// Pull IMAGE from its registry into the image store (docs/images.md).
    ///
    /// Prints the image's manifest digest and layer count. The store is LAUNCH_STORE, else
    /// /var/lib/launch (root) or $XDG_DATA_HOME/launch. An interrupted pull resumes where it
    /// stopped.
    Pull {
        /// The image: [REGISTRY/]REPOSITORY[:TAG][@sha256:DIGEST] (`busybox`, `debian:bookworm`).
        image: String,
        /// The platform to take from a multi-platform image: OS/ARCH[/VARIANT]. Default: this
        /// machine's.
        #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
        platform: Option<String>,
    },
    /// Check credentials against REGISTRY and store them for pulls (docs/images.md).
    Login {
        /// The registry: `docker.io`, `registry.example:5000`.
        registry: String,
        /// The user name.
        #[arg(short, long)]
        username: String,
        /// The password (visible in `ps`: prefer --password-stdin).
        #[arg(short, long, conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the password from standard input (its first line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Record the digests of what MANIFEST names in launch.lock beside it (docs/environments.md).
    ///
    /// The files it extends, its env files, its tar archive, its image and layers. An entry that
    /// exists and differs is left as it is unless --update is given.
    Lock {
        /// The manifest.
        #[arg(required_unless_present = "bundle")]
        manifest: Option<PathBuf>,
        /// Lock an OCI runtime bundle instead: DIR/launch.lock records its config.json and a
        /// digest of its whole root filesystem tree.
        #[arg(long, value_name = "DIR", conflicts_with = "manifest")]
        bundle: Option<PathBuf>,
        /// Replace the manifest's entry when its inputs changed.
        #[arg(long, conflicts_with = "check")]
        update: bool,
        /// Write nothing: exit 0 when the lock is up to date, 2 (naming each change) when not.
        #[arg(long)]
        check: bool,
    },
    /// Show what changes between A and B: in the Spec (what the container is) and in the plan
    /// (what will be done to this host).
    ///
    /// Each side is a manifest, a plan saved with `launch plan --format json`, or a manifest at
    /// a git revision (`HEAD:app.toml`; `./` or `../` paths are relative to the current
    /// directory, others to the repository's top, as git reads them). Exit 0: no difference; 1:
    /// differences; 2: a side cannot be read or is invalid.
    Diff {
        /// The old side.
        a: String,
        /// The new side.
        b: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Print the manifest's JSON Schema (draft-07).
    Schema,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Print the man page (roff).
    #[command(hide = true)]
    Man,
}

/// Formats `launch export` writes.
#[derive(Debug, Subcommand)]
pub enum ExportFormat {
    /// An OCI runtime bundle: DIR/config.json and the root filesystem (docs/oci.md).
    Oci {
        /// The manifest.
        manifest: PathBuf,
        /// The bundle directory: must not exist, or be empty.
        dir: PathBuf,
    },
}

/// Local image sources `launch import` reads.
#[derive(Debug, Subcommand)]
pub enum ImportSource {
    /// An OCI image layout: a directory with oci-layout, index.json and blobs/, or a tar of one.
    Oci {
        /// The layout directory or tar.
        path: PathBuf,
        /// The reference to store it under (default: its ref name, or localhost/NAME:latest).
        #[arg(long, value_name = "REF")]
        name: Option<String>,
        /// Which image of the layout: its org.opencontainers.image.ref.name (default: the only one).
        #[arg(long, value_name = "REF_NAME")]
        select: Option<String>,
        /// The platform to take from an index, os/arch[/variant] (default: this machine's).
        #[arg(long)]
        platform: Option<String>,
    },
    /// A `docker save` or `skopeo copy ... docker-archive:` file.
    DockerArchive {
        /// The archive.
        path: PathBuf,
        /// The reference to store it under (default: its first tag, or localhost/NAME:latest).
        #[arg(long, value_name = "REF")]
        name: Option<String>,
        /// Which image of the archive, by one of its tags (default: the only one).
        #[arg(long, value_name = "TAG")]
        select: Option<String>,
    },
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people.
    Text,
    /// For programs; stable, see docs/.
    Json,
}

/// Colour choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    /// When standard error is a terminal and NO_COLOR is unset.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Shells with a completion script (generated by clap_complete in build.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// Bash.
    Bash,
    /// Zsh.
    Zsh,
    /// Fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}
