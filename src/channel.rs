//! The Channel: the [`Sender`] and [`Receiver`] traits that every transport implements.
//!
//! Generic code (benchmarks, the conformance suite, users' programs) is written once against
//! them and runs over the shared-memory rings or any fallback transport. Both traits are object
//! safe, so a transport chosen at run time fits in a `Box<dyn Sender>`.
//!
//! ```
//! use shmring::{spsc, Config};
//! use shmring::channel::{Receiver, Sender};
//!
//! fn pump(tx: &mut dyn Sender, rx: &mut dyn Receiver) -> shmring::Result<Vec<u8>> {
//!     tx.send(b"over any transport")?;
//!     let mut buf = Vec::new();
//!     rx.recv_into(&mut buf)?;
//!     Ok(buf)
//! }
//!
//! let name = format!("doc-channel-{}", std::process::id());
//! let mut tx = spsc::Sender::create(&name, Config::default())?;
//! let mut rx = spsc::Receiver::open(&name)?;
//! assert_eq!(pump(&mut tx, &mut rx)?, b"over any transport");
//! # Ok::<(), shmring::Error>(())
//! ```
//!
//! # Choosing a transport at run time
//! The traits say nothing about how a channel is made. [`crate::endpoint`] (above every
//! transport) turns a URL such as `shm://orders?ring=mpmc` or `unix-seqpacket://@orders` into
//! a boxed half: see [`crate::listen`] and [`crate::connect`].

use std::time::Duration;

use crate::error::Result;

/// The sending half of any transport.
pub trait Sender: Send {
    /// Sends one message, waiting while the transport is full.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Sends one message, or fails with `Error::Full` at once.
    fn try_send(&mut self, msg: &[u8]) -> Result<()>;
    /// Sends one message, waiting at most `timeout` (then `Error::Timeout`).
    fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<()>;
    /// The largest message this transport carries; larger ones fail with `Error::TooLarge`.
    fn max_message_size(&self) -> usize;
}

/// The receiving half of any transport.
pub trait Receiver: Send {
    /// Receives one message into `buf` (cleared first), waiting while there is none.
    /// Returns the message's length.
    fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize>;
    /// Receives one message into `buf`, or fails with `Error::Empty` at once.
    fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize>;
    /// Receives one message into `buf`, waiting at most `timeout` (then `Error::Timeout`).
    fn recv_into_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<usize>;
    /// The largest message this transport carries.
    fn max_message_size(&self) -> usize;
    /// The URL a sender can [`connect`](crate::connect) to, if this receiver has one (a TCP listener bound to
    /// port 0 reports the port it got). `None` for receivers without an address (pipes) or
    /// that do not say.
    fn local_url(&self) -> Option<String> {
        None
    }
}
