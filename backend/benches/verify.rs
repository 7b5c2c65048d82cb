//! Token verification, in process: what every API request pays before its
//! handler runs. `cargo bench -p kube-dc-backend --bench verify`.

#![allow(clippy::disallowed_macros)]

use std::sync::Arc;
use std::time::Instant;

use kube_dc_backend::authn::OidcVerifier;
use kube_dc_testsupport::testing::TestIssuer;

const N: usize = 20_000;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let issuer = TestIssuer::start().await;
        let v = Arc::new(OidcVerifier::new(
            &issuer.url,
            "kube-dc",
            reqwest::Client::new(),
        ));
        let token = issuer.token("dev", &["devs"], Some("acme"));
        v.verify(&token).await.unwrap(); // fetch the keys once
        for round in 1..=3 {
            let t = Instant::now();
            for _ in 0..N {
                v.verify(&token).await.unwrap();
            }
            let per = t.elapsed() / N as u32;
            println!("round {round}: {N} RS256 verifications, {per:?} each");
        }
    });
}
