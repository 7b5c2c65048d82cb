//! What kube-dc's test suites and benchmarks share and the shipped crates
//! never contain: a local OIDC issuer that mints tokens from fixed test
//! keys (`testing`), and a `bao server -dev` for the OpenBao tests
//! (`bao_dev`), a value engine driven by a script for the write
//! protocol's failure windows (`scripted`), and the benchmarks' common
//! parts (`bench`). A dev-dependency only.

pub mod bao_dev;
pub mod bench;
pub mod haproxy;
pub mod pg;
pub mod scripted;
pub mod testing;
