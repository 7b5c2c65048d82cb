//! How a pod spec refers to a Secret: `envFrom`, `env` secret key refs,
//! secret volumes and projected volumes, in every container kind.

use k8s_openapi::api::core::v1::PodSpec;

/// How a pod spec uses a Secret: `envFrom`, `env:VAR`, `volume:NAME`
/// (a `secret` volume) or `projected:NAME` (a projected volume source).
/// Init and ephemeral containers count too.
pub fn references(spec: &PodSpec, secret: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut add = |r: String| {
        if !refs.contains(&r) {
            refs.push(r);
        }
    };
    let env_users = spec
        .containers
        .iter()
        .map(|c| (&c.env_from, &c.env))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| (&c.env_from, &c.env)),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (&c.env_from, &c.env)),
        );
    for (env_from, env) in env_users {
        for ef in env_from.iter().flatten() {
            if ef.secret_ref.as_ref().is_some_and(|r| r.name == secret) {
                add("envFrom".into());
            }
        }
        for var in env.iter().flatten() {
            let by_secret = var
                .value_from
                .as_ref()
                .and_then(|vf| vf.secret_key_ref.as_ref())
                .is_some_and(|r| r.name == secret);
            if by_secret {
                add(format!("env:{}", var.name));
            }
        }
    }
    for vol in spec.volumes.iter().flatten() {
        if vol.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some(secret) {
            add(format!("volume:{}", vol.name));
        }
        let projected = vol
            .projected
            .as_ref()
            .and_then(|p| p.sources.as_ref())
            .is_some_and(|srcs| {
                srcs.iter()
                    .any(|s| s.secret.as_ref().is_some_and(|s| s.name == secret))
            });
        if projected {
            add(format!("projected:{}", vol.name));
        }
    }
    refs
}
