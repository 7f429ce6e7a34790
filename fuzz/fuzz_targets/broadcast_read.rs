//! See `shmring::fuzzing::broadcast_read`. Run: `cargo +nightly fuzz run broadcast_read` (in fuzz/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::broadcast_read(data);
});
