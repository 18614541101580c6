//! Live and offline migration between two QEMU connections (two state folders).
//!
//! The source and the destination each record their side as a change (`crate::intent`),
//! held by the process that runs the migration from prepare or perform until finish or
//! confirm. The destination commits by writing its commit marker (`<state>/qemu/migrations/ID`)
//! before it resumes the guest; the source, killed or not, resumes its own copy only while
//! that marker does not exist, and stops it once it does, so the guest never runs twice. Until
//! the destination's guest runs, its images stay inactive (`late-block-activate`), so the
//! source can take its shared disks back.
//!
//! Live steps: prepare starts the destination's QEMU with `-incoming defer`, creates the
//! copied and blank disks' images and exports the copied ones over NBD; perform mirrors each
//! copied disk into its export until every one is ready, moves the memory, and at the
//! switch-over (`pause-before-switchover`) ends the mirrors in step before the memory's last
//! pass; finish stops the exports, writes the marker and resumes; confirm stops the source.

mod dest;
mod source;

use luavirt_plugin_api::records::{MigrateAction, MigrateDisk};
use serde::{Deserialize, Serialize};

pub(crate) use dest::Incoming;
pub(crate) use source::Outgoing;

/// The phases of the destination's side, in order.
const IN_PHASES: &[&str] = &["begun", "images", "listening", "committed"];
/// The phases of the source's side, in order.
const OUT_PHASES: &[&str] = &["begun", "mirroring", "memory", "migrated", "confirming"];

/// The node name and job id of a copied disk's mirror at the source (at most 31 bytes).
fn mirror_node(target: &str) -> String {
    format!("lv-mig-{target}")
}

/// What the source records of the destination's commit marker: the path, when it can see it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Marker {
    /// The marker file, if the destination is on this machine.
    pub path: Option<String>,
}

impl Marker {
    /// Whether the destination committed: `Some(true)` or `Some(false)` when the marker can be
    /// seen from here, `None` when it cannot.
    fn committed(&self) -> Option<bool> {
        self.path.as_ref().map(|p| std::path::Path::new(p).exists())
    }
}

/// The disks a migration touches at the destination: copied and blank.
fn made_here(disks: &[MigrateDisk]) -> impl Iterator<Item = &MigrateDisk> {
    disks.iter().filter(|d| d.action != MigrateAction::Shared)
}
