//! `--dry-run`: a change is printed (values masked unless `--show-values`)
//! instead of sent.

use http::Method;

use super::{Client, Transport};
use crate::error::{CliError, ErrorKind};

impl Client {
    /// Prints changes instead of sending them (`--dry-run`); values masked
    /// unless `show_values`.
    pub fn dry_run(mut self, on: bool, show_values: bool) -> Self {
        self.dry_run = on.then_some(show_values);
        self
    }

    /// `--dry-run`: prints the change and stops the command.
    pub(super) fn print_dry_run(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        show: bool,
    ) -> CliError {
        let base = match &self.transport {
            #[cfg(feature = "local")]
            Transport::Local(_) => "local:".to_string(),
            Transport::Http { base, .. } => base.clone(),
        };
        let mut out = format!("dry run: {method} {base}{path}\n");
        if let Some(b) = body {
            let mut v: serde_json::Value = serde_json::from_slice(b).unwrap_or_default();
            if !show {
                mask_values(&mut v);
            }
            out.push_str(&serde_json::to_string_pretty(&v).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("(nothing was sent)\n");
        if let Err(e) = crate::output::raw_stdout(out.as_bytes()) {
            return e;
        }
        CliError::new(ErrorKind::DryRun, "dry run")
    }
}

/// Replaces every value under a `data` or `initialValues` object with a
/// note of its size.
fn mask_values(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, child) in map.iter_mut() {
                if let ("data" | "initialValues", Value::Object(values)) = (k.as_str(), &mut *child)
                {
                    for val in values.values_mut() {
                        let n = val.as_str().map_or(0, str::len);
                        *val =
                            Value::String(format!("(masked, {n} bytes; --show-values shows it)"));
                    }
                } else {
                    mask_values(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_values),
        _ => {}
    }
}
