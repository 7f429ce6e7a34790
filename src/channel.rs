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
//! # Endpoints
//! A transport is chosen at run time by an endpoint URL. [`listen`] makes the receiving side:
//! it creates the endpoint (the shared-memory segment, the FIFO, the socket, the queue) and
//! removes it when dropped. [`connect`] makes the sending side, which opens what the listener
//! created, so the listener must come first. Both return boxed trait objects; [`Endpoint`]
//! holds a parsed URL for code that wants to inspect it first.
//!
//! | URL | transport | options |
//! |-----|-----------|---------|
//! | `shm://name?ring=spsc&capacity=1MiB&wait=futex` | [`crate::spsc`] or [`crate::mpmc`] ring | `ring` (`spsc`, `mpmc`), `capacity`, `slot`, `wait` (`spin`, `futex`, `semaphore`); `allow_uid`, `allow_gid` |
//! | `pipe:` or `pipe:FD` | [`crate::transport::pipe`] (inherited descriptor; `pipe:` = stdin / stdout) | `max` |
//! | `fifo:///path` | [`crate::transport::fifo`] | `max`; `allow_uid`, `allow_gid` |
//! | `unix:///path`, `unix://@abstract` | [`crate::transport::unix`] stream | `max`; `allow_uid`, `allow_gid` |
//! | `unix-seqpacket://…`, `unix-dgram://…` | [`crate::transport::unix`] packets | `max`; `allow_uid`, `allow_gid` |
//! | `mq://name` | [`crate::transport::posix_mq`] | `msgsize`, `maxmsg`; `allow_uid`, `allow_gid` |
//! | `sysv://0x1234` | [`crate::transport::sysv_mq`] | `allow_uid`, `allow_gid` |
//! | `tcp://host:port` | [`crate::transport::tcp`] (no credentials: bind loopback) | `max` |
//!
//! `allow_uid=1000,1001` and `allow_gid=100` trust those uids and groups besides this process's
//! effective uid: by default an object opened by name must be owned by this uid and writable by
//! nobody else, and a Unix-socket peer must run as this uid ([`crate::trust`]).
//!
//! Sizes take binary suffixes: `64KiB`, `1MiB` (also `k`, `M`, `G`, `KB`…: all powers of 1024).
//! Paths are taken literally (no percent-decoding) and may not contain `?`.
//!
//! ```
//! use shmring::channel::{Endpoint, Receiver, Sender};
//! let url = format!("shm://doc-endpoint-{}?ring=spsc&capacity=64KiB", std::process::id());
//! let mut rx = shmring::listen(&url)?;      // creates the segment
//! let mut tx = shmring::connect(&url)?;     // opens it
//! tx.send(b"by url")?;
//! let mut buf = Vec::new();
//! rx.recv_into(&mut buf)?;
//! assert_eq!(buf, b"by url");
//!
//! let err = shmring::listen("carrier-pigeon://home").err().unwrap();
//! assert!(matches!(err, shmring::Error::InvalidUrl { .. }));
//! assert!(Endpoint::parse("tcp://localhost").is_err());    // no port
//! # Ok::<(), shmring::Error>(())
//! ```

use std::os::fd::RawFd;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sync::Wait;
use crate::transport::posix_mq::MqOptions;
use crate::transport::unix::{UnixAddress, UnixKind};
use crate::transport::{DEFAULT_PACKET_MAX, DEFAULT_STREAM_MAX};
use crate::trust::Trust;

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
    /// The URL a sender can [`connect`] to, if this receiver has one (a TCP listener bound to
    /// port 0 reports the port it got). `None` for receivers without an address (pipes) or
    /// that do not say.
    fn local_url(&self) -> Option<String> {
        None
    }
}

/// Which shared-memory ring an `shm://` endpoint names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ring {
    /// The single-producer single-consumer byte ring ([`crate::spsc`]).
    Spsc,
    /// The multi-producer multi-consumer slot ring.
    Mpmc,
}

