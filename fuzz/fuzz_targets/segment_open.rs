//! See `shmring::fuzzing::segment_open`. Run: `cargo +nightly fuzz run segment_open` (in fuzz/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::segment_open(data);
});
