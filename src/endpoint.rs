//! Endpoints: a transport chosen at run time by URL.
//!
//! This module sits above the shared-memory channels ([`crate::spsc`], [`crate::mpmc`],
//! [`crate::broadcast`]) and the
//! fallback transports ([`crate::transport`]); nothing below it imports it. [`listen`] makes the
//! receiving side: it creates the endpoint (the shared-memory segment, the FIFO, the socket,
//! the queue) and removes it when dropped. [`connect`] makes the sending side, which opens what
//! the listener created, so the listener must come first. Both return boxed
//! [`channel`](crate::channel) trait objects; [`Endpoint`] holds a parsed URL for code that
//! wants to inspect it first.
//!
//! | URL | transport | options |
//! |-----|-----------|---------|
//! | `shm://name?ring=spsc&capacity=1MiB&wait=futex` | [`crate::spsc`], [`crate::mpmc`] or [`crate::broadcast`] ring | `ring` (`spsc`, `mpmc`, `broadcast`), `capacity`, `slot`, `wait` (`spin`, `futex`, `semaphore`), `spin` (spin budget: `auto`, or `0`, `500ns`, `20us`, `1ms`); broadcast only: `policy` (`block`, `overwrite`), `history` (messages a new receiver finds); `allow_uid`, `allow_gid` |
//! | `pipe:` or `pipe:FD` | [`crate::transport::pipe`] (inherited descriptor; `pipe:` = stdin / stdout) | `max` |
//! | `fifo:///path` | [`crate::transport::fifo`] | `max`; `allow_uid`, `allow_gid` |
//! | `unix:///path`, `unix://@abstract` | [`crate::transport::unix`] stream | `max`; `allow_uid`, `allow_gid` |
//! | `unix-seqpacket://…`, `unix-dgram://…` | [`crate::transport::unix`] packets | `max`; `allow_uid`, `allow_gid` |
//! | `mq://name` | [`crate::transport::posix_mq`] | `msgsize`, `maxmsg`; `allow_uid`, `allow_gid` |
//! | `sysv://0x1234` | [`crate::transport::sysv_mq`] | `allow_uid`, `allow_gid` |
//! | `tcp://host:port`, `tcp://[::1]:port` | [`crate::transport::tcp`] (no credentials: bind loopback) | `max` |
//!
//! `allow_uid=1000,1001` and `allow_gid=100` trust those uids and groups besides this process's
//! effective uid: by default an object opened by name must be owned by this uid and writable by
//! nobody else, and a Unix-socket peer must run as this uid ([`crate::trust`]).
//!
//! Sizes take binary suffixes: `64KiB`, `1MiB` (also `k`, `M`, `G`, `KB`…: all powers of 1024).
//! Option keys and values are percent-decoded (`%3D` is `=`, `%26` is `&`; `+` stays `+`).
//! Names, paths and hosts are taken literally (no percent-decoding: what you write is what the
//! OS gets) and may not contain `?`. An IPv6 host goes in brackets: `tcp://[::1]:7000`.
//!
//! ```
//! use shmring::channel::{Receiver, Sender};
//! use shmring::endpoint::Endpoint;
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
//!
//! # Why not the `url` crate
//! These URLs look like WHATWG URLs but do not mean the same thing, and the `url` crate (2.5)
//! was tried against them (`url` 2.5.8):
//! * `unix-seqpacket://@orders` names the Linux abstract socket `orders`. To a URL parser the
//!   `@` ends an (empty) userinfo, so `@orders` and `orders` (a relative path) both parse to
//!   the host `orders` and serialise the same: the one thing the URL must say is lost.
//! * An abstract name or segment name is any bytes the kernel takes; as a URL host it must be
//!   a valid opaque host (`unix://@with space` is rejected, `unix://@a/b` splits into host `a`
//!   and path `/b`).
//! * `pipe:7` puts a descriptor in the URL path, `sysv://0x1234` a number in the host: every
//!   scheme would still need its own reading of the pieces.
//!
//! What `url` would add is small here: IPv6 hosts (`tcp://[::1]:7000`, handled below by
//! splitting at the bracket and checking with [`std::net::Ipv6Addr`]) and percent-decoding
//! of query pairs (a dozen lines below). It would also add 33 crates (`url`, `idna` and the
//! ICU4X normaliser and property tables) to every user's build. So the parser stays small and hand-written: split
//! at the first `:` and the first `?`, then read each scheme's body by its own rules.

use std::borrow::Cow;
use std::net::Ipv6Addr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::channel::{Receiver, Sender};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sync::Wait;
use crate::transport::posix_mq::MqOptions;
use crate::transport::unix::{UnixAddress, UnixKind};
use crate::transport::{DEFAULT_PACKET_MAX, DEFAULT_STREAM_MAX};
use crate::trust::Trust;