/// A parsed endpoint URL: which transport, where, and with which options.
///
/// ```
/// use shmring::channel::Endpoint;
/// use shmring::transport::unix::{UnixAddress, UnixKind};
///
/// let ep: Endpoint = "unix-seqpacket://@orders?max=4KiB".parse()?;
/// assert_eq!(ep, Endpoint::Unix {
///     kind: UnixKind::Seqpacket,
///     addr: UnixAddress::Abstract("orders".into()),
///     max: 4096,
///     trust: shmring::Trust::default(),
/// });
/// let err = Endpoint::parse("tcp://localhost").unwrap_err();
/// assert!(err.to_string().contains("port"));
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Endpoint {
    /// `shm://name?ring=…`: a shared-memory ring.
    Shm {
        /// The segment name (as given, without a leading `/`).
        name: String,
        /// SPSC or MPMC.
        ring: Ring,
        /// Capacity, slot size and wait strategy.
        config: Config,
    },
    /// `pipe:` or `pipe:FD`: an inherited pipe descriptor (`None`: stdin / stdout).
    Pipe {
        /// The descriptor number, if given.
        fd: Option<RawFd>,
        /// The largest message.
        max: usize,
    },
    /// `fifo:///path`: a named FIFO.
    Fifo {
        /// Where the FIFO lives.
        path: PathBuf,
        /// The largest message.
        max: usize,
        /// Who else may own the FIFO (`allow_uid=`, `allow_gid=`).
        trust: Trust,
    },
    /// `unix://…`, `unix-seqpacket://…`, `unix-dgram://…`: a Unix domain socket.
    Unix {
        /// Stream, seqpacket or datagram.
        kind: UnixKind,
        /// Path or abstract name.
        addr: UnixAddress,
        /// The largest message.
        max: usize,
        /// Which peers besides this uid are accepted (`allow_uid=`, `allow_gid=`).
        trust: Trust,
    },
    /// `mq://name`: a POSIX message queue.
    PosixMq {
        /// The queue name (as given, without a leading `/`).
        name: String,
        /// Message size and depth.
        options: MqOptions,
        /// Who else may own the queue (`allow_uid=`, `allow_gid=`).
        trust: Trust,
    },
    /// `sysv://KEY`: a System V message queue.
    SysvMq {
        /// The IPC key (never 0, `IPC_PRIVATE`).
        key: i32,
        /// Who else may own the queue (`allow_uid=`, `allow_gid=`).
        trust: Trust,
    },
    /// `tcp://host:port`.
    Tcp {
        /// `host:port`, as given.
        addr: String,
        /// The largest message.
        max: usize,
    },
}

fn bad(url: &str, reason: impl Into<String>) -> Error {
    Error::InvalidUrl {
        url: url.to_owned(),
        reason: reason.into(),
    }
}

/// Parses `64KiB`, `1M`, `4096`… (suffixes are powers of 1024).
fn parse_size(url: &str, key: &str, v: &str) -> Result<u64> {
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(digits);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(bad(
                url,
                format!("{key}={v}: unknown size unit {unit:?} (use KiB, MiB or GiB)"),
            ))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| bad(url, format!("{key}={v} is not a size")))
}

