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
//! * [`broadcast`]: the shared-memory broadcast channel (one sender, any number of receivers,
//!   each of which sees every message).
//! * [`shm`]: the generic shared-memory channel halves ([`shm::Sender`], [`shm::Receiver`]),
//!   written once for every ring; `spsc`, `mpmc` and `broadcast` name their instantiations.
//! * [`channel`]: the traits every transport implements.
//! * [`endpoint`]: URLs naming a channel or transport, and [`listen`] / [`connect`] by URL.
//! * [`segment`]: what users need of the OS memory: removing a name, passing an anonymous
//!   segment's descriptor.
//! * [`inspect`]: read-only inspection of segments (`shmring ls`), for monitoring.
//! * [`trust`]: who may attach (owners of named objects, credentials of socket peers).
//! * `tokio` (feature `tokio`): async halves (`AsyncSender`, `AsyncReceiver`) of every ring and
//!   every transport URL, waiting on the halves' readiness fds with tokio's reactor.
//! * [`waitset`]: [`WaitSet`], one thread waiting on many channel halves (`epoll`).
//! * [`transport`]: the fallback transports (pipe, FIFO, Unix sockets, POSIX and System V
//!   message queues, TCP), reached by URL through [`endpoint`].
//!
//! The layers below are private: the ring algorithms (`ring`, free of system calls), the
//! atomics shim with the futex and the wait protocol (`sync`), the mapping and header code
//! (`segment`), and the generic channel half (`shm`). Nothing public hands out a raw pointer,
//! a forgeable reservation or an `unsafe fn`; the public API is listed in `api/shmring.txt`.
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
pub mod endpoint;
mod error;
#[cfg(not(shmring_loom))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(shmring_loom)]
#[doc(hidden)]
pub mod loom;
mod ring;
pub mod segment;

#[cfg(not(shmring_loom))]
pub mod inspect;
pub mod shm;
mod sync;
#[cfg(feature = "tokio")]
pub mod tokio;
pub mod transport;
pub mod trust;
pub mod waitset;

pub use config::Config;
pub use endpoint::{connect, listen};
#[cfg(feature = "tokio")]
pub use endpoint::{connect_async, listen_async};
pub use error::{Error, Result};
pub use shm::broadcast;
pub use shm::mpmc;
pub use shm::spsc;
pub use sync::Wait;
pub use trust::{PeerCredentials, Trust};
pub use waitset::WaitSet;