/// Which shared-memory ring an `shm://` endpoint names (`ring=spsc`, `ring=mpmc` or
/// `ring=broadcast`).
///
/// This is the one ring-kind enum of the crate: the segment header records the same value.
pub use crate::segment::RingKind;

/// A parsed endpoint URL: which transport, where, and with which options.
///
/// ```
/// use shmring::endpoint::Endpoint;
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
        ring: RingKind,
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

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`). The result must be UTF-8.
fn percent_decode<'a>(url: &str, s: &'a str) -> Result<Cow<'a, str>> {
    if !s.contains('%') {
        return Ok(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| {
                    bad(
                        url,
                        format!("{s:?}: '%' must be followed by two hex digits"),
                    )
                })?;
            // Two hex digits always fit a byte.
            out.push(u8::from_str_radix(hex, 16).unwrap_or_default());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| bad(url, format!("{s:?} does not decode to UTF-8")))
}

/// The `?a=b&c=d` part of a URL, percent-decoded, each key allowed once and checked against
/// a list.
struct Query<'a> {
    url: &'a str,
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    fn parse(url: &'a str, query: Option<&'a str>, allowed: &[&str], scheme: &str) -> Result<Self> {
        let mut pairs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| bad(url, format!("option {pair:?} has no '=value'")))?;
            let (k, v) = (percent_decode(url, k)?, percent_decode(url, v)?);
            if !allowed.contains(&&*k) {
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

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
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
                    &with_trust_keys(&[
                        "ring", "capacity", "slot", "wait", "spin", "policy", "history",
                    ]),
                    scheme,
                )?;
                let ring = match q.get("ring") {
                    None | Some("spsc") => RingKind::Spsc,
                    Some("mpmc") => RingKind::Mpmc,
                    Some("broadcast") => RingKind::Broadcast,
                    Some(r) => {
                        return Err(bad(
                            url,
                            format!("ring={r}: expected spsc, mpmc or broadcast"),
                        ))
                    }
                };
                let mut config = Config::default();
                if ring != RingKind::Broadcast {
                    for key in ["policy", "history"] {
                        if q.get(key).is_some() {
                            return Err(bad(url, format!("{key}= applies to ring=broadcast only")));
                        }
                    }
                }
                match q.get("policy") {
                    None | Some("block") => {}
                    Some("overwrite") => {
                        config = config.overflow(crate::broadcast::Overflow::Overwrite)
                    }
                    Some(p) => {
                        return Err(bad(url, format!("policy={p}: expected block or overwrite")))
                    }
                }
                if let Some(h) = q.size("history")? {
                    config = config.history(h);
                }
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
                match q.get("spin") {
                    None | Some("auto") => {}
                    Some(s) => {
                        let d = parse_duration(s).ok_or_else(|| {
                            bad(
                                url,
                                format!("spin={s}: expected auto or a duration such as 0, 500ns, 20us, 1ms"),
                            )
                        })?;
                        config = config.spin_budget(d);
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
                let (host, port) = match addr.strip_prefix('[') {
                    // `[v6]:port`: the brackets keep the address's colons apart from the port's.
                    Some(bracketed) => {
                        let (host, after) = bracketed
                            .split_once(']')
                            .ok_or_else(|| bad(url, "'[' of the IPv6 host is not closed"))?;
                        if host.parse::<Ipv6Addr>().is_err() {
                            return Err(bad(url, format!("{host:?} is not an IPv6 address")));
                        }
                        let port = after
                            .strip_prefix(':')
                            .ok_or_else(|| bad(url, "no port (expected tcp://[v6]:port)"))?;
                        (host, port)
                    }
                    None => {
                        let (host, port) = addr
                            .rsplit_once(':')
                            .ok_or_else(|| bad(url, "no port (expected tcp://host:port)"))?;
                        if host.contains(':') {
                            return Err(bad(
                                url,
                                "an IPv6 host goes in brackets (tcp://[::1]:7000)",
                            ));
                        }
                        (host, port)
                    }
                };
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
                ring: RingKind::Spsc,
                config,
            } => Box::new(crate::spsc::Receiver::create(name, config.clone())?),
            Endpoint::Shm {
                name,
                ring: RingKind::Mpmc,
                config,
            } => Box::new(crate::mpmc::Receiver::create(name, config.clone())?),
            Endpoint::Shm {
                name,
                ring: RingKind::Broadcast,
                config,
            } => Box::new(crate::broadcast::Receiver::create(name, config.clone())?),
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
                ring: RingKind::Spsc,
                config,
            } => Box::new(crate::spsc::Sender::open_with(name, config.clone())?),
            Endpoint::Shm {
                name,
                ring: RingKind::Mpmc,
                config,
            } => Box::new(crate::mpmc::Sender::open_with(name, config.clone())?),
            Endpoint::Shm {
                name,
                ring: RingKind::Broadcast,
                config,
            } => Box::new(crate::broadcast::Sender::open_with(name, config.clone())?),
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
/// For `shm://`, this is [`spsc::Receiver::create`](crate::spsc::Receiver::create) or
/// [`mpmc::Receiver::create`](crate::mpmc::Receiver::create) (by `ring=`) with the URL's
/// options. For `pipe:`, it takes ownership of the inherited read end (standard input if
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
/// this is [`spsc::Sender::open_with`](crate::spsc::Sender::open_with) or
/// [`mpmc::Sender::open_with`](crate::mpmc::Sender::open_with).
///
/// ```
/// let err = shmring::connect("sysv://0").err().unwrap();
/// assert!(matches!(err, shmring::Error::InvalidUrl { .. }));
/// ```
pub fn connect(url: &str) -> Result<Box<dyn Sender>> {
    Endpoint::parse(url)?.connect()
}

