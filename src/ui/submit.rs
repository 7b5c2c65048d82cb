//! A filled form as the request the matching CLI verb sends: the same
//! checks (kube-dc-api's validators, the 1 MiB limit), the same body. An
//! error names the field and what to do; nothing is sent until every field
//! passes.

use kube_dc_api::validate;
use kube_dc_api::wire::{CreateRequest, ImportRequest, PutValuesRequest, SyncPatch, SyncSpec};

use super::form::{Form, Input, Kind};
use crate::api::Sensitive;
use kube_dc_api::wire::Data;

/// What a form asks the API for.
#[derive(Debug)]
pub enum Request {
    /// `secrets create NAME …` (initial values in the same request).
    Create(String, CreateRequest),
    /// `secrets import NAME --from …`.
    Import(String, ImportRequest),
    /// `secrets edit NAME`'s write: check-and-set on the version read;
    /// `removed` are the keys the new version no longer has.
    Put {
        name: String,
        req: PutValuesRequest,
        removed: Vec<String>,
        unchanged: bool,
    },
    /// `secrets sync NAME …` with only the changed settings.
    Sync(String, SyncPatch),
}

type Checked<T> = std::result::Result<T, String>;

fn opt(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A refused field said as the form names it.
fn field_error(e: validate::Invalid) -> String {
    let label = match e.field {
        validate::Field::SyncTarget => "Target",
        validate::Field::SyncRefresh => "Refresh",
        validate::Field::SyncKeys => "Keys",
        validate::Field::Description => "Description",
        validate::Field::Values => return e.message,
    };
    format!("{label}: {}", e.message)
}

/// The sync fields as the form has them (empty = not given).
fn check_sync(target: &str, refresh: &str, keys: &[String]) -> Checked<()> {
    let given = |t: &str| (!t.is_empty()).then_some(t.to_string());
    validate::check_sync(given(target).as_deref(), given(refresh).as_deref(), keys)
        .map_err(field_error)
}

fn description(text: &str) -> Checked<()> {
    validate::check_description(text).map_err(field_error)
}

impl Form {
    /// The values of the rows: empty rows are skipped; a file row reads
    /// its file now, exactly as it is.
    pub fn data(&self) -> Checked<Data> {
        let mut data = Data::new();
        for (i, r) in self.rows.iter().enumerate() {
            if r.is_empty() {
                continue;
            }
            let row = format!("value row {}", i + 1);
            validate::check_key(&r.key).map_err(|e| format!("{row}: {e}"))?;
            let value = match &r.file {
                Some(path) if path.is_empty() => {
                    return Err(format!("{row} ({}): type the file's path", r.key));
                }
                Some(path) => Sensitive::new(
                    crate::input::file_value(path, &format!("{row} ({})", r.key))
                        .map_err(|e| e.message)?,
                ),
                None => r.value.clone(),
            };
            if data.insert(r.key.clone(), value).is_some() {
                return Err(format!("{row}: key {:?} is given twice", r.key));
            }
        }
        validate::check_values_size(validate::values_size(&data)).map_err(field_error)?;
        Ok(data)
    }

    /// The request this form sends, or what is wrong with it.
    pub fn request(&self, ns: &str) -> Checked<Request> {
        match &self.kind {
            Kind::Create => self.create_request(),
            Kind::Import => self.import_request(ns),
            Kind::Put {
                name,
                version,
                before,
            } => self.put_request(name, *version, before),
            Kind::Sync { name, before } => self.sync_request(name, before),
        }
    }

    /// `secrets create NAME …`: the initial values in the same request.
    fn create_request(&self) -> Checked<Request> {
        let name = self.text("Name");
        validate::check_name("secret name", &name)?;
        description(&self.text("Description"))?;
        let sync = if self.toggle("Sync") {
            let target = self.text("Target");
            let keys = validate::split_keys(&self.text("Keys"));
            check_sync(&target, &self.text("Refresh"), &keys)?;
            SyncSpec {
                enabled: true,
                target_secret_name: opt(target),
                refresh_interval: opt(self.text("Refresh")),
                keys: (!keys.is_empty()).then_some(keys),
            }
        } else {
            // Sync off means just that, as `create --sync-disabled`.
            SyncSpec {
                enabled: false,
                ..SyncSpec::default()
            }
        };
        let data = self.data()?;
        Ok(Request::Create(
            name,
            CreateRequest {
                kind: self.choice("Type").to_string(),
                description: opt(self.text("Description")),
                sync,
                rotation: None,
                initial_values: (!data.is_empty()).then_some(data),
            },
        ))
    }

    /// `secrets import NAME --from …`; another namespace only when ticked.
    fn import_request(&self, ns: &str) -> Checked<Request> {
        let from = self.text("Source");
        validate::check_name("Source", &from)?;
        let cross = self.toggle("Cross-ns");
        let source_ns = self.text("Namespace");
        if cross {
            validate::check_name("Namespace", &source_ns)?;
        } else if !source_ns.is_empty() && source_ns != ns {
            return Err(format!(
                "Namespace: the source is in {source_ns:?}, not {ns:?}; tick Cross-ns (an audited cross-namespace read) or clear the namespace"
            ));
        }
        let name = opt(self.text("Name")).unwrap_or_else(|| from.clone());
        validate::check_name("Name", &name)?;
        description(&self.text("Description"))?;
        let kind = match self.choice("Type") {
            "(default)" => None,
            k => Some(k.to_string()),
        };
        Ok(Request::Import(
            name,
            ImportRequest {
                source_secret_name: from,
                source_secret_namespace: cross.then_some(source_ns),
                kind,
                description: opt(self.text("Description")),
                allow_cross_namespace: cross.then_some(true),
            },
        ))
    }

    /// `secrets edit NAME`'s write: check-and-set on the version read.
    fn put_request(&self, name: &str, version: u64, before: &Data) -> Checked<Request> {
        let data = self.data()?;
        if data.is_empty() {
            return Err(format!(
                "no values: a version needs at least one key (to remove the secret, d deletes {name})"
            ));
        }
        let removed: Vec<String> = before
            .keys()
            .filter(|k| !data.contains_key(*k))
            .cloned()
            .collect();
        let unchanged = data == *before;
        Ok(Request::Put {
            name: name.to_string(),
            req: PutValuesRequest {
                data,
                cas: Some(version),
            },
            removed,
            unchanged,
        })
    }

    /// `secrets sync NAME …` with only the changed settings.
    fn sync_request(&self, name: &str, before: &[Input]) -> Checked<Request> {
        let now: Vec<&Input> = self.fields.iter().map(|f| &f.input).collect();
        let changed = |i: usize| now.get(i) != before.get(i).as_ref();
        let target = self.text("Target");
        let refresh_text = self.text("Refresh");
        let keys = validate::split_keys(&self.text("Keys"));
        // Only what changed is sent, so only that is checked.
        let none = String::new();
        check_sync(
            if changed(1) { &target } else { &none },
            if changed(2) { &refresh_text } else { &none },
            &keys,
        )?;
        let patch = SyncPatch {
            enabled: changed(0).then(|| self.toggle("Enabled")),
            // Cleared: back to the default (the secret's name; 1h).
            target_secret_name: changed(1).then(|| target.clone()),
            refresh_interval: changed(2).then(|| refresh_text.clone()),
            keys: changed(3).then_some(keys),
        };
        if patch == SyncPatch::default() {
            return Err("nothing changed: change a setting, or Esc to leave".into());
        }
        Ok(Request::Sync(name.to_string(), patch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Secret;

    fn set(f: &mut Form, label: &str, v: &str) {
        let field = f.fields.iter_mut().find(|x| x.label == label).unwrap();
        field.input = match &field.input {
            Input::Toggle(_) => Input::Toggle(v == "on"),
            _ => Input::Text(v.into()),
        };
    }

    #[test]
    fn create_sends_what_the_cli_sends_and_names_the_bad_field() {
        let mut f = Form::create("ns");
        assert!(f.request("ns").unwrap_err().contains("secret name"));
        set(&mut f, "Name", "db");
        set(&mut f, "Refresh", "5s");
        assert!(f.request("ns").unwrap_err().starts_with("Refresh:"));
        set(&mut f, "Refresh", "15m");
        f.rows[0].key = "PASSWORD".into();
        f.rows[0].value = Sensitive::new("pa$word ");
        let Request::Create(name, req) = f.request("ns").unwrap() else {
            panic!()
        };
        assert_eq!(name, "db");
        assert_eq!(req.sync.refresh_interval.as_deref(), Some("15m"));
        let v = req.initial_values.unwrap();
        assert_eq!(v["PASSWORD"].expose(), "pa$word ", "kept exactly");
        // Sync off sends no projection settings.
        set(&mut f, "Sync", "off");
        let Request::Create(_, req) = f.request("ns").unwrap() else {
            panic!()
        };
        assert!(!req.sync.enabled && req.sync.refresh_interval.is_none());
        f.rows.insert(1, f.rows[0].clone());
        assert!(f.request("ns").unwrap_err().contains("given twice"));
    }

    #[test]
    fn sync_sends_only_what_changed_and_put_names_removed_keys() {
        let s = Secret {
            name: "db".into(),
            ..Default::default()
        };
        let mut f = Form::sync(&s);
        assert!(f.request("ns").unwrap_err().starts_with("nothing changed"));
        set(&mut f, "Enabled", "off");
        let Request::Sync(_, p) = f.request("ns").unwrap() else {
            panic!()
        };
        assert_eq!(
            p,
            SyncPatch {
                enabled: Some(false),
                ..SyncPatch::default()
            }
        );
        let mut data = Data::new();
        data.insert("A".into(), Sensitive::new("1"));
        data.insert("B".into(), Sensitive::new("2"));
        let mut f = Form::put("db", 4, data);
        f.rows[1] = Default::default();
        let Request::Put { req, removed, .. } = f.request("ns").unwrap() else {
            panic!()
        };
        assert_eq!(removed, ["B"]);
        assert_eq!(req.cas, Some(4));
    }
}
