//! Endpoint URLs made unique per run, so that runs never meet each other's leftovers.

use std::sync::atomic::{AtomicU64, Ordering};

/// What a benchmark runs over: an endpoint URL, or a pair of inherited pipes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    /// Any URL that `shmring::listen` / `shmring::connect` understand, other than `pipe:`.
    Url(String),
    /// `pipe:`: pipes made with `shmring::transport::pipe::channel()` before the fork.
    Pipe,
}

impl Link {
    pub fn parse(url: &str) -> Link {
        if url == "pipe:" || url.starts_with("pipe:?") {
            Link::Pipe
        } else {
            Link::Url(url.to_owned())
        }
    }
}

/// A tag unique to this process and call: `<pid>-<n>`.
pub fn run_tag() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `base` with its name (shm, mq), path (fifo, unix) or key (sysv) made unique by `tag` and
/// `role` (`ping`, `pong`, `data`…). TCP gets port 0: the listener reports the port it got.
/// The query (`?capacity=…`) is kept.
pub fn unique(base: &str, tag: &str, role: &str) -> Result<String, String> {
    let (head, query) = match base.split_once('?') {
        Some((h, q)) => (h, format!("?{q}")),
        None => (base, String::new()),
    };
    let (scheme, rest) = head
        .split_once("://")
        .ok_or_else(|| format!("{base}: expected scheme://… (or pipe:)"))?;
    let rest = match scheme {
        "shm" | "mq" | "fifo" | "unix" | "unix-seqpacket" | "unix-dgram" => {
            if rest.is_empty() || rest.ends_with('/') || rest == "@" {
                return Err(format!("{base}: no name to make unique"));
            }
            format!("{rest}-{tag}-{role}")
        }
        "sysv" => {
            let key = match rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok(),
                None => rest.parse::<u32>().ok(),
            }
            .ok_or_else(|| format!("{base}: key is not a number"))?;
            format!("{:#x}", sysv_key(key, tag, role))
        }
        "tcp" => {
            let host = rest
                .rsplit_once(':')
                .map(|(h, _)| h)
                .ok_or_else(|| format!("{base}: expected tcp://host:port"))?;
            format!("{host}:0")
        }
        other => return Err(format!("{base}: unknown scheme {other:?}")),
    };
    Ok(format!("{scheme}://{rest}{query}"))
}

/// A System V key derived from `base`, `tag` and `role`: positive as an i32, never 0
/// (IPC_PRIVATE).
fn sysv_key(base: u32, tag: &str, role: &str) -> u32 {
    // FNV-1a: stable, and different tags give different keys with high probability.
    let mut h: u32 = 0x811c_9dc5 ^ base;
    for b in tag.bytes().chain([b'/']).chain(role.bytes()) {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x7fff_ffff).max(1)
}

/// A short label for a URL's transport, e.g. `unix-seqpacket` or `shm spsc (spin)`.
pub fn transport_label(url: &str) -> String {
    if url.starts_with("pipe:") {
        return "pipe".into();
    }
    let scheme = url.split("://").next().unwrap_or(url);
    if scheme == "shm" {
        let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        let get = |k: &str| {
            q.split('&')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        let ring = get("ring").unwrap_or("spsc");
        let wait = get("wait").unwrap_or("futex");
        return format!("shm {ring} {wait}");
    }
    scheme.to_owned()
}

/// Messages in one lap of a shm ring at `size` bytes (0 for other transports). A warm-up of
/// at least this many touches every page of the ring once, so that no measured message pays a
/// first-touch page fault (the writer's and then the reader's, on every page of a fresh
/// segment). SPSC: capacity bytes over the frame (8-byte header, payload rounded up to 8);
/// MPMC: the slot count.
pub fn ring_lap(url: &str, size: usize) -> u64 {
    let Some(rest) = url.strip_prefix("shm://") else {
        return 0;
    };
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    let get = |key: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    let capacity = get("capacity").and_then(|c| {
        let digits = c.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(c.len());
        let n: u64 = c[..digits].parse().ok()?;
        let shift = match c[digits..].to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "k" | "kb" | "kib" => 10,
            "m" | "mb" | "mib" => 20,
            "g" | "gb" | "gib" => 30,
            _ => return None,
        };
        n.checked_shl(shift)
    });
    if get("ring") == Some("mpmc") {
        capacity.unwrap_or(1024).next_power_of_two()
    } else {
        capacity.unwrap_or(1 << 20).next_power_of_two() / (8 + size.div_ceil(8) as u64 * 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_lap_counts_frames_or_slots() {
        let spsc = "shm://b?ring=spsc&capacity=4MiB&wait=spin";
        assert_eq!(ring_lap(spsc, 2048), (4 << 20) / 2056);
        assert_eq!(ring_lap(spsc, 8), (4 << 20) / 16);
        assert_eq!(ring_lap(spsc, 9), (4 << 20) / 24);
        assert_eq!(ring_lap("shm://b", 64), (1 << 20) / 72);
        assert_eq!(
            ring_lap("shm://b?ring=mpmc&capacity=256&slot=64KiB", 64),
            256
        );
        assert_eq!(ring_lap("unix://@b", 64), 0);
    }

    #[test]
    fn names_and_paths_get_the_tag_and_keep_the_query() {
        assert_eq!(
            unique("shm://b?ring=spsc&wait=spin", "7-1", "ping").unwrap(),
            "shm://b-7-1-ping?ring=spsc&wait=spin"
        );
        assert_eq!(
            unique("unix://@b", "7-1", "pong").unwrap(),
            "unix://@b-7-1-pong"
        );
        assert_eq!(
            unique("fifo:///tmp/b", "7-1", "ping").unwrap(),
            "fifo:///tmp/b-7-1-ping"
        );
        assert_eq!(
            unique("tcp://127.0.0.1:7000", "7-1", "ping").unwrap(),
            "tcp://127.0.0.1:0"
        );
        assert!(unique("carrier-pigeon://x", "1", "ping").is_err());
        assert!(unique("shm://", "1", "ping").is_err());
    }

    #[test]
    fn every_generated_url_parses_and_roles_differ() {
        for base in [
            "shm://b?ring=spsc&capacity=1MiB&wait=spin",
            "fifo:///tmp/b",
            "unix:///tmp/b.sock",
            "unix-seqpacket://@b",
            "unix-dgram://@b",
            "mq://b",
            "sysv://0x5348",
            "tcp://127.0.0.1:0",
        ] {
            let ping = unique(base, "9-3", "ping").unwrap();
            let pong = unique(base, "9-3", "pong").unwrap();
            shmring::endpoint::Endpoint::parse(&ping).unwrap_or_else(|e| panic!("{ping}: {e}"));
            shmring::endpoint::Endpoint::parse(&pong).unwrap_or_else(|e| panic!("{pong}: {e}"));
            if !base.starts_with("tcp") {
                assert_ne!(ping, pong, "{base}");
                assert_ne!(ping, unique(base, "9-4", "ping").unwrap(), "{base}");
            }
        }
    }

    #[test]
    fn sysv_keys_are_valid() {
        for i in 0..1000 {
            let k = sysv_key(0x5348, &i.to_string(), "ping");
            assert!(k != 0 && k <= i32::MAX as u32);
        }
    }

    #[test]
    fn labels() {
        assert_eq!(transport_label("pipe:"), "pipe");
        assert_eq!(transport_label("unix-dgram://@x"), "unix-dgram");
        assert_eq!(
            transport_label("shm://x?ring=spsc&capacity=4MiB&wait=spin"),
            "shm spsc spin"
        );
        assert_eq!(Link::parse("pipe:"), Link::Pipe);
    }
}
