//! The peers as fanout sources (`--features peers`): iceoryx2 0.10 publish/subscribe with N
//! subscriber processes, and shaq 5.1.1's broadcast queue with N consumer processes. Both
//! lossless like shmring's `policy=block` (iceoryx2: `RetryUntilDelivered`, which waits inside
//! `send` with iceoryx2's own adaptive wait; shaq: backpressure by design), both read in place
//! (iceoryx2's sample, shaq's read guard) as shmring's `try_recv` guard is, both written by one
//! copy of the stamped message into the loaned / reserved cell, as shmring's `try_send` is.

use std::fs::File;
use std::mem::MaybeUninit;
use std::time::{Duration, Instant};

use iceoryx2::port::update_connections::UpdateConnections;
use iceoryx2::prelude::*;

use crate::fanout::{Reader, Setup, Source, Writer};

type Svc = iceoryx2::service::ipc::Service;
type Factory = iceoryx2::service::port_factory::publish_subscribe::PortFactory<Svc, [u8], ()>;
type Publisher = iceoryx2::port::publisher::Publisher<Svc, [u8], ()>;
type Subscriber = iceoryx2::port::subscriber::Subscriber<Svc, [u8], ()>;

/// iceoryx2 publish/subscribe: one publisher, `readers` subscribers, a subscriber buffer of
/// `Setup::slots()` samples.
pub struct Iceoryx2 {
    setup: Setup,
}

fn service(s: &Setup) -> (Node<Svc>, Factory) {
    set_log_level(LogLevel::Error);
    let node = NodeBuilder::new().create::<Svc>().expect("iceoryx2 node");
    let name: ServiceName = format!("shm-bench/fan/{}", s.tag)
        .as_str()
        .try_into()
        .expect("service name");
    let f = node
        .service_builder(&name)
        .publish_subscribe::<[u8]>()
        .history_size(0)
        .subscriber_max_buffer_size(s.slots())
        .enable_safe_overflow(false)
        .max_publishers(1)
        .max_subscribers(s.readers)
        .open_or_create()
        .expect("iceoryx2 service");
    (node, f)
}

pub struct IceWriter {
    publ: Publisher,
    service: Factory,
    _node: Node<Svc>,
    size: usize,
}

pub struct IceReader {
    sub: Subscriber,
    _service: Factory,
    _node: Node<Svc>,
}

fn ice_writer(s: &Setup) -> IceWriter {
    let (node, service) = service(s);
    let publ = service
        .publisher_builder()
        .initial_max_slice_len(s.size)
        .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
        .create()
        .expect("iceoryx2 publisher");
    IceWriter {
        publ,
        service,
        _node: node,
        size: s.size,
    }
}

fn ice_reader(s: &Setup) -> IceReader {
    let (node, service) = service(s);
    let sub = service
        .subscriber_builder()
        .create()
        .expect("iceoryx2 subscriber");
    IceReader {
        sub,
        _service: service,
        _node: node,
    }
}

impl Writer for IceWriter {
    #[inline]
    fn try_send(&mut self, msg: &[u8]) -> bool {
        debug_assert_eq!(msg.len(), self.size);
        match self.publ.loan_slice_uninit(msg.len()) {
            Ok(sample) => {
                sample.write_from_slice(msg).send().expect("iceoryx2 send");
                true
            }
            Err(_) => false,
        }
    }
}

impl Reader for IceReader {
    #[inline]
    fn poll(&mut self, f: impl FnOnce(&[u8])) -> bool {
        match self.sub.receive().expect("iceoryx2 receive") {
            Some(sample) => {
                f(sample.payload());
                true
            }
            None => false,
        }
    }
}

impl Source for Iceoryx2 {
    type Writer = IceWriter;
    type Reader = IceReader;
    const MAX_READERS: usize = usize::MAX;

    fn create_writer(s: &Setup) -> Result<(Self, IceWriter), String> {
        Ok((Iceoryx2 { setup: s.clone() }, ice_writer(s)))
    }

    fn create_reader(s: &Setup) -> Result<(Self, IceReader), String> {
        Ok((Iceoryx2 { setup: s.clone() }, ice_reader(s)))
    }

    fn reader(&self, _i: usize) -> Result<IceReader, String> {
        Ok(ice_reader(&self.setup))
    }

    fn writer(&self) -> Result<IceWriter, String> {
        Ok(ice_writer(&self.setup))
    }

