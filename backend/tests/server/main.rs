//! The backend's integration tests, one runner: a real backend on
//! 127.0.0.1 over real HTTP with tokens from a test issuer; the same API
//! suite on OpenBao (`KUBE_DC_TEST_STORE=openbao`), `serve` as a process,
//! and a Raft cluster. A module per suite; filter with its path
//! (`cargo test -p kube-dc-backend --test server api::`).

mod common;

mod api;
mod contract;
mod openbao;
mod openbao_crash;
mod openbao_raft;
mod protocol;
mod replicas;
mod serve;
