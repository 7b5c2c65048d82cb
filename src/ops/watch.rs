//! Following a project's changes: the backend's change stream where it has
//! one (JSON lines, resumed by cursor after a dropped connection), else
//! polling the list's metadata (a production installation has no stream).
//! Either way the caller gets one [`ChangeLine`] per change and never a
//! value.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use futures_util::StreamExt;
use kube_dc_api::Route;
use kube_dc_api::wire::changes::CHANGE;
use kube_dc_api::wire::{ChangeLine, ItemList, Secret};

use crate::api::{ByteStream, Call, Client, query};
use crate::error::{CliError, ErrorKind, Result};

/// The default interval of polling where there is no stream.
pub const DEFAULT_POLL: Duration = Duration::from_secs(10);

/// Waits before reconnecting a dropped stream.
const RECONNECT: Duration = Duration::from_secs(1);

/// The largest line the stream may send.
const MAX_LINE: usize = 64 * 1024;

/// Where changes come from.
enum Feed {
    /// The backend's stream: its body, and the bytes of a line not yet
    /// complete.
    Stream { body: ByteStream, buf: Vec<u8> },
    /// Polling the list every `every`: what each secret was last time
    /// (its version and its whole metadata).
    Poll {
        every: Duration,
        seen: BTreeMap<String, (Option<u64>, String)>,
    },
}

/// An open watch of one project.
pub struct Watcher<'a> {
    client: &'a Client,
    ns: String,
    /// The last cursor the stream gave.
    cursor: Option<String>,
    feed: Feed,
    pending: VecDeque<ChangeLine>,
}

impl<'a> Watcher<'a> {
    /// Opens the stream and reads its first line, so that a list made after
    /// this returns misses no change; where the installation has no stream
    /// (404/405), says so on stderr and polls every `poll` instead.
    pub async fn open(client: &'a Client, ns: &str, poll: Duration) -> Result<Self> {
        if let Some(w) = Self::open_stream(client, ns).await? {
            return Ok(w);
        }
        crate::output::note(&format!(
            "this installation has no change stream; polling the list every {}s (--poll)",
            poll.as_secs_f32()
        ));
        let mut w = Self::new(client, ns, poll);
        let seen = w.snapshot().await?;
        w.feed = Feed::Poll { every: poll, seen };
        Ok(w)
    }

