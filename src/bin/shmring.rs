//! `shmring`: list, inspect and remove shmring segments, like `ipcs` and `ipcrm` for ours.
//!
//! ```text
//! shmring ls [--json]            every shmring segment in /dev/shm
//! shmring inspect NAME [--json]  the whole header, decoded, and what is wrong with it
//! shmring rm NAME...             remove segments (only shmring ones)
//! shmring gc [--dry-run] [--prefix P] [--min-age S]   remove segments whose participants are all dead
//! ```
//! Files in /dev/shm that are not shmring segments are never touched.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;
use shmring::inspect::{self, SegmentInfo};

#[derive(Parser)]
#[command(
    name = "shmring",
    version,
    about = "Inspect and clean up shmring shared-memory segments"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List every shmring segment in /dev/shm.
    Ls {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Show a segment's header, decoded, its participants, and what is wrong with it.
    Inspect {
        /// Segment name (with or without the leading '/').
        name: String,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Remove segments by name. Refuses files that are not shmring segments.
    Rm {
        /// Segment names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove segments whose participants are all dead (and that are older than --min-age).
    Gc {
        /// Only print what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Leave segments younger than this many seconds (they may be being created).
        #[arg(long, default_value_t = 10)]
        min_age: u64,
        /// Only segments whose name (without '/') starts with this.
        #[arg(long)]
        prefix: Option<String>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct Row {
    name: String,
    kind: String,
    capacity: u64,
    slot_size: u64,
    used: Option<u64>,
    file_len: u64,
    mode: String,
    uid: u32,
    age_secs: u64,
    creator_pid: u32,
    wait: String,
    version: u32,
    initialised: bool,
    participants: Vec<Peer>,
    /// Broadcast segments only.
    #[serde(skip_serializing_if = "Option::is_none")]
    broadcast: Option<Broadcast>,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct Broadcast {
    policy: String,
    history: u64,
    tail: u64,
    readers: Vec<Reader>,
}

#[derive(Serialize)]
struct Reader {
    place: usize,
    /// "alive", "dead" (joined, its process gone, not detached yet) or "left".
    state: &'static str,
    cursor: u64,
    lag: u64,
    generation: u64,
}

impl Broadcast {
    fn live(&self) -> impl Iterator<Item = &Reader> {
        self.readers.iter().filter(|r| r.state != "left")
    }

    /// The largest lag of a reader that holds its place, and how many of those are dead.
    fn lag_cell(&self) -> String {
        let max = self.live().map(|r| r.lag).max();
        let dead = self.live().filter(|r| r.state == "dead").count();
        match (max, dead) {
            (None, _) => "-".into(),
            (Some(m), 0) => m.to_string(),
            (Some(m), d) => format!("{m} ({d} dead)"),
        }
    }
}

#[derive(Serialize)]
struct Peer {
    role: &'static str,
    index: usize,
    alive: bool,
    last_pid: u32,
}

fn row(info: &SegmentInfo) -> Row {
    let h = info.header;
    Row {
        name: info.name.clone(),
        kind: info.kind.map_or("?", |k| k.as_str()).to_owned(),
        capacity: h.map_or(0, |h| h.capacity),
        slot_size: h.map_or(0, |h| h.slot_size),
        used: info.used(),
        file_len: info.file_len,
        mode: format!("{:04o}", info.mode),
        uid: info.uid,
        age_secs: info.age_secs(),
        creator_pid: h.map_or(0, |h| h.creator_pid),
        wait: match h.map(|h| h.wait) {
            Some(1) => "spin".into(),
            Some(2) => "futex".into(),
            Some(3) => "semaphore".into(),
            other => format!("{other:?}"),
        },
        version: h.map_or(0, |h| h.version),
        initialised: info.initialised,
        participants: info
            .participants
            .iter()
            .map(|p| Peer {
                role: p.role,
                index: p.index,
                alive: p.alive,
                last_pid: p.last_pid,
            })
            .collect(),
        broadcast: info.broadcast.as_ref().map(|b| Broadcast {
            policy: b.policy.unwrap_or("?").to_owned(),
            history: b.history,
            tail: b.tail,
            readers: b
                .readers
                .iter()
                .map(|r| Reader {
                    place: r.place,
                    state: if r.dead() {
                        "dead"
                    } else if r.active {
                        "alive"
                    } else {
                        "left"
                    },
                    cursor: r.cursor,
                    lag: r.lag,
                    generation: r.generation,
                })
                .collect(),
        }),
        problems: info.problems.clone(),
    }
}

fn peers_cell(r: &Row) -> String {
    let alive = |role| {
        r.participants
            .iter()
            .filter(|p| p.role == role && p.alive)
            .count()
    };
    let total = |role| r.participants.iter().filter(|p| p.role == role).count();
    format!(
        "tx {}/{} rx {}/{} alive",
        alive("sender"),
        total("sender"),
        alive("receiver"),
        total("receiver")
    )
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<32} {:<9} {:>10} {:>10} {:<24} {:<9} {:>12} {:>8} PROBLEMS",
        "NAME", "KIND", "CAPACITY", "USED", "PEERS", "POLICY", "MAX LAG", "AGE"
    );
    for r in rows {
        let used = r.used.map_or("-".into(), |u| u.to_string());
        let (policy, lag) = r.broadcast.as_ref().map_or(("-".into(), "-".into()), |b| {
            (b.policy.clone(), b.lag_cell())
        });
        println!(
            "{:<32} {:<9} {:>10} {:>10} {:<24} {:<9} {:>12} {:>7}s {}",
            r.name,
            r.kind,
            r.capacity,
            used,
            peers_cell(r),
            policy,
            lag,
            r.age_secs,
            if r.problems.is_empty() {
                "-".into()
            } else {
                r.problems.join("; ")
            }
        );
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmring: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> shmring::Result<ExitCode> {
    match cli.cmd {
        Cmd::Ls { json } => {
            let rows: Vec<Row> = inspect::list()?.iter().map(row).collect();
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&rows).expect("serialisable")
                );
            } else {
                print_table(&rows);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Inspect { name, json } => {
            let Some(info) = inspect::inspect(&name)? else {
                eprintln!("shmring: {name} is not a shmring segment");
                return Ok(ExitCode::from(1));
            };
            let r = row(&info);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&r).expect("serialisable")
                );
            } else {
                println!("name          {}", r.name);
                println!("kind          {}", r.kind);
                println!("version       {}", r.version);
                println!("initialised   {}", r.initialised);
                println!("wait          {}", r.wait);
                println!("capacity      {}", r.capacity);
                println!("slot size     {}", r.slot_size);
                println!(
                    "used          {}",
                    r.used.map_or("-".into(), |u| u.to_string())
                );
                println!("file length   {}", r.file_len);
                println!("mode / uid    {} / {}", r.mode, r.uid);
                println!("creator pid   {}", r.creator_pid);
                println!("age           {} s", r.age_secs);
                for p in &r.participants {
                    println!(
                        "{:<8} {:>3}  {}  (last pid {})",
                        p.role,
                        p.index,
                        if p.alive { "alive" } else { "dead or absent" },
                        p.last_pid
                    );
                }
                if let Some(b) = &r.broadcast {
                    println!("policy        {}", b.policy);
                    println!("history       {}", b.history);
                    println!("tail          {}", b.tail);
                    println!("max lag       {}", b.lag_cell());
                    for x in &b.readers {
                        println!(
                            "reader   {:>3}  {:<5}  cursor {}  lag {}  (taken {} times)",
                            x.place, x.state, x.cursor, x.lag, x.generation
                        );
                    }
                }
                if r.problems.is_empty() {
                    println!("problems      none");
                } else {
                    for p in &r.problems {
                        println!("problem       {p}");
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Rm { names } => {
            let mut failed = false;
            for name in names {
                match inspect::remove(&name) {
                    Ok(Some(info)) => {
                        if info.any_alive() {
                            eprintln!(
                                "note: {} still has live participants; they keep their mapping",
                                info.name
                            );
                        }
                        println!("removed {}", info.name);
                    }
                    Ok(None) => {
                        eprintln!("shmring: {name} is not a shmring segment; not touched");
                        failed = true;
                    }
                    Err(e) => {
                        eprintln!("shmring: {e}");
                        failed = true;
                    }
                }
            }
            Ok(if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Cmd::Gc {
            dry_run,
            min_age,
            prefix,
            json,
        } => {
            let mut removed = Vec::new();
            for info in inspect::list()? {
                let wanted = prefix
                    .as_deref()
                    .is_none_or(|p| info.name.trim_start_matches('/').starts_with(p));
                if !wanted || info.any_alive() || info.age_secs() < min_age {
                    continue;
                }
                if !dry_run {
                    // Checked again as it is removed: still a shmring segment, or left alone.
                    match inspect::remove(&info.name) {
                        Ok(Some(_)) => {}
                        Ok(None) => continue,
                        Err(e) => {
                            eprintln!("shmring: {e}");
                            continue;
                        }
                    }
                }
                removed.push(info.name);
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&removed).expect("serialisable")
                );
            } else {
                for n in &removed {
                    println!("{} {n}", if dry_run { "would remove" } else { "removed" });
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