/// [`listen`] as an async receiver (feature `tokio`): any URL, shared memory or transport,
/// waiting on the half's readiness descriptor with tokio's reactor (see `shmring::tokio`).
#[cfg(feature = "tokio")]
pub fn listen_async(url: &str) -> Result<crate::tokio::AsyncReceiver<Box<dyn Receiver>>> {
    Ok(crate::tokio::AsyncReceiver::new(listen(url)?))
}

/// [`connect`] as an async sender (feature `tokio`): any URL.
#[cfg(feature = "tokio")]
pub fn connect_async(url: &str) -> Result<crate::tokio::AsyncSender<Box<dyn Sender>>> {
    Ok(crate::tokio::AsyncSender::new(connect(url)?))
}

/// A duration written `0`, `750ns`, `20us`, `5ms` or `1s` (whole numbers).
fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "" if n == 0 => Duration::ZERO,
        "ns" => Duration::from_nanos(n),
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        _ => return None,
    })
}

#[cfg(test)]
mod spin_tests {
    use super::*;

    #[test]
    fn spin_budget_in_urls() {
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("750ns"), Some(Duration::from_nanos(750)));
        assert_eq!(parse_duration("20us"), Some(Duration::from_micros(20)));
        assert_eq!(parse_duration("5ms"), Some(Duration::from_millis(5)));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("us"), None);
        let Endpoint::Shm { config, .. } = Endpoint::parse("shm://x?spin=0").unwrap() else {
            panic!("not shm")
        };
        assert_eq!(config.spin_budget, Some(Duration::ZERO));
        let Endpoint::Shm { config, .. } = Endpoint::parse("shm://x?spin=auto").unwrap() else {
            panic!("not shm")
        };
        assert_eq!(config.spin_budget, None);
        let e = Endpoint::parse("shm://x?spin=fast")
            .unwrap_err()
            .to_string();
        assert!(e.contains("spin=fast"), "{e}");
    }
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
            Endpoint::Shm { ring: RingKind::Spsc, ref config, .. } if config.capacity_bytes().ok() == Some(1 << 20)
        ));
        assert!(matches!(
            Endpoint::parse("shm://orders?ring=mpmc&slot=256").unwrap(),
            Endpoint::Shm {
                ring: RingKind::Mpmc,
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
    fn ipv6_hosts_go_in_brackets() {
        use std::net::{SocketAddr, ToSocketAddrs};
        let ep = Endpoint::parse("tcp://[::1]:7000?max=1KiB").unwrap();
        assert_eq!(
            ep,
            Endpoint::Tcp {
                addr: "[::1]:7000".into(),
                max: 1024
            }
        );
        // The address is kept in the form std resolves (and `local_url` prints).
        let Endpoint::Tcp { addr, .. } = ep else {
            unreachable!()
        };
        let resolved: Vec<SocketAddr> = addr.to_socket_addrs().unwrap().collect();
        assert_eq!(resolved, ["[::1]:7000".parse::<SocketAddr>().unwrap()]);
        assert_eq!(
            Endpoint::parse("tcp://[fe80::1:2]:0").unwrap(),
            Endpoint::Tcp {
                addr: "[fe80::1:2]:0".into(),
                max: DEFAULT_STREAM_MAX
            }
        );
        assert!(reason("tcp://::1:7000").contains("brackets"));
        assert!(reason("tcp://[::1]").contains("port"));
        assert!(reason("tcp://[::1]7000").contains("port"));
        assert!(reason("tcp://[::1:7000").contains("not closed"));
        assert!(reason("tcp://[localhost]:7000").contains("IPv6"));
        assert!(reason("tcp://[::1]:70000").contains("port"));
        assert!(reason("tcp://:7000").contains("host is missing"));
    }

    #[test]
    fn query_values_are_percent_decoded() {
        let Endpoint::Shm { config, .. } =
            Endpoint::parse("shm://x?wait=fu%74ex&capacity=64%4biB&r%69ng=mpmc").unwrap()
        else {
            panic!("not shm")
        };
        assert_eq!(config.wait, Wait::Futex);
        assert_eq!(config.capacity, Some(64 << 10));
        assert!(matches!(
            Endpoint::parse("shm://x?r%69ng=mpmc").unwrap(),
            Endpoint::Shm {
                ring: RingKind::Mpmc,
                ..
            }
        ));
        // Decoding happens once: `%2541` is the three characters `%41`, not `A`.
        assert!(reason("shm://x?wait=%2541").contains("wait=%41"));
        // An escaped separator is data, not a separator.
        assert!(reason("shm://x?wait=spin%26ring%3Dmpmc").contains("wait=spin&ring=mpmc"));
        assert!(reason("shm://x?wait=%").contains("two hex digits"));
        assert!(reason("shm://x?wait=%4").contains("two hex digits"));
        assert!(reason("shm://x?wait=%zz").contains("two hex digits"));
        assert!(reason("shm://x?wait=%FF").contains("UTF-8"));
        // Names and paths are literal.
        assert_eq!(
            Endpoint::parse("fifo:///tmp/a%20b").unwrap(),
            Endpoint::Fifo {
                path: "/tmp/a%20b".into(),
                max: DEFAULT_STREAM_MAX,
                trust: Trust::default(),
            }
        );
    }

    /// Every URL shown in README.md, docs/ and the design notes, and the forms the `url`
    /// crate could not keep apart (see the module doc).
    #[test]
    fn documented_urls_parse() {
        for url in [
            "shm://orders",
            "shm://orders?ring=spsc&capacity=1MiB",
            "shm://orders?ring=mpmc&slot=256",
            "shm://name?ring=spsc&capacity=1MiB&wait=futex",
            "pipe:",
            "pipe:3",
            "fifo:///tmp/orders",
            "unix:///run/orders.sock",
            "unix://@abstract",
            "unix-seqpacket://@orders",
            "unix-seqpacket://@orders?max=4KiB",
            "unix-dgram://@orders",
            "mq://orders",
            "sysv://0x1234",
            "tcp://0.0.0.0:7000",
            "tcp://127.0.0.1:7000",
            "tcp://localhost:7000",
            "tcp://[::1]:7000",
        ] {
            Endpoint::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        let addr = |url| match Endpoint::parse(url).unwrap() {
            Endpoint::Unix { addr, .. } => addr,
            other => panic!("{url}: {other:?}"),
        };
        assert_eq!(
            addr("unix-seqpacket://@orders"),
            UnixAddress::Abstract("orders".into())
        );
        assert_eq!(
            addr("unix-seqpacket://orders"),
            UnixAddress::Path("orders".into())
        );
        assert_eq!(
            addr("unix://@with space"),
            UnixAddress::Abstract("with space".into())
        );
        assert_eq!(addr("unix://@a/b"), UnixAddress::Abstract("a/b".into()));
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

    #[test]
    fn broadcast_by_url() {
        let url = format!(
            "shm://chan-bcast-{}?ring=broadcast&capacity=16&slot=64&policy=overwrite&history=3",
            std::process::id()
        );
        match Endpoint::parse(&url).unwrap() {
            Endpoint::Shm { ring, config, .. } => {
                assert_eq!(ring, RingKind::Broadcast);
                assert_eq!(config.overflow, crate::broadcast::Overflow::Overwrite);
                assert_eq!(config.history, 3);
            }
            other => panic!("{other:?}"),
        }
        let mut rx = crate::listen(&url).unwrap();
        let mut tx = crate::connect(&url).unwrap();
        assert_eq!(tx.max_message_size(), 64);
        tx.send(b"over broadcast").unwrap();
        let mut buf = Vec::new();
        rx.recv_into(&mut buf).unwrap();
        assert_eq!(buf, b"over broadcast");
        let reason = |u: &str| match Endpoint::parse(u) {
            Err(Error::InvalidUrl { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason("shm://x?ring=broadcast&policy=drop").contains("block or overwrite"));
        assert!(reason("shm://x?ring=mpmc&history=2").contains("ring=broadcast only"));
        assert!(reason("shm://x?ring=fanout").contains("broadcast"));
    }
}
