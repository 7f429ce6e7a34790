//! The one error type of the crate.
//!
//! Every variant says what happened and, in its message, what to do about it. Errors caused by
//! the other process (a bad value in shared memory, a dead peer) are ordinary values: the shared
//! memory is written by a process that may be buggy, dead or hostile, so nothing read from it
//! can panic this side.

use std::io;

/// The result type of every fallible call in the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, and what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The channel has no room now. Only `try_` calls return it; the blocking calls wait.
    #[error("the channel is full; retry later or use the blocking send")]
    Full,
    /// The channel holds no message now. Only `try_` calls return it; the blocking calls wait.
    #[error("the channel is empty; retry later or use the blocking recv")]
    Empty,
    /// A `_timeout` call ran out of time before it could complete.
    #[error("timed out")]
    Timeout,
    /// The peer closed the channel cleanly. A receiver sees this only after it has drained
    /// every message that was sent.
    #[error("the peer closed the channel")]
    Disconnected,
    /// The peer process died without closing the channel. A receiver sees this only after it
    /// has drained every message the dead peer committed.
    #[error("the peer process died; reopen the channel once a new peer is running")]
    PeerDead,
    /// A broadcast receiver of an [`Overflow::Overwrite`](crate::broadcast::Overflow) channel
    /// fell a whole ring behind the sender: `missed` messages were overwritten before it read
    /// them. Reported once; the next call returns the oldest message still in the ring.
    #[error("this receiver fell behind and {missed} messages were overwritten before it read them; the next receive continues with the oldest one still retained (read faster, or create the channel with a larger capacity or Overflow::Block)")]
    Lagged {
        /// How many messages this receiver skipped.
        missed: u64,
    },
    /// A message larger than the channel can ever hold.
    #[error("message of {size} bytes exceeds the channel's maximum of {max} bytes; raise the capacity or split the message")]
    TooLarge {
        /// The size of the rejected message.
        size: usize,
        /// The largest message the channel accepts.
        max: usize,
    },
    /// A header or ring value that cannot be valid: the peer is buggy or hostile, or the memory
    /// is not what it claims to be. The channel should be abandoned.
    #[error("shared memory is corrupted: {0}")]
    Corrupted(&'static str),
    /// The segment was made by an incompatible version, or with a layout this side cannot use.
    #[error("incompatible segment: {0}")]
    Incompatible(String),
    /// A [`Config`](crate::Config) value outside its documented range (a capacity, a slot
    /// size, a peer maximum); the message names the value and the valid range. Nothing is
    /// clamped silently: the segment is not created.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A name that cannot be used for a shared-memory segment or a transport endpoint.
    #[error("invalid name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A malformed or unsupported endpoint URL.
    #[error("invalid endpoint URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The side (sender or receiver) of this channel is already held by a live process: an
    /// SPSC channel has one of each, a broadcast channel one sender.
    #[error("the {side} side of {name:?} is held by another live process; only one {side} may attach to this channel (an SPSC channel has one of each side, a broadcast channel one sender)")]
    InUse {
        /// The segment's name.
        name: String,
        /// `"sender"` or `"receiver"`.
        side: &'static str,
    },
    /// Every sender (or receiver) place of an MPMC channel is held by a live process.
    #[error("{name:?} already has {max} live {side}s, its maximum; close one, or create the channel with a larger Config::max_{side}s")]
    TooManyPeers {
        /// The segment's name.
        name: String,
        /// `"sender"` or `"receiver"`.
        side: &'static str,
        /// The maximum recorded in the segment.
        max: u32,
    },
    /// A named object (segment, FIFO, queue) or a socket peer that this process does not trust:
    /// owned by (or running as) another user, writable by group or others, or not the kind of
    /// file its name promises. Nothing was mapped or used. The message names the owner and how
    /// to allow it on purpose (`Config::allow_uid`, `Config::allow_gid`, or `allow_uid=` /
    /// `allow_gid=` in the endpoint URL); see [`crate::trust`].
    #[error("refusing {object}: {reason}")]
    Untrusted {
        /// The object or endpoint refused.
        object: String,
        /// Its owner's uid (a socket peer's uid).
        owner: u32,
        /// Its permission bits (`None` for a socket peer).
        mode: Option<u32>,
        /// What is wrong, and how to allow it.
        reason: String,
    },
    /// An operating-system call failed; `context` names the call and the object.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path or name involved.
        context: String,
        /// The error the system returned.
        #[source]
        source: io::Error,
    },
}

impl Error {
    /// Wraps an [`io::Error`] with what was being done and to which object.
    pub fn io(context: impl Into<String>, source: impl Into<io::Error>) -> Self {
        Error::Io {
            context: context.into(),
            source: source.into(),
        }
    }

    /// Wraps the calling thread's last OS error (`errno`).
    pub(crate) fn last_os(context: impl Into<String>) -> Self {
        Self::io(context, io::Error::last_os_error())
    }

    /// The [`io::ErrorKind`] of an [`Error::Io`], to tell `NotFound` or `AlreadyExists` apart.
    pub fn io_kind(&self) -> Option<io::ErrorKind> {
        match self {
            Error::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    /// True for the errors after which the channel will never carry another message.
    pub fn is_closed(&self) -> bool {
        matches!(self, Error::Disconnected | Error::PeerDead)
    }
}

impl From<nix::Error> for Error {
    fn from(e: nix::Error) -> Self {
        Error::io("system call", io::Error::from(e))
    }
}
