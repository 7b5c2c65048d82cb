//! The assembled backend: its configuration, and the store, identity,
//! role bindings and project owners it serves requests with — opened for
//! the `serve` binary or embedded in the CLI's `local` context. Requests
//! reach it through `http::router`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::audit_key::AuditKey;
use crate::authn::{Authenticator, Identity};
use crate::authz::{Binding, Bindings, OrgAdmins, Role};
use crate::dirs::{private_dir, restrict_dir};
use crate::open_error::OpenError;
use crate::store::{self, Store};
use crate::{clock, crypto, kube, openbao, projects};

/// How long an elevation window lasts unless configured otherwise.
pub const DEFAULT_ELEVATION_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Clone, Debug)]
/// How a backend is set up: where its data lives and how it behaves.
pub struct Config {
    /// The data directory: the SQLite store and the master key.
    pub data_dir: PathBuf,
    /// Kubernetes manifests that model the cluster (namespaces, Secrets,
    /// workloads), if any.
    pub manifests_dir: Option<PathBuf>,
    /// How long an elevation window lasts.
    pub elevation_ttl: Duration,
    /// Org admins need an elevation window to read values (false: "tag
    /// only" — reads are allowed and tagged with the window if one is open).
    pub enforce_elevation: bool,
    /// Test-only fault injection: the name of a step that fails on purpose
    /// (`import`, `create`), to prove that nothing is left behind.
    #[cfg(feature = "test-support")]
    pub fault: Option<String>,
    /// Master key (base64) instead of the key file.
    pub master_key: Option<String>,
    /// What "now" is: the system clock, or a manual one in tests.
    pub clock: clock::Clock,
    /// Events of reads that reveal no value commit without an fsync (see
    /// `Store::relax_read_events`): the CLI's local store.
    pub relax_read_events: bool,
    /// Where values live: `None` sealed in SQLite, else OpenBao.
    pub openbao: Option<openbao::OpenBaoConfig>,
    /// Open without values (any engine accepted; `verify-audit`).
    pub without_values: bool,
    /// How many batches of changes an open change stream may fall behind
    /// before it reads what it missed from the audit log instead.
    pub watch_backlog: usize,
    /// The audit signing key the operator supplies (PKCS#8 PEM), instead
    /// of the data directory's own.
    pub audit_key_file: Option<PathBuf>,
    /// A PostgreSQL server for the records, elevations and audit chains
    /// (`postgres://…`), instead of the data directory's SQLite file:
    /// several replicas may share it.
    pub database: Option<String>,
    /// The master key's file, instead of the data directory's (every
    /// replica on one database is given the same one).
    pub master_key_file: Option<PathBuf>,
}

impl Config {
    /// The defaults for a data directory: values sealed in SQLite, elevation
    /// enforced, the system clock.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            manifests_dir: None,
            elevation_ttl: DEFAULT_ELEVATION_TTL,
            enforce_elevation: true,
            #[cfg(feature = "test-support")]
            fault: None,
            master_key: None,
            clock: clock::Clock::System,
            relax_read_events: false,
            openbao: None,
            without_values: false,
            watch_backlog: crate::changes::BACKLOG,
            audit_key_file: None,
            database: None,
            master_key_file: None,
        }
    }
}

/// A running backend: its store, who may call it and what they may do,
/// and its configuration. Shared by every request.
pub struct Backend {
    /// Secrets, versions, elevations and the audit chains.
    pub store: Arc<Store>,
    /// How callers are identified.
    pub auth: Authenticator,
    /// Who holds which role where.
    pub bindings: Bindings,
    /// Which organization and project own each namespace.
    pub projects: projects::Projects,
    /// What it was opened with.
    pub config: Config,
    /// The change stream's hub (started by the first stream).
    pub changes: crate::changes::Hub,
    /// The audit signing key, loaded (or made) when first needed.
    audit_key: std::sync::OnceLock<Arc<AuditKey>>,
    /// This process among the replicas on one database (a lease holder).
    replica: String,
}

