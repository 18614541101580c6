//! Questions about the files of a connection's host: whether a file exists (a snapshot's
//! overlay names, images to remove), whether two paths are one file, what a save file's
//! header says, what a new disk's source is. A local connection answers them here; a remote
//! one asks its server, which answers them with [`answer`] on its host. Each is a read:
//! nothing is written. The one change to a host's files made here, removing an image
//! (`undefine --remove-all-storage`), is [`Connection::remove_host_file`].

use super::Connection;
use super::newdisk::{BuiltDisk, ImageProbe, NewDisk};
use crate::error::{Error, Result};
use luavirt_plugin_api::savefile::{self, SaveHeader};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A question about the files of a host.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileQuery {
    /// Whether `path` exists.
    Exists {
        /// The path.
        path: String,
    },
    /// Whether `a` and `b` are the same file (compared as written when either is missing).
    SameFile {
        /// One path.
        a: String,
        /// The other.
        b: String,
    },
    /// The luavirt save header of `file`, and where its memory starts; none if it has none.
    SaveHeader {
        /// The file.
        file: String,
    },
    /// What a new disk's source is.
    Image {
        /// The path.
        path: String,
    },
}

/// The answer to a [`FileQuery`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileAnswer {
    /// Yes or no.
    Yes(bool),
    /// A save header and the offset of the memory after it.
    SaveHeader(Option<(SaveHeader, u64)>),
    /// What a new disk's source is.
    Image(ImageProbe),
}

/// Answers `q` with the files of this host.
pub fn answer(q: &FileQuery) -> Result<FileAnswer> {
    Ok(match q {
        FileQuery::Exists { path } => FileAnswer::Yes(Path::new(path).exists()),
        FileQuery::SameFile { a, b } => FileAnswer::Yes(match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => a == b,
        }),
        FileQuery::Image { path } => FileAnswer::Image(super::newdisk::probe(path)),
        FileQuery::SaveHeader { file } => {
            FileAnswer::SaveHeader(savefile::read(Path::new(file)).map_err(|source| Error::Io {
                doing: "read",
                path: file.into(),
                source,
            })?)
        }
    })
}

impl Connection {
    /// Asks `q` of this connection's host.
    fn ask_files(&self, q: FileQuery) -> Result<FileAnswer> {
        match self.client.remote_link() {
            Some(link) => link.files(q),
            None => answer(&q),
        }
    }

    /// Whether `path` exists on this connection's host.
    pub(crate) fn path_exists(&self, path: &str) -> Result<bool> {
        match self.ask_files(FileQuery::Exists { path: path.to_string() })? {
            FileAnswer::Yes(y) => Ok(y),
            other => Err(unexpected(&other)),
        }
    }

    /// Whether `a` and `b` are one file on this connection's host.
    pub(crate) fn same_file(&self, a: &str, b: &str) -> Result<bool> {
        match self.ask_files(FileQuery::SameFile { a: a.to_string(), b: b.to_string() })? {
            FileAnswer::Yes(y) => Ok(y),
            other => Err(unexpected(&other)),
        }
    }

    /// The save header of `file` on this connection's host.
    pub(crate) fn save_header(&self, file: &str) -> Result<Option<(SaveHeader, u64)>> {
        match self.ask_files(FileQuery::SaveHeader { file: file.to_string() })? {
            FileAnswer::SaveHeader(h) => Ok(h),
            other => Err(unexpected(&other)),
        }
    }
}

impl Connection {
    /// The `<disk>` element of `new`, its source looked at on this connection's host.
    pub fn build_disk(&self, new: &NewDisk) -> Result<BuiltDisk> {
        let source = match self.ask_files(FileQuery::Image { path: new.source.clone() })? {
            FileAnswer::Image(p) => p,
            other => return Err(unexpected(&other)),
        };
        new.build(&source)
    }

    /// Removes `path` on this connection's host.
    pub(crate) fn remove_host_file(&self, path: &str) -> Result<()> {
        match self.client.remote_link() {
            Some(link) => link.remove_file(path),
            None => remove_file(path),
        }
    }
}

/// Removes `path` on this host.
pub(crate) fn remove_file(path: &str) -> Result<()> {
    std::fs::remove_file(path).map_err(|source| Error::Io { doing: "remove", path: path.into(), source })
}

fn unexpected(a: &FileAnswer) -> Error {
    Error::InvalidArg(format!("a question about files was answered with {a:?}"))
}
