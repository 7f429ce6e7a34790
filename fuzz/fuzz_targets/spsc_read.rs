//! The SPSC read path over arbitrary ring bytes and positions: no crash, no hang, no access
//! outside the ring. Run: `cargo +nightly fuzz run spsc_read` (in fuzz/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::spsc_read(data);
});