/// The `?a=b&c=d` part of a URL, each key allowed once and checked against a list.
struct Query<'a> {
    url: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Query<'a> {
    fn parse(url: &'a str, query: Option<&'a str>, allowed: &[&str], scheme: &str) -> Result<Self> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(url, format!("option {pair:?} has no '=value'")))?;
            if !allowed.contains(&k) {
                let known = if allowed.is_empty() {
                    "none".to_owned()
                } else {
                    allowed.join(", ")
                };
                return Err(bad(
                    url,
                    format!("unknown option {k:?} for {scheme}: (known: {known})"),
                ));
            }
            if pairs.iter().any(|(k2, _)| *k2 == k) {
                return Err(bad(url, format!("option {k:?} given twice")));
            }
            pairs.push((k, v));
        }
        Ok(Query { url, pairs })
    }

    fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn size(&self, key: &str) -> Result<Option<u64>> {
        self.get(key)
            .map(|v| parse_size(self.url, key, v))
            .transpose()
    }

    fn max(&self, default: usize, limit: usize) -> Result<usize> {
        match self.size("max")? {
            None => Ok(default),
            Some(m) if m as u128 > limit as u128 => Err(bad(
                self.url,
                format!("max={m} is above this transport's limit of {limit} bytes"),
            )),
            Some(m) => Ok(m as usize),
        }
    }
}

// ---- Who may attach: the `allow_uid=` / `allow_gid=` URL options (issue 14). -----------------
// Kept in one place so that it moves as a block with the URL parser.

/// The URL options that widen who is trusted, accepted by every scheme that opens a named
/// object or a Unix socket (not `pipe:`, which is inherited, nor `tcp://`, which has no
/// credentials).
const TRUST_KEYS: [&str; 2] = ["allow_uid", "allow_gid"];

/// `allow_uid=1000[,1001…]` and `allow_gid=100[,…]`: uids and groups trusted besides this
/// process's effective uid (see [`crate::trust`]).
fn parse_trust(q: &Query<'_>) -> Result<Trust> {
    let mut trust = Trust::default();
    for key in TRUST_KEYS {
        let Some(list) = q.get(key) else { continue };
        for id in list.split(',') {
            let id: u32 = id.parse().map_err(|_| {
                bad(
                    q.url,
                    format!("{key}={list}: {id:?} is not a numeric id (use `id -u NAME`)"),
                )
            })?;
            trust = if key == "allow_uid" {
                trust.allow_uid(id)
            } else {
                trust.allow_gid(id)
            };
        }
    }
    Ok(trust)
}

