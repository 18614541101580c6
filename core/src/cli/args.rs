//! The command line, as clap parses it. Only shape and validation here; `run` does the work.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Hypervisor driver host with scriptable disk sets.
#[derive(Parser, Debug)]
#[command(name = "luavirt", version, about, propagate_version = true)]
pub struct Cli {
    /// Connection URI (default: LUAVIRT_DEFAULT_URI, else qemu:///session). `run` takes it
    /// repeated: the script runs once on each host.
    #[arg(short = 'c', long = "connect", global = true, value_name = "URI", action = clap::ArgAction::Append)]
    pub connect: Vec<String>,
    /// Machine-readable JSON output (errors go to standard error as JSON too).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log more on standard error: -v adds info lines, -vv debug lines (every QMP message
    /// and every tool run with its arguments). Without it, LUAVIRT_LOG, else RUST_LOG, choose.
    #[arg(short = 'v', action = clap::ArgAction::Count, global = true)]
    pub verbosity: u8,
    /// Show every table cell whole (on a terminal, long cells are cut in the middle to fit).
    #[arg(long, global = true)]
    pub full: bool,
    #[command(subcommand)]
    pub command: Command,
}

/// The verbs.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List domains (running ones unless --all or --inactive).
    List {
        /// Running and shut-off domains.
        #[arg(long)]
        all: bool,
        /// Only shut-off domains.
        #[arg(long, conflicts_with = "all")]
        inactive: bool,
        /// Only names, one per line.
        #[arg(long)]
        name: bool,
    },
    /// Define (or redefine) a domain from an XML file ("-" reads standard input).
    Define {
        /// Domain XML file.
        file: PathBuf,
    },
    /// Remove a domain's definition (with --snapshots-metadata, forget its snapshots first;
    /// with --remove-all-storage or --storage, remove its disk images after).
    Undefine {
        /// Domain name.
        domain: String,
        /// Forget the domain's snapshots first (their files stay).
        #[arg(long)]
        snapshots_metadata: bool,
        /// Remove every disk image that is this domain's alone (CD-ROMs, read-only and
        /// shareable disks, images another domain uses and backing images stay).
        #[arg(long, conflicts_with = "storage")]
        remove_all_storage: bool,
        /// Remove these disks' images (targets or paths, comma-separated).
        #[arg(long, value_name = "DISKS", value_delimiter = ',')]
        storage: Vec<String>,
    },
    /// Edit a domain's XML in $VISUAL or $EDITOR (default vi), then define it; an unchanged
    /// file changes nothing.
    Edit {
        /// Domain name.
        domain: String,
    },
    /// Print facts about a domain: Id, UUID, state, CPUs, memory, disks, snapshots, disk sets.
    Dominfo {
        /// Domain name.
        domain: String,
    },
    /// Print a disk's sizes: capacity (virtual), allocation (used on the host), physical
    /// (the file's length).
    Domblkinfo {
        /// Domain name.
        domain: String,
        /// Disk target or source path.
        #[arg(required_unless_present = "all")]
        disk: Option<String>,
        /// Sizes in KiB, MiB, GiB.
        #[arg(long)]
        human: bool,
        /// Every disk, as a table.
        #[arg(long, conflicts_with = "disk")]
        all: bool,
    },
    /// Print a domain's XML.
    Dumpxml {
        /// Domain name.
        domain: String,
        /// The persistent definition even while running.
        #[arg(long)]
        inactive: bool,
    },
    /// Print a domain's state.
    Domstate {
        /// Domain name.
        domain: String,
        /// Also why: a change in progress, or one a killed luavirt left unfinished.
        #[arg(long)]
        reason: bool,
    },
    /// Move a domain to another host (a connection URI), running or shut off, choosing for
    /// each disk whether its content moves (copy), it starts empty there (blank), or the
    /// destination sees the same storage (shared, the default).
    Migrate(MigrateArgs),
    /// Save a running domain's memory to a file together with its disks (a disk set, the
    /// disks named, else every disk a snapshot takes); it then stops, or runs on with --live.
    Save {
        /// Domain name.
        domain: String,
        /// The save file.
        file: std::path::PathBuf,
        /// Keep the disks of this disk set.
        #[arg(long, value_name = "SET", conflicts_with = "diskspec")]
        disk_set: Option<String>,
        /// Keep this disk (DISK[,snapshot=external|no][,file=OVERLAY]); repeatable.
        #[arg(long, value_name = "SPEC")]
        diskspec: Vec<String>,
        /// The domain runs on after the save.
        #[arg(long)]
        live: bool,
        /// Show the progress of saving memory even when standard error is not a terminal.
        #[arg(long)]
        verbose: bool,
    },
    /// Start a domain from its save file, its saved disks back at their saved state.
    Restore {
        /// The save file.
        file: std::path::PathBuf,
        /// Leave it paused.
        #[arg(long)]
        paused: bool,
    },
    /// Abort the migration of a domain that another luavirt runs (it then puts everything
    /// back).
    Domjobabort {
        /// Domain name.
        domain: String,
    },
    /// Finish or undo a change that a killed luavirt left unfinished on a domain (every
    /// change to the domain does this first; this does only that).
    Recover {
        /// Domain name.
        domain: String,
    },
    /// List a domain's disks.
    Domblklist {
        /// Domain name.
        domain: String,
        /// Also type, device, format, sizes and backing chain.
        #[arg(long)]
        details: bool,
    },
    /// Start a domain.
    Start {
        /// Domain name.
        domain: String,
    },
    /// Stop a domain at once (like pulling the plug).
    Destroy {
        /// Domain name.
        domain: String,
    },
    /// Ask a running domain's guest to shut down (the ACPI power button); with --wait or
    /// --timeout, wait until it is shut off.
    Shutdown(ShutdownArgs),
    /// Restart a running domain's guest at once, like its reset button: the guest is not asked
    /// first (virsh calls this reset); it keeps running.
    #[command(visible_alias = "reset")]
    Reboot {
        /// Domain name.
        domain: String,
    },
    /// Pause a running domain (its vCPUs stop; memory and devices stay).
    Suspend {
        /// Domain name.
        domain: String,
    },
    /// Resume a paused domain.
    Resume {
        /// Domain name.
        domain: String,
    },
    /// Attach a disk image to a domain: live and in its definition while it runs, in its
    /// definition when shut off (or as --live/--config say).
    AttachDisk(AttachDiskArgs),
    /// Detach a disk from a domain (its image stays): live and from its definition while it
    /// runs, from its definition when shut off (or as --live/--config say).
    DetachDisk {
        /// Domain name.
        domain: String,
        /// Disk target (vdb) or source path.
        target: String,
        #[command(flatten)]
        affect: AffectArgs,
        /// Print the <disk> that would be detached; change nothing.
        #[arg(long)]
        print_xml: bool,
    },
    /// Run a Lua script with the luavirt module (arguments in `arg` and `...`); "-" reads the
    /// script from standard input, -e runs CODE.
    Run {
        /// Record what the script would change and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run CODE instead of a file (every positional argument is then the script's).
        #[arg(short = 'e', value_name = "CODE")]
        code: Option<String>,
        /// Memory the script may use, in MiB.
        #[arg(long, value_name = "MiB", default_value_t = 256)]
        max_memory: usize,
        /// How long the script may run, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        timeout: u64,
        /// The script ("-": standard input).
        #[arg(required_unless_present = "code")]
        script: Option<PathBuf>,
        /// Arguments for the script.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// An interactive Lua prompt with the luavirt module loaded, as `luavirt run` has it:
    /// each line runs at once; a statement left open waits for the next line.
    Repl {
        /// Memory the session may use, in MiB.
        #[arg(long, value_name = "MiB", default_value_t = 256)]
        max_memory: usize,
        /// How long each entry may run, in seconds (the prompt's waiting does not count).
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        timeout: u64,
    },
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write man pages (luavirt.1 and luavirt-VERB.1 for each verb) into a folder.
    Man {
        /// The folder (created if missing), e.g. /usr/local/share/man/man1.
        dir: PathBuf,
    },
    /// Run *_test.lua files (folders are searched), each with a fresh temporary host.
    Test {
        /// Memory each file may use, in MiB.
        #[arg(long, value_name = "MiB", default_value_t = 256)]
        max_memory: usize,
        /// How long each file may run, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 600)]
        timeout: u64,
        /// Test files or folders (default: the current folder).
        paths: Vec<PathBuf>,
    },
    /// Run the policies' hooks as files and domains change (long-running; `--once` applies
    /// every policy to the current state and stops).
    Watch(WatchArgs),
    /// Show the policies' hooks.
    #[command(subcommand)]
    Hooks(HooksCommand),
    /// Serve luavirt's remote protocol on standard input and output: what ssh runs on this
    /// host for a DRIVER+ssh:// connection from another. It refuses a terminal and listens on
    /// nothing; ssh is the only authentication.
    Serve {
        /// Speak the protocol on standard input and output (the only way luavirt serves).
        #[arg(long)]
        stdio: bool,
    },
    /// List loaded drivers and the ones refused, with reasons (with -c DRIVER+ssh://HOST/...,
    /// those of that host).
    Drivers,
    /// Check a driver plugin against the contract before shipping it: its descriptor, the
    /// functions of its capabilities, and with --uri how each answers on a connection.
    DriverCheck {
        /// The driver's shared object.
        path: std::path::PathBuf,
        /// A connection to open and exercise (its scheme must be the driver's).
        #[arg(long)]
        uri: Option<String>,
        /// Also define, redefine and undefine a test domain on that connection.
        #[arg(long)]
        writable: bool,
    },
    /// Print or set a disk's mode: persistent, independent-persistent, independent-nonpersistent.
    /// It is kept in the definition; on a running domain, whether snapshots take the disk
    /// applies now, whether its writes are kept at the next start.
    DiskMode {
        /// Domain name.
        domain: String,
        /// Disk target (vda) or source path.
        disk: String,
        /// The new mode; without it, print the current one.
        mode: Option<String>,
        /// Change the definition (what happens without flags).
        #[arg(long, requires = "mode")]
        config: bool,
        /// Also have the running domain use it now, with --config (refused when whether the
        /// disk's writes are kept would change: that is set at start).
        #[arg(long, requires = "mode")]
        live: bool,
    },
    /// Manage a domain's named disk sets.
    #[command(subcommand)]
    Diskset(DisksetCommand),
    /// Take a snapshot (disks chosen by --diskspec, else --disk-set, else their defaults).
    SnapshotCreateAs(SnapshotCreateArgs),
    /// Take a snapshot described by a <domainsnapshot> XML file (virsh's form; "-" reads
    /// standard input); without a file, one named after the time, as its disks' defaults say.
    SnapshotCreate {
        /// Domain name.
        domain: String,
        /// The snapshot's XML: <name>, <description>, <memory>, <disks>.
        #[arg(value_name = "FILE.xml")]
        xmlfile: Option<PathBuf>,
        /// Disks only, no memory.
        #[arg(long)]
        disk_only: bool,
        /// Keep the domain running while its memory is saved.
        #[arg(long)]
        live: bool,
        /// Stop the domain afterwards.
        #[arg(long)]
        halt: bool,
        /// Use overlay files that already exist.
        #[arg(long)]
        reuse_external: bool,
        /// Take the snapshot but keep no metadata.
        #[arg(long)]
        no_metadata: bool,
        /// All disks or none: every luavirt snapshot is so.
        #[arg(long)]
        atomic: bool,
    },
    /// Edit a snapshot's XML in $VISUAL or $EDITOR; only its description can change.
    SnapshotEdit {
        /// Domain name.
        domain: String,
        /// Snapshot name.
        snapshot: Option<String>,
        /// The current snapshot.
        #[arg(long)]
        current: bool,
    },
    /// Print a snapshot's parent.
    SnapshotParent {
        /// Domain name.
        domain: String,
        /// Snapshot name.
        snapshot: Option<String>,
        /// The current snapshot.
        #[arg(long)]
        current: bool,
    },
    /// List a domain's snapshots.
    SnapshotList {
        /// Domain name.
        domain: String,
        /// Show them as a tree.
        #[arg(long)]
        tree: bool,
        /// Add a Parent column.
        #[arg(long)]
        parent: bool,
        /// Only snapshots without a parent.
        #[arg(long)]
        roots: bool,
        /// Only snapshots without children.
        #[arg(long)]
        leaves: bool,
        /// Only the current snapshot.
        #[arg(long)]
        current: bool,
        /// Only names, one per line.
        #[arg(long)]
        name: bool,
    },
    /// Print a snapshot's XML.
    SnapshotDumpxml {
        /// Domain name.
        domain: String,
        /// Snapshot name.
        snapshot: String,
    },
    /// Print facts about a snapshot (the current one with --current).
    SnapshotInfo {
        /// Domain name.
        domain: String,
        /// Snapshot name.
        snapshot: Option<String>,
        /// The current snapshot.
        #[arg(long)]
        current: bool,
    },
    /// Print the current snapshot's XML (or name).
    SnapshotCurrent {
        /// Domain name.
        domain: String,
        /// Only its name.
        #[arg(long)]
        name: bool,
    },
    /// Revert a domain to a snapshot.
    SnapshotRevert {
        /// Domain name.
        domain: String,
        /// Snapshot name.
        snapshot: Option<String>,
        /// The current snapshot.
        #[arg(long)]
        current: bool,
        /// Running afterwards.
        #[arg(long)]
        running: bool,
        /// Paused afterwards.
        #[arg(long)]
        paused: bool,
        /// Accepted as virsh takes it; luavirt refuses no revert that --force would allow.
        #[arg(long)]
        force: bool,
    },
    /// Copy a disk to a new image while the domain runs.
    Blockcopy {
        /// Domain name.
        domain: String,
        /// Disk target or source path.
        disk: String,
        /// The copy.
        dest: String,
        /// Format of the copy (default: the disk's).
        #[arg(long)]
        format: Option<String>,
        /// Copy only the top image; the copy keeps the backing chain.
        #[arg(long)]
        shallow: bool,
        /// The copy exists already.
        #[arg(long)]
        reuse_external: bool,
        #[command(flatten)]
        wait: WaitArgs,
        /// After waiting, switch the disk to the copy.
        #[arg(long)]
        pivot: bool,
        /// After waiting, end the job and stay on the source.
        #[arg(long)]
        finish: bool,
    },
    /// Pull backing images' data into a disk (down to --base).
    Blockpull {
        /// Domain name.
        domain: String,
        /// Disk target or source path.
        disk: String,
        /// Keep this image and those below it.
        #[arg(long)]
        base: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Commit a disk's images down into a backing image.
    Blockcommit {
        /// Domain name.
        domain: String,
        /// Disk target or source path.
        disk: String,
        /// The image to commit into (default: the one below --top).
        #[arg(long)]
        base: Option<String>,
        /// The highest image to commit (default: the active image).
        #[arg(long)]
        top: Option<String>,
        /// Commit the active image, as no --top does; with a --top naming another image it is refused.
        #[arg(long)]
        active: bool,
        /// After waiting, switch the disk to --base.
        #[arg(long)]
        pivot: bool,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Show, cancel or pivot a disk's block job.
    Blockjob {
        /// Domain name.
        domain: String,
        /// Disk target or source path.
        disk: String,
        /// Show the job (the default).
        #[arg(long)]
        info: bool,
        /// Cancel the job.
        #[arg(long, conflicts_with = "pivot")]
        abort: bool,
        /// Switch the disk to the job's new image (a ready copy or active commit).
        #[arg(long)]
        pivot: bool,
    },
    /// Delete a snapshot, keeping every other snapshot's data.
    SnapshotDelete {
        /// Domain name.
        domain: String,
        /// Snapshot name.
        snapshot: Option<String>,
        /// The current snapshot.
        #[arg(long)]
        current: bool,
        /// It and all its descendants.
        #[arg(long)]
        children: bool,
        /// Only its descendants.
        #[arg(long)]
        children_only: bool,
        /// Forget it; leave its images as they are.
        #[arg(long)]
        metadata: bool,
        /// End its mirrors on the mirror.
        #[arg(long)]
        mirror_pivot: bool,
        /// End its mirrors on the source.
        #[arg(long)]
        mirror_abort: bool,
    },
}

/// Which state a device change affects (virsh's flags).
#[derive(Args, Debug, Clone, Copy)]
pub struct AffectArgs {
    /// Change the running domain.
    #[arg(long)]
    pub live: bool,
    /// Change the persistent definition.
    #[arg(long)]
    pub config: bool,
    /// The definition, and the running domain if it runs (what luavirt does without flags).
    #[arg(long, conflicts_with_all = ["live", "config", "current"])]
    pub persistent: bool,
    /// The running domain if it runs (alone: a driver that keeps one definition refuses
    /// it), else the definition.
    #[arg(long, conflicts_with_all = ["live", "config"])]
    pub current: bool,
}

/// `attach-disk`, with virsh's options.
#[derive(Args, Debug)]
pub struct AttachDiskArgs {
    /// Domain name.
    pub domain: String,
    /// The image file or block device.
    pub source: String,
    /// The target name in the guest (vdb, sdc, hdb).
    pub target: String,
    /// The hypervisor's driver for it: qemu is the one there is.
    #[arg(long, value_parser = ["qemu"])]
    pub driver: Option<String>,
    /// The image format (qcow2, raw, vmdk, ...); read from the image's header when not given.
    #[arg(long, value_name = "FORMAT")]
    pub subdriver: Option<String>,
    /// The bus (virtio, scsi, sata, ide, usb, xen); from the target's prefix when not given.
    #[arg(long, value_name = "BUS")]
    pub targetbus: Option<String>,
    /// disk (default), cdrom, floppy or lun.
    #[arg(long = "type", value_name = "TYPE")]
    pub device: Option<String>,
    /// readonly or shareable.
    #[arg(long, value_parser = ["readonly", "shareable"])]
    pub mode: Option<String>,
    /// file or block; a block device's path gives block.
    #[arg(long, value_parser = ["file", "block"])]
    pub sourcetype: Option<String>,
    /// The disk's serial number.
    #[arg(long)]
    pub serial: Option<String>,
    /// luavirt's disk mode: persistent (default), independent-persistent or
    /// independent-nonpersistent.
    #[arg(long, value_name = "MODE")]
    pub disk_mode: Option<String>,
    #[command(flatten)]
    pub affect: AffectArgs,
    /// Print the <disk> element that would be attached; change nothing.
    #[arg(long)]
    pub print_xml: bool,
}

/// `shutdown`.
#[derive(Args, Debug)]
pub struct ShutdownArgs {
    /// Domain name.
    pub domain: String,
    /// How to ask the guest: acpi (the power button) is the only way luavirt's drivers know.
    #[arg(long, value_name = "MODE", value_parser = ["acpi"])]
    pub mode: Option<String>,
    /// Wait until the domain is shut off (Ctrl-C stops waiting; the guest goes on).
    #[arg(long)]
    pub wait: bool,
    /// Wait at most this many seconds; a domain still running then is an error (or is
    /// destroyed, with --destroy).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Destroy the domain if it is still running when --timeout ends.
    #[arg(long, requires = "timeout")]
    pub destroy: bool,
}

/// How `luavirt watch` logs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per record.
    Text,
    /// One JSON object per line.
    Json,
}

/// `luavirt watch`.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// The policy folder (default: LUAVIRT_POLICY_DIR, else /etc/luavirt/policies).
    #[arg(long, value_name = "DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Apply every policy to the current state, then stop (exit 1 if a policy or hook failed).
    #[arg(long)]
    pub once: bool,
    /// Log what the hooks would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Log lines as text or as JSON objects, on standard error.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// How long a file must be quiet before its hooks run, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 250, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub debounce: u64,
    /// Memory each policy may use, in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 256)]
    pub max_memory: usize,
    /// How long each hook run may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

/// `luavirt hooks` verbs.
#[derive(Subcommand, Debug)]
pub enum HooksCommand {
    /// List every hook the policies register: file, event, line.
    List {
        /// The policy folder (default: LUAVIRT_POLICY_DIR, else /etc/luavirt/policies).
        #[arg(long, value_name = "DIR")]
        policy_dir: Option<PathBuf>,
    },
}

/// Options of the block job verbs that wait.
#[derive(Args, Debug)]
pub struct WaitArgs {
    /// Wait for the job (shows progress on a terminal; Ctrl-C cancels it).
    #[arg(long)]
    pub wait: bool,
    /// Show progress even when standard error is not a terminal.
    #[arg(long)]
    pub verbose: bool,
    /// Speed limit in MiB/s.
    #[arg(long, value_name = "MiB/s")]
    pub bandwidth: Option<u64>,
}

/// `migrate`, with virsh's options, luavirt's per-disk choices and its plan.
#[derive(Args, Debug)]
pub struct MigrateArgs {
    /// Domain name.
    pub domain: String,
    /// The destination's connection URI (another host: e.g. qemu:///session?state=DIR).
    #[arg(required_unless_present = "abort")]
    pub dest_uri: Option<String>,
    /// Keep the guest running while its memory moves.
    #[arg(long)]
    pub live: bool,
    /// Define the domain at the destination (without it, it is gone there once it stops).
    #[arg(long)]
    pub persistent: bool,
    /// Remove the definition here once the destination has the domain.
    #[arg(long)]
    pub undefine_source: bool,
    /// Leave the domain paused at the destination.
    #[arg(long, visible_alias = "suspend")]
    pub paused: bool,
    /// Disks whose content moves (targets or paths; comma-separated or repeated).
    #[arg(long, value_name = "DISKS", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub migrate_disks: Vec<String>,
    /// Copy the disks of a disk set (default: selected).
    #[arg(long, value_name = "SET", num_args = 0..=1, default_missing_value = luavirt_host::migrate::DEFAULT_MIGRATE_SET)]
    pub with_disk_set: Option<String>,
    /// Disks recreated empty at the destination (same format and size).
    #[arg(long, value_name = "DISKS", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub blank_disks: Vec<String>,
    /// Disks the destination sees as they are (a transient disk is made blank unless named
    /// here).
    #[arg(long, value_name = "DISKS", value_delimiter = ',', action = clap::ArgAction::Append)]
    pub shared_disks: Vec<String>,
    /// Copy every disk that is not shareable, read-only, empty or transient.
    #[arg(long)]
    pub copy_storage_all: bool,
    /// Where a copied or blank disk's image goes at the destination (repeatable).
    #[arg(long, value_name = "DISK=PATH")]
    pub disk_target: Vec<String>,
    /// Folder for copied and blank disks' images (default: the destination's image folder).
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<String>,
    /// Speed limit in MiB/s.
    #[arg(long, value_name = "MiB/s")]
    pub bandwidth: Option<u64>,
    /// Pause the guest if its memory has not moved after this many seconds, so that it does.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Between machines: send the memory and the copied disks through the ssh connection
    /// (OpenSSH forwards the destination's Unix sockets) instead of over TCP.
    #[arg(long, conflicts_with_all = ["listen_address", "port_range"])]
    pub tunnelled: bool,
    /// Between machines: the address the destination listens on for the memory and the
    /// copied disks, and the source connects to (default: the destination URI's host).
    #[arg(long, value_name = "ADDRESS")]
    pub listen_address: Option<String>,
    /// The TCP ports the destination may listen on (default 49152-49215).
    #[arg(long, value_name = "MIN-MAX")]
    pub port_range: Option<String>,
    /// Show the plan, disk by disk, and change nothing.
    #[arg(long)]
    pub print_plan: bool,
    /// Abort this domain's migration that another luavirt runs.
    #[arg(long, conflicts_with_all = ["dest_uri", "print_plan"])]
    pub abort: bool,
    /// Show progress even when standard error is not a terminal.
    #[arg(long)]
    pub verbose: bool,
}

/// `snapshot-create-as`, with virsh's options and luavirt's disk sets and plan.
#[derive(Args, Debug)]
pub struct SnapshotCreateArgs {
    /// Domain name.
    pub domain: String,
    /// Snapshot name (default: the time in seconds).
    #[arg(value_name = "NAME")]
    pub name_pos: Option<String>,
    /// Description.
    #[arg(value_name = "DESCRIPTION")]
    pub description_pos: Option<String>,
    /// Snapshot name.
    #[arg(long, conflicts_with = "name_pos")]
    pub name: Option<String>,
    /// Description.
    #[arg(long, conflicts_with = "description_pos")]
    pub description: Option<String>,
    /// A disk and how: disk[,snapshot=type][,driver=type][,file=name][,mirror=name] (",," is a comma).
    #[arg(long = "diskspec", value_name = "DISKSPEC")]
    pub diskspecs: Vec<String>,
    /// Take the disks of this disk set (when no --diskspec is given).
    #[arg(long, value_name = "NAME", conflicts_with = "diskspecs")]
    pub disk_set: Option<String>,
    /// Memory: [file=]name[,snapshot=type].
    #[arg(long, value_name = "MEMSPEC")]
    pub memspec: Option<String>,
    /// Disks only, no memory.
    #[arg(long)]
    pub disk_only: bool,
    /// Keep the domain running while its memory is saved.
    #[arg(long)]
    pub live: bool,
    /// Stop the domain afterwards.
    #[arg(long)]
    pub halt: bool,
    /// Use overlay files that already exist.
    #[arg(long)]
    pub reuse_external: bool,
    /// Take the snapshot but keep no metadata.
    #[arg(long)]
    pub no_metadata: bool,
    /// All disks or none: every luavirt snapshot is so (the host asks every driver for it).
    #[arg(long)]
    pub atomic: bool,
    /// Print the resolved plan and take nothing.
    #[arg(long, visible_alias = "dry-run")]
    pub print_plan: bool,
    /// Print the resolved <domainsnapshot> and take nothing.
    #[arg(long)]
    pub print_xml: bool,
    /// Show the progress of saving memory even when standard error is not a terminal.
    #[arg(long)]
    pub verbose: bool,
}

/// Domain and set of a disk-set command.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Domain name.
    pub domain: String,
    /// Disk set name.
    #[arg(long = "set", default_value = luavirt_plugin_api::domain::DEFAULT_SET, value_name = "NAME")]
    pub set: String,
}

