//! The loopback redirect of the browser sign-in (RFC 8252): a listener on
//! localhost that takes the one request the identity provider's redirect
//! makes, answers it with a page, and hands back the authorization code.
//! One request head is all it reads; nothing else is served.

use std::collections::HashMap;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{CliError, Result};

const PAGE_OK: &str = "<!doctype html><meta charset=utf-8><title>kube-dc: signed in</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>You are signed in.</h1>\
<p>You can close this tab and return to your terminal.</p></body>";

fn page_failed(why: &str) -> String {
    let why = why
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<!doctype html><meta charset=utf-8><title>kube-dc: sign-in failed</title>\
<body style=\"font-family:sans-serif;margin:3em\"><h1>Sign-in failed.</h1><p>{why}</p>\
<p>Return to your terminal and run kube-dc login again.</p></body>"
    )
}

/// What the redirect brought.
pub enum Callback {
    Code(String),
    Failed(String),
}

/// Listeners on both loopback addresses ("localhost" may resolve to
/// either), on one port.
pub struct Loopback {
    v4: TcpListener,
    v6: Option<TcpListener>,
    pub port: u16,
}

impl Loopback {
    pub async fn bind() -> Result<Self> {
        let v4 = TcpListener::bind("127.0.0.1:0").await.map_err(|e| {
            CliError::other(format!(
                "cannot listen on 127.0.0.1 for the sign-in callback: {e}"
            ))
        })?;
        let port = v4
            .local_addr()
            .map_err(|e| CliError::other(e.to_string()))?
            .port();
        let v6 = TcpListener::bind(("::1", port)).await.ok();
        Ok(Self { v4, v6, port })
    }

    /// The redirect URI to register with the request.
    pub fn redirect_uri(&self) -> String {
        format!("http://localhost:{}/callback", self.port)
    }

    /// Waits for the redirect to `/callback` carrying `state`; any other
    /// path is answered 404 and the wait goes on.
    pub async fn callback(&self, state: &str) -> Callback {
        loop {
            let accepted = match &self.v6 {
                Some(v6) => tokio::select! { r = self.v4.accept() => r, r = v6.accept() => r },
                None => self.v4.accept().await,
            };
            let Ok((mut sock, _)) = accepted else {
                continue;
            };
            let Some(head) = read_head(&mut sock).await else {
                continue;
            };
            let target = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let (path, query) = target.split_once('?').unwrap_or((&target, ""));
            if path != "/callback" {
                respond(&mut sock, "404 Not Found", "not found").await;
                continue;
            }
            let outcome = outcome(query, state);
            match &outcome {
                Callback::Code(_) => respond(&mut sock, "200 OK", PAGE_OK).await,
                Callback::Failed(why) => {
                    respond(&mut sock, "400 Bad Request", &page_failed(why)).await
                }
            }
            return outcome;
        }
    }
}

/// The redirect's query: the code, or why there is none.
fn outcome(query: &str, state: &str) -> Callback {
    let params: HashMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
    if params.get("state").map(String::as_str) != Some(state) {
        Callback::Failed("the answer does not belong to this sign-in (state mismatch)".into())
    } else if let Some(err) = params.get("error") {
        Callback::Failed(match params.get("error_description") {
            Some(d) => format!("{err}: {d}"),
            None => err.clone(),
        })
    } else if let Some(code) = params.get("code") {
        Callback::Code(code.clone())
    } else {
        Callback::Failed("the answer carries no authorization code".into())
    }
}

/// Reads one HTTP request head from a loopback connection.
async fn read_head(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 1024];
    loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
            break;
        }
    }
    String::from_utf8(buf).ok()
}

async fn respond(sock: &mut TcpStream, status: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = sock.write_all(resp.as_bytes()).await;
    let _ = sock.shutdown().await;
}
