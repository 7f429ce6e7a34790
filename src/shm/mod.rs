//! Ring + segment + wait: the shared-memory channel halves.
//!
//! [`spsc`] puts the byte ring of [`crate::ring::spsc`] into a named segment. This module holds
//! what every half needs whatever its ring: the segment, the wait strategy, and the peer check.

pub mod spsc;

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::segment::Segment;
use crate::sync::wait::WaitPolicy;
use crate::sync::Wait;

/// How a half comes to its segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Attach {
    Create,
    Open,
    CreateOrOpen,
}

/// What a half holds besides its ring end: the mapping, how to wait, and who its peer is.
#[derive(Debug)]
struct Link {
    seg: Segment,
    wait: Wait,
    policy: WaitPolicy,
    /// Index of the peer's side in the header.
    peer: usize,
}

impl Link {
    /// `Err(PeerDead)` if a peer attached once and no live process holds its side any more.
    fn check_peer(&self) -> Result<()> {
        if self.seg.side_ever_attached(self.peer) && !self.seg.side_alive(self.peer)? {
            return Err(Error::PeerDead);
        }
        Ok(())
    }
}

/// The instant `timeout` from now (`None` if that is beyond what `Instant` can hold: forever).
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}
