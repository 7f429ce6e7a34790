//! shmring's rings as fanout sources: the SPSC ring (one reader: the baseline) and the
//! broadcast ring (`Overflow::Block`: lossless, as the peers are run). Each through its own
//! `try_send` / `try_recv` (the message borrowed from the segment: in `Block` mode the
//! broadcast guard is over the slot itself), `Wait::Spin` (the harness does the waiting).
//! SPSC: a byte ring of `Setup::ring_bytes`; broadcast: `Setup::slots()` slots of the message
//! size, the slot count the peers get too.

use shmring::broadcast::{self, Overflow};
use shmring::{spsc, Config, Error, Wait};

use crate::fanout::{Reader, Setup, Source, Writer};

fn name(s: &Setup) -> String {
    format!("shm-bench-fan-{}", s.tag)
}

fn cfg(s: &Setup) -> Config {
    Config::default()
        .capacity(s.ring_bytes as u64)
        .wait(Wait::Spin)
}

/// Implements `Writer` / `Reader` for a shmring half pair.
macro_rules! halves {
    ($m:ident) => {
        impl Writer for $m::Sender {
            #[inline]
            fn try_send(&mut self, msg: &[u8]) -> bool {
                match $m::Sender::try_send(self, msg) {
                    Ok(()) => true,
                    Err(Error::Full) => false,
                    Err(e) => panic!("{} send: {e}", stringify!($m)),
                }
            }
        }

        impl Reader for $m::Receiver {
            #[inline]
            fn poll(&mut self, f: impl FnOnce(&[u8])) -> bool {
                match self.try_recv() {
                    Ok(m) => {
                        f(&m);
                        true
                    }
                    Err(Error::Empty) => false,
                    Err(e) => panic!("{} recv: {e}", stringify!($m)),
                }
            }
        }
    };
}

halves!(spsc);
halves!(broadcast);

/// shmring's SPSC ring.
pub struct ShmSpsc {
    name: String,
}

impl Source for ShmSpsc {
    type Writer = spsc::Sender;
    type Reader = spsc::Receiver;
    const MAX_READERS: usize = 1;

    fn create_writer(s: &Setup) -> Result<(Self, spsc::Sender), String> {
        let name = name(s);
        let tx = spsc::Sender::create(&name, cfg(s)).map_err(|e| format!("{name}: {e}"))?;
        Ok((ShmSpsc { name }, tx))
    }

    fn create_reader(s: &Setup) -> Result<(Self, spsc::Receiver), String> {
        let name = name(s);
        let rx = spsc::Receiver::create(&name, cfg(s)).map_err(|e| format!("{name}: {e}"))?;
        Ok((ShmSpsc { name }, rx))
    }

    fn reader(&self, _i: usize) -> Result<spsc::Receiver, String> {
        spsc::Receiver::open(&self.name).map_err(|e| format!("{}: {e}", self.name))
    }

    fn writer(&self) -> Result<spsc::Sender, String> {
        spsc::Sender::open(&self.name).map_err(|e| format!("{}: {e}", self.name))
    }
}

/// shmring's broadcast ring, `policy=block`.
pub struct ShmBroadcast {
    name: String,
}

fn broadcast_cfg(s: &Setup) -> Config {
    Config::default()
        .capacity(s.slots() as u64)
        .slot_size(s.size as u64)
        .max_receivers(s.readers.max(1) as u32)
        .overflow(Overflow::Block)
        .wait(Wait::Spin)
}

impl Source for ShmBroadcast {
    type Writer = broadcast::Sender;
    type Reader = broadcast::Receiver;
    const MAX_READERS: usize = broadcast::MAX_READERS as usize;

    fn create_writer(s: &Setup) -> Result<(Self, broadcast::Sender), String> {
        let name = name(s);
        let tx = broadcast::Sender::create(&name, broadcast_cfg(s))
            .map_err(|e| format!("{name}: {e}"))?;
        Ok((ShmBroadcast { name }, tx))
    }

    fn create_reader(s: &Setup) -> Result<(Self, broadcast::Receiver), String> {
        let name = name(s);
        let rx = broadcast::Receiver::create(&name, broadcast_cfg(s))
            .map_err(|e| format!("{name}: {e}"))?;
        Ok((ShmBroadcast { name }, rx))
    }

    fn reader(&self, _i: usize) -> Result<broadcast::Receiver, String> {
        broadcast::Receiver::open(&self.name).map_err(|e| format!("{}: {e}", self.name))
    }

    fn writer(&self) -> Result<broadcast::Sender, String> {
        broadcast::Sender::open(&self.name).map_err(|e| format!("{}: {e}", self.name))
    }
}
