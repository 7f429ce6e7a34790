//! See `shmring::fuzzing::mpmc_read`. Run: `cargo +nightly fuzz run mpmc_read` (in fuzz/).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shmring::fuzzing::mpmc_read(data);
});
