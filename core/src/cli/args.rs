//! The command line, as clap parses it. Only shape and validation here; `run` does the work.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Hypervisor driver host with scriptable disk sets.
#[derive(Parser, Debug)]
#[command(
    name = "luavirt",
    version,
    about,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Connection URI (default: LUAVIRT_DEFAULT_URI, else qemu:///session).
    #[arg(short = 'c', long = "connect", global = true, value_name = "URI")]
    pub connect: Option<String>,
    /// Machine-readable JSON output (errors go to standard error as JSON too).
    #[arg(long, global = true)]
    pub json: bool,
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
    /// Remove a domain's definition.
    Undefine {
        /// Domain name.
        domain: String,
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
    /// List loaded drivers and the ones refused, with reasons.
    Drivers,
    /// Print or set a disk's mode: persistent, independent-persistent, independent-nonpersistent.
    DiskMode {
        /// Domain name.
        domain: String,
        /// Disk target (vda) or source path.
        disk: String,
        /// The new mode; without it, print the current one.
        mode: Option<String>,
    },
    /// Manage a domain's named disk sets.
    #[command(subcommand)]
    Diskset(DisksetCommand),
}

/// Domain and set of a disk-set command.
#[derive(Args, Debug)]
pub struct SetArgs {
    /// Domain name.
    pub domain: String,
    /// Disk set name.
    #[arg(long = "set", default_value = "selected", value_name = "NAME")]
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
