//! Operation hooks: code outside the host (the Lua policies of `luavirt watch` and of every
//! command) that sees an operation before it runs, may refuse it or adjust its request, and
//! sees it after it succeeded. The host calls them, not the doors, so an operation from the
//! CLI, a script or another hook runs the same hooks, once.
//!
//! Rules the host keeps, whatever the hooks are:
//! - `before` hooks run before the operation takes the domain's lock or changes anything, so a
//!   refusal changes nothing and a hook may itself change the domain; `after` hooks run once
//!   the lock is released, and only when the operation succeeded.
//! - An operation started inside a hook runs the hooks too, up to [`MAX_HOOK_DEPTH`] levels
//!   of nesting; deeper, it is refused. (The Lua policies also never re-enter a hook that is
//!   running, so a hook cannot trigger itself.)
//! - A new operation joins by adding its [`Operation`], its [`Request`] and [`Done`], and
//!   calling [`Connection::hooks_before`] and [`Connection::hooks_after`] as the others do.

use super::Connection;
use super::migrate::MigrateRequest;
use super::snapshot::{DeleteOptions, RevertOptions, SnapshotRequest};
use crate::error::{Error, Result};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How deep operations started by hooks may nest.
pub const MAX_HOOK_DEPTH: usize = 8;

/// An operation hooks can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    /// `snapshot-create-as`, `dom:snapshot{}`.
    Snapshot,
    /// `snapshot-revert`, `snap:revert{}`.
    Revert,
    /// `snapshot-delete`, `snap:delete{}`.
    Delete,
    /// `define`, `conn:define()`.
    Define,
    /// `migrate`, `dom:migrate{}`.
    Migrate,
}

impl Operation {
    /// Every operation, in the order of their names in messages.
    pub const ALL: [Operation; 5] =
        [Operation::Snapshot, Operation::Revert, Operation::Delete, Operation::Define, Operation::Migrate];

    /// Its name in event names (`snapshot` in `snapshot:before`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Snapshot => "snapshot",
            Operation::Revert => "revert",
            Operation::Delete => "delete",
            Operation::Define => "define",
            Operation::Migrate => "migrate",
        }
    }

    /// What it is called in messages ("the migration of domain 'web1'").
    pub fn noun(self) -> &'static str {
        match self {
            Operation::Snapshot => "snapshot",
            Operation::Revert => "revert",
            Operation::Delete => "snapshot deletion",
            Operation::Define => "definition",
            Operation::Migrate => "migration",
        }
    }
}

/// What an operation is about to do; `before` hooks may change it.
pub enum Request<'a> {
    /// A snapshot to take.
    Snapshot(&'a mut SnapshotRequest),
    /// A revert to `snapshot`.
    Revert {
        /// The snapshot (not adjustable).
        snapshot: &'a str,
        /// How the domain comes back.
        options: &'a mut RevertOptions,
    },
    /// A delete of `snapshot`.
    Delete {
        /// The snapshot (not adjustable).
        snapshot: &'a str,
        /// What goes with it.
        options: &'a mut DeleteOptions,
    },
    /// A definition to write.
    Define {
        /// The domain XML (a hook may change it; it is read again, and must keep the name).
        xml: &'a mut String,
    },
    /// A migration to the connection `to`.
    Migrate {
        /// The destination's URI (not adjustable).
        to: &'a str,
        /// Which disks move and how, and the migration's options.
        request: &'a mut MigrateRequest,
    },
}

impl Request<'_> {
    /// The operation this is a request for.
    pub fn operation(&self) -> Operation {
        match self {
            Request::Snapshot(_) => Operation::Snapshot,
            Request::Revert { .. } => Operation::Revert,
            Request::Delete { .. } => Operation::Delete,
            Request::Define { .. } => Operation::Define,
            Request::Migrate { .. } => Operation::Migrate,
        }
    }
}

/// What an operation did.
pub enum Done<'a> {
    /// Snapshot `name` was taken.
    Snapshot {
        /// Its name.
        name: &'a str,
    },
    /// The domain was reverted to `snapshot`.
    Revert {
        /// The snapshot.
        snapshot: &'a str,
    },
    /// These snapshots were deleted, in order.
    Delete {
        /// Their names.
        deleted: &'a [String],
    },
    /// The domain was defined.
    Define {
        /// A new domain, not a new definition of an existing one.
        created: bool,
    },
    /// The domain moved to the connection `to`.
    Migrate {
        /// The destination's URI.
        to: &'a str,
    },
}

impl Done<'_> {
    /// The operation that did this.
    pub fn operation(&self) -> Operation {
        match self {
            Done::Snapshot { .. } => Operation::Snapshot,
            Done::Revert { .. } => Operation::Revert,
            Done::Delete { .. } => Operation::Delete,
            Done::Define { .. } => Operation::Define,
            Done::Migrate { .. } => Operation::Migrate,
        }
    }
}

