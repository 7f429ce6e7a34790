//! A tokio service that serves TCP clients and a shared-memory ring in one `select!`.
//!
//! It answers each TCP line with its length, and each message on the ring `/tokio-service`
//! (SPSC, created here) by printing it; it stops after `--quit-after` seconds (5 by default).
//!
//! ```text
//! cargo run --example tokio_service --features tokio
//! # elsewhere: nc 127.0.0.1 7878, and any process sending on shm /tokio-service
//! ```
//! With no argument it also plays both clients itself, so the example runs on its own.

use std::time::Duration;

use shmring::{spsc, Config};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

async fn serve_tcp(stream: TcpStream) -> std::io::Result<()> {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Some(line) = lines.next_line().await? {
        w.write_all(format!("{}\n", line.len()).as_bytes()).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = format!("tokio-service-{}", std::process::id());
    let mut ring =
        spsc::Receiver::create(&name, Config::default().capacity(1 << 16))?.into_async()?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("serving tcp on {addr} and shm /{name}");

    // The two demo clients: a TCP one and a shared-memory one (normally other processes).
    let shm_client = {
        let name = name.clone();
        tokio::spawn(async move {
            let mut tx = spsc::Sender::open(&name)?.into_async()?;
            for i in 0..3 {
                tx.send(format!("shm message {i}").as_bytes()).await?;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok::<_, shmring::Error>(())
        })
    };
    let tcp_client = tokio::spawn(async move {
        let mut s = TcpStream::connect(addr).await?;
        s.write_all(b"hello\nworld!\n").await?;
        let mut lines = BufReader::new(s).lines();
        let a = lines.next_line().await?;
        let b = lines.next_line().await?;
        println!("tcp client got {a:?} {b:?}");
        Ok::<_, std::io::Error>(())
    });

    let stop = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(stop);
    let mut shm_seen = 0;
    let mut ring_open = true;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = accepted?;
                println!("tcp client {peer}");
                tokio::spawn(serve_tcp(stream));
            }
            msg = ring.recv(), if ring_open => match msg {
                Ok(m) => {
                    shm_seen += 1;
                    println!("shm: {}", String::from_utf8_lossy(&m));
                }
                Err(shmring::Error::Disconnected) => {
                    println!("shm sender closed");
                    ring_open = false;
                }
                Err(e) => return Err(e.into()),
            },
            _ = &mut stop => break,
        }
    }
    shm_client.await??;
    tcp_client.await??;
    assert_eq!(shm_seen, 3);
    Ok(())
}
