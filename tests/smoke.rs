use shmring::{spsc, Config, Error};

#[test]
fn smoke() {
    let name = format!("smoke-{}", std::process::id());
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(256)).unwrap();
    let mut rx = spsc::Receiver::open(&name).unwrap();
    for i in 0..1000u32 {
        let msg = vec![i as u8; (i % 100) as usize];
        tx.send(&msg).unwrap();
        let got = rx.recv().unwrap();
        assert_eq!(&*got, &msg[..]);
    }
    assert!(matches!(rx.try_recv(), Err(Error::Empty)));
    drop(tx);
    assert!(matches!(rx.recv(), Err(Error::Disconnected)));
}