/// The machine's name, for lease holders' names.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into())
}

/// A database URL without its password, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "the --database URL".into(),
    }
}

impl Backend {
    /// Opens the data directory (made owner-only if new), its master key and
    /// store, the value engine and the manifests, and checks the engine
    /// against the records.
    pub fn open(
        config: Config,
        auth: Authenticator,
        bindings: Bindings,
    ) -> Result<Arc<Self>, OpenError> {
        private_dir(&config.data_dir)
            .map_err(|e| OpenError::io("cannot create data directory", &config.data_dir, e))?;
        restrict_dir(&config.data_dir);
        let cipher = match (&config.master_key_file, &config.master_key) {
            (Some(file), key) => {
                if key.is_some() {
                    tracing::warn!(
                        "{} is set and --master-key-file is given: the file's key is used",
                        crypto::MASTER_KEY_ENV
                    );
                }
                crypto::Cipher::load_file(file)?
            }
            (None, key) => crypto::Cipher::load_or_create(&config.data_dir, key.as_deref())?,
        };
        let cipher = Arc::new(cipher);
        let values: Arc<dyn store::Values> = match (&config.openbao, config.without_values) {
            (_, true) => Arc::new(store::NoValues),
            (None, false) => Arc::new(store::SqliteValues::new(cipher.clone())),
            // On the server's runtime when opened from one with worker
            // threads; else on a runtime of its own.
            (Some(cfg), false) => {
                Arc::new(openbao::OpenBaoValues::new(cfg.clone()).map_err(OpenError::Engine)?)
            }
        };
        let opened = match &config.database {
            None => Store::open_with(&config.data_dir, cipher, values),
            Some(url) => Store::open_postgres(url, cipher, values),
        };
        let mut store = opened.map_err(|source| OpenError::Store {
            path: match &config.database {
                None => config.data_dir.clone(),
                Some(url) => PathBuf::from(redact_url(url)),
            },
            source,
        })?;
        if config.relax_read_events {
            store = store.relax_read_events();
        }
        let store = Arc::new(store);
        let manifests = kube::Manifests::load(config.manifests_dir.as_deref(), "");
        let projects = projects::Projects::build(&bindings, &manifests.namespaces);
        for ns in projects.ambiguous() {
            tracing::warn!(
                "namespace {ns:?} is claimed by more than one owner; requests for it are refused"
            );
        }
        let b = Arc::new(Self {
            store,
            auth,
            bindings,
            projects,
            config,
            changes: Default::default(),
            audit_key: Default::default(),
            replica: format!(
                "{}:{}:{}",
                hostname(),
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            ),
        });
        if b.config.openbao.is_some() && !b.config.without_values {
            let b2 = b.clone();
            std::thread::spawn(move || b2.reconcile_values())
                .join()
                .map_err(|_| OpenError::Engine("reconciling values: panicked".into()))?
                .map_err(OpenError::Engine)?;
        }
        Ok(b)
    }

    /// This process's name as a lease holder (see `Store::lease`).
    pub fn replica_id(&self) -> &str {
        &self.replica
    }

    /// Finds the writes OpenBao kept that the SQL store never recorded
    /// (nor audited), lists them, and reports each: in the log, and as an
    /// audit event `secrets.reconcile` of the owning organization, which
    /// commits with the listing.
    fn reconcile_values(&self) -> Result<(), String> {
        // One replica at a time compares: another that holds the lease is
        // doing the same comparison of the same database.
        let lease = "reconcile";
        let held = self
            .store
            .lease(lease, &self.replica, 5 * 60 * 1000)
            .map_err(|e| format!("taking the reconciliation lease: {e}"))?;
        if !held {
            tracing::info!("another replica is reconciling the store with OpenBao");
            return Ok(());
        }
        let out = self.reconcile_values_held();
        let _ = self.store.release_lease(lease, &self.replica);
        out
    }

