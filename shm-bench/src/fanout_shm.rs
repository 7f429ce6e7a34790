//! shmring's rings as fanout sources: the SPSC ring (one reader: the baseline) and, once it
//! exists, the broadcast ring. Each through its own `try_send` / `try_recv` (the message
//! borrowed from the segment), `Wait::Spin` (the harness does the waiting), a ring of
//! `Setup::ring_bytes`.

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