/// `known` with the trust options added.
fn with_trust_keys(known: &[&'static str]) -> Vec<&'static str> {
    known.iter().copied().chain(TRUST_KEYS).collect()
}

/// A shared-memory config trusting what the URL allows.
fn config_trusting(mut config: Config, trust: &Trust) -> Config {
    for &u in trust.allowed_uids() {
        config = config.allow_uid(u);
    }
    for &g in trust.allowed_gids() {
        config = config.allow_gid(g);
    }
    config
}

// ---- end of the trust options -------------------------------------------------------------

impl Endpoint {
    /// Parses an endpoint URL. Errors are [`Error::InvalidUrl`], naming the URL and what is
    /// wrong with it.
    pub fn parse(url: &str) -> Result<Endpoint> {
        let (scheme, rest) = url.split_once(':').ok_or_else(|| {
            bad(
                url,
                "no scheme (expected e.g. shm://name or tcp://host:port)",
            )
        })?;
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let authority = |what: &str| -> Result<&str> {
            let a = body
                .strip_prefix("//")
                .ok_or_else(|| bad(url, format!("expected {scheme}://{what}")))?;
            if a.is_empty() {
                return Err(bad(url, format!("the {what} is missing")));
            }
            Ok(a)
        };
        let stream_max = crate::transport::framing::MAX_FRAME;
        let packet_max = crate::transport::unix::PACKET_MAX_LIMIT;
        Ok(match scheme {
            "shm" => {
                let name = authority("name")?;
                crate::segment::normalize_name(name).map_err(|e| bad(url, e.to_string()))?;
                let q = Query::parse(
                    url,
                    query,
                    &with_trust_keys(&["ring", "capacity", "slot", "wait"]),
                    scheme,
                )?;
                let ring = match q.get("ring") {
                    None | Some("spsc") => Ring::Spsc,
                    Some("mpmc") => Ring::Mpmc,
                    Some(r) => return Err(bad(url, format!("ring={r}: expected spsc or mpmc"))),
                };
                let mut config = Config::default();
                if let Some(c) = q.size("capacity")? {
                    config = config.capacity(c);
                }
                if let Some(s) = q.size("slot")? {
                    config = config.slot_size(s);
                }
                match q.get("wait") {
                    None => {}
                    Some("spin") => config = config.wait(Wait::Spin),
                    Some("futex") => config = config.wait(Wait::Futex),
                    Some("semaphore") => config = config.wait(Wait::Semaphore),
                    Some(w) => {
                        return Err(bad(
                            url,
                            format!("wait={w}: expected spin, futex or semaphore"),
                        ))
                    }
                }
                Endpoint::Shm {
                    name: name.to_owned(),
                    ring,
                    config: config_trusting(config, &parse_trust(&q)?),
                }
            }
            "pipe" => {
                let q = Query::parse(url, query, &["max"], scheme)?;
                let digits = body.strip_prefix("//").unwrap_or(body);
                let fd = if digits.is_empty() {
                    None
                } else {
                    Some(
                        digits
                            .parse::<RawFd>()
                            .ok()
                            .filter(|fd| *fd >= 0)
                            .ok_or_else(|| {
                                bad(url, format!("{digits:?} is not a descriptor number"))
                            })?,
                    )
                };
                Endpoint::Pipe {
                    fd,
                    max: q.max(DEFAULT_STREAM_MAX, stream_max)?,
                }
            }
            "fifo" => {
                let path = authority("path")?;
                let q = Query::parse(url, query, &with_trust_keys(&["max"]), scheme)?;
                Endpoint::Fifo {
                    path: PathBuf::from(path),
                    max: q.max(DEFAULT_STREAM_MAX, stream_max)?,
                    trust: parse_trust(&q)?,
                }
            }
            "unix" | "unix-seqpacket" | "unix-dgram" => {
                let kind = match scheme {
                    "unix" => UnixKind::Stream,
                    "unix-seqpacket" => UnixKind::Seqpacket,
                    _ => UnixKind::Datagram,
                };
                let addr = authority("path or @name")?;
                if addr == "@" {
                    return Err(bad(url, "the abstract name after '@' is empty"));
                }
                let q = Query::parse(url, query, &with_trust_keys(&["max"]), scheme)?;
                let max = match kind {
                    UnixKind::Stream => q.max(DEFAULT_STREAM_MAX, stream_max)?,
                    _ => q.max(DEFAULT_PACKET_MAX, packet_max)?,
                };
                Endpoint::Unix {
                    kind,
                    addr: UnixAddress::parse(addr),
                    max,
                    trust: parse_trust(&q)?,
                }
            }
            "mq" => {
                let name = authority("queue name")?;
                crate::segment::normalize_name(name).map_err(|e| bad(url, e.to_string()))?;
                let q = Query::parse(url, query, &with_trust_keys(&["msgsize", "maxmsg"]), scheme)?;
                let opt = |k| -> Result<Option<usize>> {
                    Ok(q.size(k)?.map(|v| v.min(usize::MAX as u64) as usize))
                };
                Endpoint::PosixMq {
                    name: name.to_owned(),
                    options: MqOptions {
                        msgsize: opt("msgsize")?,
                        maxmsg: opt("maxmsg")?,
                    },
                    trust: parse_trust(&q)?,
                }
            }
            "sysv" => {
                let k = authority("key")?;
                let q = Query::parse(url, query, &with_trust_keys(&[]), scheme)?;
                let parsed = match k.strip_prefix("0x").or_else(|| k.strip_prefix("0X")) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => k.parse::<u32>().ok(),
                };
                let key =
                    parsed.ok_or_else(|| bad(url, format!("key {k:?} is not a 32-bit number")))?;
                if key == 0 {
                    return Err(bad(
                        url,
                        "key 0 is IPC_PRIVATE, which no other process can open",
                    ));
                }
                Endpoint::SysvMq {
                    key: key as i32,
                    trust: parse_trust(&q)?,
                }
            }
            "tcp" => {
                let addr = authority("host:port")?;
                let q = Query::parse(url, query, &["max"], scheme)?;
                let (host, port) = addr
                    .rsplit_once(':')
                    .ok_or_else(|| bad(url, "no port (expected tcp://host:port)"))?;
                if host.is_empty() {
                    return Err(bad(url, "the host is missing"));
                }
                if port.parse::<u16>().is_err() {
                    return Err(bad(
                        url,
                        format!("port {port:?} is not a number up to 65535"),
                    ));
                }
                Endpoint::Tcp {
                    addr: addr.to_owned(),
                    max: q.max(DEFAULT_STREAM_MAX, stream_max)?,
                }
            }
            "" => return Err(bad(url, "the scheme is empty")),
            other => {
                return Err(bad(
                    url,
                    format!(
                        "unknown scheme {other:?} (known: shm, pipe, fifo, unix, unix-seqpacket, \
                         unix-dgram, mq, sysv, tcp)"
                    ),
                ))
            }
        })
    }

    /// Makes the receiving side of this endpoint (creating the endpoint); see [`listen`].
    pub fn listen(&self) -> Result<Box<dyn Receiver>> {
        use crate::transport::*;
        Ok(match self {
            Endpoint::Shm {
                name,
                ring: Ring::Spsc,
                config,
            } => Box::new(crate::spsc::Receiver::create(name, config.clone())?),
            Endpoint::Shm {
                name,
                ring: Ring::Mpmc,
                config,
            } => Box::new(crate::mpmc::Receiver::create(name, config.clone())?),
            Endpoint::Pipe { fd, max } => Box::new(pipe::PipeReceiver::from_inherited(
                fd.unwrap_or(libc::STDIN_FILENO),
                *max,
            )?),
            Endpoint::Fifo { path, max, .. } => Box::new(fifo::FifoReceiver::create(path, *max)?),
            Endpoint::Unix {
                kind,
                addr,
                max,
                trust,
            } => Box::new(unix::UnixReceiver::bind_with(
                *kind,
                addr.clone(),
                *max,
                trust,
            )?),
            Endpoint::PosixMq { name, options, .. } => {
                Box::new(posix_mq::MqReceiver::create(name, *options)?)
            }
            Endpoint::SysvMq { key, .. } => Box::new(sysv_mq::SysvReceiver::create(*key)?),
            Endpoint::Tcp { addr, max } => Box::new(tcp::TcpReceiver::bind(addr, *max)?),
        })
    }

    /// Makes the sending side of this endpoint (opening what the listener made); see
    /// [`connect`].
    pub fn connect(&self) -> Result<Box<dyn Sender>> {
        use crate::transport::*;
        Ok(match self {
            Endpoint::Shm {
                name,
                ring: Ring::Spsc,
                config,
            } => Box::new(crate::spsc::Sender::open_with(name, config.clone())?),
            Endpoint::Shm {
                name,
                ring: Ring::Mpmc,
                config,
            } => Box::new(crate::mpmc::Sender::open_with(name, config.clone())?),
            Endpoint::Pipe { fd, max } => Box::new(pipe::PipeSender::from_inherited(
                fd.unwrap_or(libc::STDOUT_FILENO),
                *max,
            )?),
            Endpoint::Fifo { path, max, trust } => {
                Box::new(fifo::FifoSender::open_with(path, *max, trust)?)
            }
            Endpoint::Unix {
                kind,
                addr,
                max,
                trust,
            } => Box::new(unix::UnixSender::connect_with(
                *kind,
                addr.clone(),
                *max,
                trust,
            )?),
            Endpoint::PosixMq { name, trust, .. } => {
                Box::new(posix_mq::MqSender::open_with(name, trust)?)
            }
            Endpoint::SysvMq { key, trust } => {
                Box::new(sysv_mq::SysvSender::open_with(*key, trust)?)
            }
            Endpoint::Tcp { addr, max } => Box::new(tcp::TcpSender::connect(addr, *max)?),
        })
    }
}

impl FromStr for Endpoint {
    type Err = Error;
    fn from_str(s: &str) -> Result<Endpoint> {
        Endpoint::parse(s)
    }
}

/// Makes the receiving side of the endpoint `url`: it creates the endpoint (segment, FIFO,
/// socket, queue) and removes it when dropped. Start it before the sender [`connect`]s.
///
/// For `shm://`, this is [`spsc::Receiver::create`](crate::spsc::Receiver::create) with the
/// URL's options. For `pipe:`, it takes ownership of the inherited read end (standard input if
/// the URL names no descriptor).
///
/// ```
/// use shmring::channel::{Receiver, Sender};
/// let url = format!("unix://@doc-listen-{}", std::process::id());
/// let mut rx = shmring::listen(&url)?;
/// let mut tx = shmring::connect(&url)?;
/// tx.send(b"hi")?;
/// let mut buf = Vec::new();
/// assert_eq!(rx.recv_into(&mut buf)?, 2);
/// # Ok::<(), shmring::Error>(())
/// ```
pub fn listen(url: &str) -> Result<Box<dyn Receiver>> {
    Endpoint::parse(url)?.listen()
}

/// Makes the sending side of the endpoint `url`, opening what [`listen`] made. For `shm://`,
/// this is [`spsc::Sender::open_with`](crate::spsc::Sender::open_with).
///
/// ```
/// let err = shmring::connect("sysv://0").err().unwrap();
/// assert!(matches!(err, shmring::Error::InvalidUrl { .. }));
/// ```
pub fn connect(url: &str) -> Result<Box<dyn Sender>> {
    Endpoint::parse(url)?.connect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(url: &str) -> String {
        match Endpoint::parse(url) {
            Err(Error::InvalidUrl { url: u, reason }) => {
                assert_eq!(u, url);
                reason
            }
            other => panic!("{url}: expected InvalidUrl, got {other:?}"),
        }
    }

    #[test]
    fn parses_every_scheme() {
        assert!(matches!(
            Endpoint::parse("shm://orders?ring=spsc&capacity=1MiB").unwrap(),
            Endpoint::Shm { ring: Ring::Spsc, ref config, .. } if config.capacity_bytes() == 1 << 20
        ));
        assert!(matches!(
            Endpoint::parse("shm://orders?ring=mpmc&slot=256").unwrap(),
            Endpoint::Shm {
                ring: Ring::Mpmc,
                ..
            }
        ));
        assert_eq!(
            Endpoint::parse("pipe:").unwrap(),
            Endpoint::Pipe {
                fd: None,
                max: DEFAULT_STREAM_MAX
            }
        );
        assert_eq!(
            Endpoint::parse("pipe:7?max=1k").unwrap(),
            Endpoint::Pipe {
                fd: Some(7),
                max: 1024
            }
        );
        assert_eq!(
            Endpoint::parse("fifo:///tmp/orders").unwrap(),
            Endpoint::Fifo {
                path: "/tmp/orders".into(),
                max: DEFAULT_STREAM_MAX,
                trust: Trust::default(),
            }
        );
        assert_eq!(
            Endpoint::parse("unix:///run/orders.sock").unwrap(),
            Endpoint::Unix {
                kind: UnixKind::Stream,
                addr: UnixAddress::Path("/run/orders.sock".into()),
                max: DEFAULT_STREAM_MAX,
                trust: Trust::default(),
            }
        );
        assert_eq!(
            Endpoint::parse("unix-dgram://@x").unwrap(),
            Endpoint::Unix {
                kind: UnixKind::Datagram,
                addr: UnixAddress::Abstract("x".into()),
                max: DEFAULT_PACKET_MAX,
                trust: Trust::default(),
            }
        );
        assert_eq!(
            Endpoint::parse("mq://orders?msgsize=4096").unwrap(),
            Endpoint::PosixMq {
                name: "orders".into(),
                options: MqOptions {
                    msgsize: Some(4096),
                    maxmsg: None
                },
                trust: Trust::default(),
            }
        );
        assert_eq!(
            Endpoint::parse("sysv://0x1234").unwrap(),
            Endpoint::SysvMq {
                key: 0x1234,
                trust: Trust::default()
            }
        );
        assert_eq!(
            Endpoint::parse("sysv://4660").unwrap(),
            Endpoint::SysvMq {
                key: 0x1234,
                trust: Trust::default()
            }
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:7000").unwrap(),
            Endpoint::Tcp {
                addr: "127.0.0.1:7000".into(),
                max: DEFAULT_STREAM_MAX
            }
        );
    }

    #[test]
    fn malformed_urls_say_what_is_wrong() {
        assert!(reason("orders").contains("no scheme"));
        assert!(reason("smoke-signal://x").contains("unknown scheme"));
        assert!(reason("shm:orders").contains("shm://"));
        assert!(reason("shm://").contains("missing"));
        assert!(reason("shm://a/b").contains("'/'"));
        assert!(reason("shm://x?ring=ouroboros").contains("ring="));
        assert!(reason("shm://x?capacity=1XB").contains("unit"));
        assert!(reason("shm://x?colour=red").contains("unknown option"));
        assert!(reason("shm://x?ring=spsc&ring=spsc").contains("twice"));
        assert!(reason("pipe:stdin").contains("descriptor"));
        assert!(reason("tcp://host").contains("port"));
        assert!(reason("tcp://host:99999").contains("port"));
        assert!(reason("sysv://0").contains("IPC_PRIVATE"));
        assert!(reason("sysv://0xzz").contains("number"));
        assert!(reason("unix-seqpacket://@x?max=1GiB").contains("limit"));
        assert!(reason("unix://@").contains("empty"));
    }

    #[test]
    fn trust_options_by_url() {
        match Endpoint::parse("shm://o?allow_uid=1000,1001&allow_gid=100").unwrap() {
            Endpoint::Shm { config, .. } => {
                assert_eq!(config.trust().allowed_uids(), &[1000, 1001]);
                assert_eq!(config.trust().allowed_gids(), &[100]);
            }
            other => panic!("{other:?}"),
        }
        let want = Trust::default().allow_uid(7).allow_gid(8);
        for url in [
            "fifo:///tmp/x?allow_uid=7&allow_gid=8",
            "unix://@x?allow_gid=8&allow_uid=7",
            "mq://x?allow_uid=7&allow_gid=8",
            "sysv://0x99?allow_uid=7&allow_gid=8",
        ] {
            let trust = match Endpoint::parse(url).unwrap() {
                Endpoint::Fifo { trust, .. }
                | Endpoint::Unix { trust, .. }
                | Endpoint::PosixMq { trust, .. }
                | Endpoint::SysvMq { trust, .. } => trust,
                other => panic!("{other:?}"),
            };
            assert_eq!(trust, want, "{url}");
        }
        assert!(reason("shm://o?allow_uid=alice").contains("numeric"));
        assert!(reason("tcp://127.0.0.1:1?allow_uid=7").contains("unknown option"));
        assert!(reason("pipe:?allow_uid=7").contains("unknown option"));
    }

    #[test]
    fn mpmc_by_url() {
        let url = format!(
            "shm://chan-mpmc-{}?ring=mpmc&capacity=16&slot=64",
            std::process::id()
        );
        let mut rx = crate::listen(&url).unwrap();
        let mut tx = crate::connect(&url).unwrap();
        assert_eq!(tx.max_message_size(), 64);
        tx.send(b"over mpmc").unwrap();
        let mut buf = Vec::new();
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, b"over mpmc");
    }
}