    fn reconcile_values_held(&self) -> Result<(), String> {
        let owner = |ns: &str| match self.projects.owner(ns) {
            Ok(o) => (o.org.clone(), o.project.clone().unwrap_or_default()),
            Err(_) => (String::new(), String::new()),
        };
        self.store
            .reconcile_values(owner, || self.now())
            .map_err(|e| format!("comparing the SQL store with OpenBao: {e}"))?;
        Ok(())
    }

    /// The embedded backend of the CLI's `local` context: the given identity
    /// is admin of every project of organization `org` and admin of that
    /// organization. Manifests are read from `DATA_DIR/manifests`.
    pub fn embedded(
        data_dir: impl Into<PathBuf>,
        org: &str,
        user: &str,
    ) -> Result<Arc<Self>, OpenError> {
        Self::embedded_as(data_dir, org, user, None)
    }

    /// [`Backend::embedded`], the identity acting in one role to try it:
    /// `Some(role)` in every project of the organization (and not its
    /// admin), or `None` with the role `org-admin` meaning only an
    /// organization admin (values through an elevation window).
    pub fn embedded_as(
        data_dir: impl Into<PathBuf>,
        org: &str,
        user: &str,
        acting: Option<Acting>,
    ) -> Result<Arc<Self>, OpenError> {
        let mut config = Config::new(data_dir);
        config.manifests_dir = Some(config.data_dir.join("manifests"));
        config.relax_read_events = true;
        let identity = Identity {
            subject: format!("local:{user}"),
            username: user.to_string(),
            email: String::new(),
            groups: vec![],
            org: Some(org.to_string()),
            namespaces: vec![format!("{org}-default")],
        };
        let mut bindings = Bindings {
            org_admin_group: "org-admin".into(),
            ..Default::default()
        };
        let (org_admin, role) = match acting {
            None => (true, Some(Role::Admin)),
            Some(Acting::OrgAdmin) => (true, None),
            Some(Acting::Project(r)) => (false, Some(r)),
        };
        bindings.orgs.insert(
            org.to_string(),
            OrgAdmins {
                admin_groups: vec![],
                admin_users: if org_admin {
                    vec![user.to_string()]
                } else {
                    vec![]
                },
                projects: vec!["default".to_string()],
            },
        );
        if let Some(role) = role {
            bindings.bindings.push(Binding {
                group: None,
                user: Some(user.to_string()),
                namespace: format!("{org}-*"),
                role,
            });
        }
        Self::open(config, Authenticator::Fixed(identity), bindings)
    }

    /// The step a test asked to fail (always none outside tests).
    pub(crate) fn fault_hook(&self) -> Option<String> {
        #[cfg(feature = "test-support")]
        return self.config.fault.clone();
        #[cfg(not(feature = "test-support"))]
        None
    }

    /// Now, in epoch milliseconds, by the configured clock.
    pub fn now(&self) -> i64 {
        self.config.clock.now_ms()
    }

    /// The audit signing key: the operator's (`audit_key_file`), else the
    /// data directory's, made on first use.
    pub fn audit_key(&self) -> Result<Arc<AuditKey>, crate::crypto::KeyError> {
        if let Some(k) = self.audit_key.get() {
            return Ok(k.clone());
        }
        let k = Arc::new(AuditKey::load_or_create(
            &self.config.data_dir,
            self.config.audit_key_file.as_deref(),
        )?);
        Ok(self.audit_key.get_or_init(|| k).clone())
    }

    /// The store for async callers.
    pub fn db(&self) -> store::AsyncStore {
        store::AsyncStore(self.store.clone())
    }
}

/// Who the local context's identity acts as (`kube-dc --as ROLE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acting {
    /// This role in every project of the organization, and not its admin.
    Project(Role),
    /// The organization's admin only: values through an elevation window.
    OrgAdmin,
}