    /// The stream only: None where the installation has none (the caller
    /// has its own way to poll, e.g. the terminal view's refresh period).
    pub async fn open_stream(client: &'a Client, ns: &str) -> Result<Option<Self>> {
        let mut w = Self::new(client, ns, DEFAULT_POLL);
        match w.connect().await {
            Ok(()) => Ok(Some(w)),
            Err(e) if e.kind == ErrorKind::NotSupported => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Not connected yet: a poll of nothing seen.
    fn new(client: &'a Client, ns: &str, poll: Duration) -> Self {
        Watcher {
            client,
            ns: ns.to_string(),
            cursor: None,
            feed: Feed::Poll {
                every: poll,
                seen: BTreeMap::new(),
            },
            pending: VecDeque::new(),
        }
    }

    /// Opens the stream after the cursor, and reads up to its first line.
    async fn connect(&mut self) -> Result<()> {
        let call = Call::new(Route::WatchSecrets, &[&self.ns])
            .query(query(&[("after", self.cursor.clone())]))
            .extension(true);
        let s = self.client.call_streamed(call).await?;
        self.feed = Feed::Stream {
            body: s.body,
            buf: Vec::new(),
        };
        // The first line is a heartbeat with the starting cursor.
        match self.read_line().await? {
            Some(line) if line.is_change() => self.pending.push_back(line),
            Some(_) => {}
            None => {
                return Err(CliError::new(
                    ErrorKind::Network,
                    "the change stream closed at once",
                ));
            }
        }
        Ok(())
    }

    /// The next change: waits for it.
    pub async fn next(&mut self) -> Result<ChangeLine> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Ok(line);
            }
            match &mut self.feed {
                Feed::Poll { every, .. } => {
                    tokio::time::sleep(*every).await;
                    self.poll().await?;
                }
                Feed::Stream { .. } => match self.read_line().await {
                    Ok(Some(line)) if line.is_change() => return Ok(line),
                    Ok(Some(_)) => {}
                    // Dropped (the backend restarted, a proxy closed it):
                    // resume after the last cursor.
                    Ok(None) => {
                        crate::output::note("the change stream closed; reconnecting");
                        self.reconnect().await?;
                    }
                    Err(e) => {
                        crate::output::note(&format!(
                            "the change stream was lost ({}); reconnecting",
                            e.message
                        ));
                        self.reconnect().await?;
                    }
                },
            }
        }
    }

    async fn reconnect(&mut self) -> Result<()> {
        let mut said = false;
        loop {
            tokio::time::sleep(RECONNECT).await;
            match self.connect().await {
                Ok(()) => return Ok(()),
                // Gone for good: a cursor the backend does not know, a
                // right taken away.
                Err(e)
                    if matches!(
                        e.kind,
                        ErrorKind::Usage
                            | ErrorKind::PermissionDenied
                            | ErrorKind::NotFound
                            | ErrorKind::AuthRequired
                    ) || e.status == Some(410) =>
                {
                    return Err(e.context("resuming the change stream"));
                }
                Err(e) => {
                    if !said {
                        crate::output::note(&format!(
                            "cannot reach the change stream yet ({}); retrying every {}s",
                            e.message,
                            RECONNECT.as_secs()
                        ));
                        said = true;
                    }
                }
            }
        }
    }

    /// One line of the stream (its cursor kept); None at its end.
    async fn read_line(&mut self) -> Result<Option<ChangeLine>> {
        let Feed::Stream { body, buf } = &mut self.feed else {
            return Ok(None);
        };
        loop {
            if let Some(at) = buf.iter().position(|b| *b == b'\n') {
                let rest = buf.split_off(at + 1);
                let line = std::mem::replace(buf, rest);
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let line: ChangeLine = serde_json::from_slice(&line).map_err(|e| {
                    CliError::other(format!(
                        "the change stream sent a line that is not a change: {e}"
                    ))
                })?;
                self.cursor = Some(line.cursor.clone());
                return Ok(Some(line));
            }
            if buf.len() > MAX_LINE {
                return Err(CliError::other(
                    "the change stream sent a line longer than 64 KiB",
                ));
            }
            match body.next().await {
                Some(Ok(bytes)) => buf.extend_from_slice(&bytes),
                Some(Err(e)) => return Err(CliError::new(ErrorKind::Network, e)),
                None => return Ok(None),
            }
        }
    }

    /// Each secret's version and metadata, from the list.
    async fn snapshot(&self) -> Result<BTreeMap<String, (Option<u64>, String)>> {
        let doc = self.client.list_secrets(&self.ns).await?;
        let list: ItemList<Secret> = doc.typed()?;
        Ok(list
            .items
            .into_iter()
            .map(|s| {
                let meta = serde_json::to_string(&s).unwrap_or_default();
                (s.name, (s.status.current_version, meta))
            })
            .collect())
    }

    /// One look at the list: what changed since the last one.
    async fn poll(&mut self) -> Result<()> {
        let now = self.snapshot().await?;
        let Feed::Poll { seen, .. } = &mut self.feed else {
            return Ok(());
        };
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = |secret: &str, change: &str, version: Option<u64>| ChangeLine {
            kind: CHANGE.into(),
            cursor: String::new(),
            secret: Some(secret.to_string()),
            change: Some(change.into()),
            version,
            time: Some(time.clone()),
            actor: None,
        };
        for (name, (version, meta)) in &now {
            match seen.get(name) {
                None => self.pending.push_back(line(name, "created", *version)),
                Some((v, _)) if v != version => {
                    self.pending.push_back(line(name, "new-version", *version))
                }
                Some((_, m)) if m != meta => {
                    self.pending.push_back(line(name, "updated", *version))
                }
                Some(_) => {}
            }
        }
        for name in seen.keys().filter(|n| !now.contains_key(*n)) {
            self.pending.push_back(line(name, "deleted", None));
        }
        *seen = now;
        Ok(())
    }
}
