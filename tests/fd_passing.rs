//! Anonymous (memfd) segments handed to another process over a Unix socket.

mod common;

use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use common::{child_param, is_child, spawn_self, unique_name};
use shmring::segment::fd_passing::{recv_fd, send_fd};
use shmring::{spsc, Config, Error};

#[test]
fn anonymous_segment_crosses_to_an_unrelated_process() {
    const TEST: &str = "anonymous_segment_crosses_to_an_unrelated_process";
    if is_child() {
        let sock = UnixStream::connect(child_param("SOCK").unwrap()).unwrap();
        let mut rx = spsc::Receiver::from_fd(recv_fd(&sock).unwrap(), Config::default()).unwrap();
        for i in 0..10_000u64 {
            assert_eq!(rx.recv_pod::<u64>().unwrap(), i);
        }
        assert!(matches!(rx.recv(), Err(Error::Disconnected)));
        return;
    }
    let shm_before: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
    let path = std::env::temp_dir().join(format!("{}.sock", unique_name("fdpass")));
    let listener = UnixListener::bind(&path).unwrap();
    let mut tx = spsc::Sender::create_anonymous(Config::default().capacity(4096)).unwrap();
    assert!(tx.name().starts_with("memfd:"));
    let child = spawn_self(TEST, &[("SOCK", path.display().to_string())]);
    let (sock, _) = listener.accept().unwrap();
    send_fd(&sock, tx.segment_fd()).unwrap();
    std::fs::remove_file(&path).unwrap();
    for i in 0..10_000u64 {
        tx.send_pod(&i).unwrap();
    }
    drop(tx);
    child.join(Duration::from_secs(30));
    let shm_after: Vec<_> = std::fs::read_dir("/dev/shm").unwrap().collect();
    assert!(
        shm_after.len() <= shm_before.len(),
        "an anonymous segment left a name in /dev/shm"
    );
}

/// A descriptor that is not a sealed memfd (a named segment here, which its holder could
/// truncate) is refused: mapping it would expose us to SIGBUS.
#[test]
fn an_unsealed_descriptor_is_refused() {
    let name = unique_name("unsealed");
    let _tx = spsc::Sender::create(&name, Config::default()).unwrap();
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/dev/shm/{name}"))
        .unwrap();
    match spsc::Receiver::from_fd(file.into(), Config::default()) {
        Err(Error::Incompatible(m)) => {
            assert!(m.contains("not sealed") || m.contains("not a memfd"), "{m}")
        }
        other => panic!("expected Incompatible, got {:?}", other.map(|_| ())),
    }
}

/// The anonymous segment is sealed: nobody holding its descriptor can shrink it.
#[test]
fn anonymous_segment_cannot_be_shrunk() {
    let tx = spsc::Sender::create_anonymous(Config::default()).unwrap();
    let fd = tx.segment_fd().try_clone_to_owned().unwrap();
    let err = nix::unistd::ftruncate(&fd, 4096).unwrap_err();
    assert_eq!(err, nix::errno::Errno::EPERM);
}
