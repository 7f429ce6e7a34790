//! loom models of shmring's rings and wait/wake protocol: see `tests/models.rs`.
//!
//! The models are compiled only with `RUSTFLAGS="--cfg shmring_loom"`; a plain `cargo test`
//! builds this crate empty. Run them with `.ci/loom`, or:
//!
//! ```text
//! RUSTFLAGS="--cfg shmring_loom" CARGO_TARGET_DIR=target/loom cargo test -p loom-tests --release
//! ```