    /// A sample sent before the publisher connected to a subscriber never reaches it: wait
    /// until every subscriber is registered, then connect.
    fn connected(&self, w: &mut IceWriter) -> Result<(), String> {
        let t0 = Instant::now();
        while w.service.dynamic_config().number_of_subscribers() < self.setup.readers {
            if t0.elapsed() > Duration::from_secs(10) {
                return Err("iceoryx2 subscribers never registered".into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        w.publ
            .update_connections()
            .map_err(|e| format!("iceoryx2 connect: {e:?}"))
    }
}

/// shaq's broadcast queue of `[u8; N]` items: one producer lane, `readers` consumer slots, a
/// lane of `Setup::slots()` items, in a file in /dev/shm (removed when the creator's value
/// drops).
pub struct ShaqBroadcast<const N: usize> {
    file: File,
    path: String,
    creator: bool,
}

impl<const N: usize> Drop for ShaqBroadcast<N> {
    fn drop(&mut self) {
        if self.creator {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl<const N: usize> ShaqBroadcast<N> {
    fn create(s: &Setup) -> Result<(Self, shaq::broadcast::Broadcast<[u8; N]>), String> {
        assert_eq!(s.size, N);
        let path = format!("/dev/shm/shm-bench-shaq-fan-{}", s.tag);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| format!("{path}: {e}"))?;
        let config = shaq::broadcast::BroadcastConfig {
            capacity: s.slots(),
            producer_slots: 1,
            consumer_slots: s.readers,
        };
        let me = ShaqBroadcast {
            file,
            path,
            creator: true,
        };
        // SAFETY: a new file, initialised once here; every participant uses `[u8; N]`, whose
        // every bit pattern is valid and which holds no pointers.
        let b = unsafe { shaq::broadcast::Broadcast::<[u8; N]>::create(&me.file, config) }
            .map_err(|e| format!("shaq create: {e:?}"))?;
        Ok((me, b))
    }

    fn join(&self) -> shaq::broadcast::Broadcast<[u8; N]> {
        // SAFETY: the file holds a live queue of `[u8; N]` made by `create` and is never
        // resized.
        unsafe { shaq::broadcast::Broadcast::<[u8; N]>::join(&self.file) }.expect("shaq join")
    }
}

pub struct ShaqWriter<const N: usize>(shaq::broadcast::Producer<[u8; N]>);
pub struct ShaqReader<const N: usize>(shaq::broadcast::Consumer<[u8; N]>);

impl<const N: usize> Writer for ShaqWriter<N> {
    #[inline]
    fn try_send(&mut self, msg: &[u8]) -> bool {
        assert_eq!(msg.len(), N);
        // SAFETY: the reserved cell is written in full below before it is published.
        match unsafe { self.0.try_reserve_write() } {
            Some(mut cell) => {
                let dst: &mut MaybeUninit<[u8; N]> = cell.as_mut();
                // SAFETY: `dst` is N bytes, `msg` is N bytes; distinct memory.
                unsafe {
                    std::ptr::copy_nonoverlapping(msg.as_ptr(), dst.as_mut_ptr().cast::<u8>(), N)
                };
                cell.publish();
                true
            }
            None => false,
        }
    }
}

impl<const N: usize> Reader for ShaqReader<N> {
    #[inline]
    fn poll(&mut self, f: impl FnOnce(&[u8])) -> bool {
        match self.0.try_reserve_read() {
            Some(item) => {
                let m: &[u8; N] = item.as_ref();
                f(m);
                true
            }
            None => false,
        }
    }
}

impl<const N: usize> Source for ShaqBroadcast<N> {
    type Writer = ShaqWriter<N>;
    type Reader = ShaqReader<N>;
    const MAX_READERS: usize = usize::MAX;

    fn create_writer(s: &Setup) -> Result<(Self, ShaqWriter<N>), String> {
        let (me, b) = Self::create(s)?;
        let p = b.producer().map_err(|e| format!("shaq producer: {e:?}"))?;
        Ok((me, ShaqWriter(p)))
    }

    fn create_reader(s: &Setup) -> Result<(Self, ShaqReader<N>), String> {
        let (me, b) = Self::create(s)?;
        let c = b.consumer().map_err(|e| format!("shaq consumer: {e:?}"))?;
        Ok((me, ShaqReader(c)))
    }

    fn reader(&self, _i: usize) -> Result<ShaqReader<N>, String> {
        let c = self
            .join()
            .consumer()
            .map_err(|e| format!("shaq consumer: {e:?}"))?;
        Ok(ShaqReader(c))
    }

    fn writer(&self) -> Result<ShaqWriter<N>, String> {
        let p = self
            .join()
            .producer()
            .map_err(|e| format!("shaq producer: {e:?}"))?;
        Ok(ShaqWriter(p))
    }
}
