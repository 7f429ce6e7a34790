//! The `shmring` CLI against real segments: ls, inspect, rm (never a foreign file), gc.

mod common;

use std::process::Command;

use common::unique_name;
use shmring::{spsc, Config};

fn shmring(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(args)
        .output()
        .expect("run shmring");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ls_inspect_rm_and_gc() {
    let name = unique_name("cli");
    let mut tx =
        spsc::Sender::create(&name, Config::default().capacity(4096).persist(true)).unwrap();
    tx.send(b"twelve bytes").unwrap(); // 8 header + 16 payload (padded)

    let (code, out, _) = shmring(&["ls", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == format!("/{name}"))
        .expect("our segment is listed");
    assert_eq!(row["kind"], "spsc");
    assert_eq!(row["capacity"], 4096);
    assert_eq!(row["used"], 24);
    assert_eq!(row["mode"], "0600");
    let sender = &row["participants"][0];
    assert_eq!(
        (sender["role"].as_str(), sender["alive"].as_bool()),
        (Some("sender"), Some(true))
    );
    assert_eq!(row["participants"][1]["alive"], false);

    let (code, out, _) = shmring(&["inspect", &name]);
    assert_eq!(code, 0);
    assert!(out.contains("problems      none"), "{out}");

    // A file that is not ours is refused and left alone.
    let foreign = unique_name("foreign");
    std::fs::write(format!("/dev/shm/{foreign}"), b"not a segment").unwrap();
    let (code, _, err) = shmring(&["rm", &foreign]);
    assert_eq!(code, 1);
    assert!(err.contains("not a shmring segment"), "{err}");
    assert!(std::path::Path::new(&format!("/dev/shm/{foreign}")).exists());
    std::fs::remove_file(format!("/dev/shm/{foreign}")).unwrap();

    // While the sender lives, gc leaves it; once it is gone (persisted name), gc removes it.
    let (_, out, _) = shmring(&["gc", "--dry-run", "--min-age", "0", "--prefix", &name]);
    assert!(!out.contains(&name), "{out}");
    drop(tx);
    let (code, out, _) = shmring(&["gc", "--dry-run", "--min-age", "0", "--prefix", &name]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("would remove /{name}")), "{out}");
    assert!(std::path::Path::new(&format!("/dev/shm/{name}")).exists());
    let (code, out, _) = shmring(&["gc", "--min-age", "0", "--prefix", &name]);
    assert_eq!(code, 0);
    assert!(out.contains(&format!("removed /{name}")), "{out}");
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}

#[test]
fn rm_removes_a_shmring_segment() {
    let name = unique_name("clirm");
    let tx = spsc::Sender::create(&name, Config::default().persist(true)).unwrap();
    drop(tx);
    let (code, out, _) = shmring(&["rm", &name]);
    assert_eq!(code, 0, "{out}");
    assert!(!std::path::Path::new(&format!("/dev/shm/{name}")).exists());
}
