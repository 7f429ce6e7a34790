//! Plain-old-data structs over an SPSC channel with bytemuck: no serialisation, one copy each way.
//!
//! ```text
//! cargo run --example typed
//! ```

use bytemuck::{Pod, Zeroable};
use shmring::{spsc, Config, Error};

/// A market order as it travels: `#[repr(C)]`, no padding, no pointers.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
struct Order {
    id: u64,
    price_ticks: i64,
    quantity: u32,
    side: u32, // 0 = buy, 1 = sell
}

fn main() -> shmring::Result<()> {
    let name = format!("typed-example-{}", std::process::id());
    let mut tx = spsc::Sender::create(&name, Config::default().capacity(1 << 16))?;
    // The receiver would normally be another process; a thread shows the same calls.
    let mut rx = spsc::Receiver::open(&name)?;
    let consumer = std::thread::spawn(move || -> shmring::Result<(u64, i64)> {
        let (mut n, mut notional) = (0u64, 0i64);
        loop {
            match rx.recv_pod::<Order>() {
                Ok(o) => {
                    n += 1;
                    notional += o.price_ticks * i64::from(o.quantity);
                }
                Err(Error::Disconnected) => return Ok((n, notional)),
                Err(e) => return Err(e),
            }
        }
    });
    let mut expected = 0i64;
    for id in 0..100_000u64 {
        let order = Order {
            id,
            price_ticks: 10_000 + (id % 50) as i64,
            quantity: 1 + (id % 7) as u32,
            side: (id % 2) as u32,
        };
        expected += order.price_ticks * i64::from(order.quantity);
        tx.send_pod(&order)?;
    }
    drop(tx); // closes the channel: the consumer drains, then sees Disconnected
    let (n, notional) = consumer.join().expect("consumer thread")?;
    assert_eq!(notional, expected);
    println!("received {n} orders, notional {notional} ticks");
    Ok(())
}