/// Disk-set verbs.
#[derive(Subcommand, Debug)]
pub enum DisksetCommand {
    /// Add a disk (target or source path) to the set.
    Add {
        #[command(flatten)]
        set: SetArgs,
        /// Disk target (vda) or source path.
        disk: String,
    },
    /// Remove a disk from the set.
    Remove {
        #[command(flatten)]
        set: SetArgs,
        /// Disk target (vda) or source path.
        disk: String,
    },
    /// Add every disk of the domain to the set.
    AddAll {
        #[command(flatten)]
        set: SetArgs,
    },
    /// Empty the set.
    RemoveAll {
        #[command(flatten)]
        set: SetArgs,
    },
    /// Print the number of disks in the set.
    Size {
        #[command(flatten)]
        set: SetArgs,
    },
    /// List the disks in the set, one per line.
    List {
        #[command(flatten)]
        set: SetArgs,
    },
    /// Print whether a disk is in the set (yes or no).
    Contains {
        #[command(flatten)]
        set: SetArgs,
        /// Disk target (vda) or source path.
        disk: String,
    },
    /// List the names of the domain's sets that have members.
    Names {
        /// Domain name.
        domain: String,
    },
}

impl Command {
    /// The domain the verb is about, if it is about one: given by name, UUID or Id, it is
    /// looked up once, before the verb runs.
    pub fn domain_mut(&mut self) -> Option<&mut String> {
        use Command as C;
        Some(match self {
            C::Undefine { domain, .. }
            | C::Edit { domain }
            | C::Dominfo { domain }
            | C::Domblkinfo { domain, .. }
            | C::Dumpxml { domain, .. }
            | C::Domstate { domain, .. }
            | C::Save { domain, .. }
            | C::Domjobabort { domain }
            | C::Recover { domain }
            | C::Domblklist { domain, .. }
            | C::Start { domain }
            | C::Destroy { domain }
            | C::Reboot { domain }
            | C::Suspend { domain }
            | C::Resume { domain }
            | C::DetachDisk { domain, .. }
            | C::DiskMode { domain, .. }
            | C::SnapshotCreate { domain, .. }
            | C::SnapshotEdit { domain, .. }
            | C::SnapshotParent { domain, .. }
            | C::SnapshotList { domain, .. }
            | C::SnapshotDumpxml { domain, .. }
            | C::SnapshotInfo { domain, .. }
            | C::SnapshotCurrent { domain, .. }
            | C::SnapshotRevert { domain, .. }
            | C::SnapshotDelete { domain, .. }
            | C::Blockcopy { domain, .. }
            | C::Blockpull { domain, .. }
            | C::Blockcommit { domain, .. }
            | C::Blockjob { domain, .. } => domain,
            C::Migrate(a) => &mut a.domain,
            C::Shutdown(a) => &mut a.domain,
            C::AttachDisk(a) => &mut a.domain,
            C::SnapshotCreateAs(a) => &mut a.domain,
            C::Diskset(DisksetCommand::Names { domain }) => domain,
            C::Diskset(
                DisksetCommand::Add { set, .. }
                | DisksetCommand::Remove { set, .. }
                | DisksetCommand::AddAll { set }
                | DisksetCommand::RemoveAll { set }
                | DisksetCommand::Size { set }
                | DisksetCommand::List { set }
                | DisksetCommand::Contains { set, .. },
            ) => &mut set.domain,
            // list, define, restore, run, test, watch, hooks, drivers, ...: no domain.
            _ => return None,
        })
    }
}
