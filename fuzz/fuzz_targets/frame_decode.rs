//! See `shmring::fuzzing::frame_decode`. Run: `cargo +nightly fuzz run frame_decode` (in fuzz/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::frame_decode(data);
});