/// An operation about to run, as `before` hooks see it.
pub struct Before<'a> {
    /// The connection's URI.
    pub uri: &'a str,
    /// The domain.
    pub domain: &'a str,
    /// Whether the operation only records what it would do.
    pub dry_run: bool,
    /// How many hooked operations enclose this one (0: called by a door).
    pub depth: usize,
    /// The request, which hooks may adjust.
    pub request: Request<'a>,
}

/// An operation that succeeded, as `after` hooks see it.
pub struct After<'a> {
    /// The connection's URI.
    pub uri: &'a str,
    /// The domain.
    pub domain: &'a str,
    /// Whether the operation only recorded what it would do.
    pub dry_run: bool,
    /// How many hooked operations enclose this one.
    pub depth: usize,
    /// What it did.
    pub done: Done<'a>,
}

/// A hook's refusal of an operation, or its failure (which refuses it too: a policy that
/// cannot be asked does not say yes).
#[derive(Clone, Debug)]
pub struct Veto {
    /// Where the hook is: `file:line`.
    pub by: String,
    /// Why, in the hook's words (or the error it raised).
    pub reason: String,
    /// The hook failed instead of answering.
    pub failed: bool,
}

/// Hooks for operations, as the host calls them.
pub trait Hooks {
    /// Runs the `before` hooks for the event; a veto stops the operation with its reason.
    fn before(&self, event: &mut Before<'_>) -> std::result::Result<(), Veto>;
    /// Runs the `after` hooks for the event; what fails there is theirs to report.
    fn after(&self, event: &After<'_>);
}

/// The hooks of a host, shared by every connection it opens.
#[derive(Default)]
pub struct HookRegistry {
    hooks: RefCell<Vec<Rc<dyn Hooks>>>,
    depth: Cell<usize>,
}

impl HookRegistry {
    /// Adds hooks; every connection of the host runs them from now on.
    pub fn add(&self, hooks: Rc<dyn Hooks>) {
        self.hooks.borrow_mut().push(hooks);
    }

    /// Removes every hook.
    pub fn clear(&self) {
        self.hooks.borrow_mut().clear();
    }

    /// The hooks, copied out so a hook may add or remove hooks while it runs.
    fn current(&self) -> Vec<Rc<dyn Hooks>> {
        self.hooks.borrow().clone()
    }

    /// Counts one more level of nesting while the guard lives; refuses past the bound.
    fn enter(&self, what: &str) -> Result<DepthGuard<'_>> {
        let depth = self.depth.get();
        if depth >= MAX_HOOK_DEPTH {
            return Err(Error::InvalidArg(format!(
                "{what}: operations started by hooks nest {MAX_HOOK_DEPTH} deep here; a hook that starts an operation whose hooks start another, and so on, must end somewhere: check the policies' hooks"
            )));
        }
        self.depth.set(depth + 1);
        Ok(DepthGuard(&self.depth))
    }
}

struct DepthGuard<'a>(&'a Cell<usize>);

impl Drop for DepthGuard<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

impl Connection {
    /// Runs the `before` hooks of an operation on `domain`; a veto becomes the error that
    /// stops it. The caller runs this before it locks or changes anything.
    pub(crate) fn hooks_before(&self, domain: &str, request: Request<'_>) -> Result<()> {
        let hooks = self.hooks.current();
        if hooks.is_empty() {
            return Ok(());
        }
        let op = request.operation();
        let _depth = self.hooks.enter(&format!("{} of domain '{domain}'", op.name()))?;
        let uri = self.uri.to_string();
        let mut event =
            Before { uri: &uri, domain, dry_run: self.is_dry_run(), depth: self.hooks.depth.get() - 1, request };
        for h in hooks {
            h.before(&mut event).map_err(|v| Error::Vetoed {
                operation: op.noun().to_string(),
                domain: domain.to_string(),
                by: v.by,
                reason: v.reason,
                failed: v.failed,
            })?;
        }
        Ok(())
    }

    /// Runs the `after` hooks of an operation that succeeded. The caller has released the
    /// domain's lock.
    pub(crate) fn hooks_after(&self, domain: &str, done: Done<'_>) {
        let hooks = self.hooks.current();
        if hooks.is_empty() {
            return;
        }
        let op = done.operation();
        let Ok(_depth) = self.hooks.enter(&format!("{} of domain '{domain}'", op.name())) else {
            crate::log::write(
                crate::log::Level::Warning,
                "luavirt",
                &format!("the {}:after hooks of domain '{domain}' did not run: hooks nest too deep", op.name()),
            );
            return;
        };
        let uri = self.uri.to_string();
        let event = After { uri: &uri, domain, dry_run: self.is_dry_run(), depth: self.hooks.depth.get() - 1, done };
        for h in hooks {
            h.after(&event);
        }
    }
}
