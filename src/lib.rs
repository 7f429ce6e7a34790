//! # shmring
//!
//! Lock-free rings in named POSIX shared memory, for moving messages between Linux processes
//! as fast as the hardware allows, with the classic IPC transports behind the same
//! [`channel::Sender`] / [`channel::Receiver`] traits.
//!
//! ```
//! use shmring::{spsc, Config};
//! # let name = format!("doc-lib-{}", std::process::id());
//! let mut tx = spsc::Sender::create(&name, Config::default().capacity(1 << 16))?;
//! let mut rx = spsc::Receiver::open(&name)?;   // normally in another process
//! tx.send(b"hello")?;
//! assert_eq!(&*rx.recv()?, b"hello");
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! # Modules
//! * [`spsc`]: the shared-memory SPSC channel.
//! * [`mpmc`]: the shared-memory MPMC channel (any number of sender and receiver processes).
//! * [`channel`]: the traits every transport implements.
//! * [`segment`]: the OS memory (shm_open, header, liveness locks).
//! * [`ring`]: the lock-free algorithms, free of system calls.
//! * [`sync`]: the atomics shim, the futex and the wait strategies.
//! * [`trust`]: who may attach (owners of named objects, credentials of socket peers).
//! * [`transport`]: the fallback transports (pipe, FIFO, Unix sockets, POSIX and System V
//!   message queues, TCP), reached by URL through [`listen`] and [`connect`].
//!
//! # Trust model
//! A segment is shared with a process that may be buggy, dead or hostile. Control words (the
//! header, the ring positions, frame headers) are read once into locals through atomics and
//! validated before use; a value no honest peer writes is [`Error::Corrupted`], never a panic or
//! an access outside the mapping. Payload seen through a zero-copy guard is only as stable as
//! the peer is honest; [`spsc::Receiver::recv_into`] copies it out once and is the path for
//! peers you do not trust.
//!
//! Who may be a peer at all is checked when a channel is opened: a segment, FIFO or queue opened
//! by name must belong to this process's effective uid, and a Unix-socket peer must run as it,
//! unless [`Config::allow_uid`] / [`Config::allow_gid`] (or `allow_uid=` in a URL) say otherwise;
//! see [`trust`] and the README's security model.
#![warn(missing_docs)]

pub mod channel;
mod config;
mod error;
#[cfg(not(shmring_loom))]
#[doc(hidden)]
pub mod fuzzing;
pub mod ring;
pub mod segment;
mod shm;
pub mod sync;
pub mod transport;
pub mod trust;

pub use channel::{connect, listen};
pub use config::Config;
pub use error::{Error, Result};
pub use shm::mpmc;
pub use shm::spsc;
pub use sync::Wait;
pub use trust::{PeerCredentials, Trust};
