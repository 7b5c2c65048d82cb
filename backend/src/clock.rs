//! The backend's notion of now. Elevation windows, rotations and audit
//! timestamps all read it, so a test can move time instead of waiting.
//! Times are epoch milliseconds; `rfc3339` writes one for the API.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
/// What "now" is for the backend.
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that only moves when told to (epoch milliseconds).
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at the system's now.
    pub fn manual() -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(now_ms())))
    }

    /// Epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => now_ms(),
            Clock::Manual(ms) => ms.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        match self {
            Clock::System => panic!("the system clock cannot be advanced"),
            Clock::Manual(ms) => {
                ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
            }
        }
    }
}

/// The system clock, in epoch milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `now` plus a duration, in epoch milliseconds, saturating instead of
/// wrapping (a wrapped sum would be in the past: due at once).
pub fn add_ms(now: i64, d: Duration) -> i64 {
    i64::try_from(d.as_millis())
        .ok()
        .and_then(|ms| now.checked_add(ms))
        .unwrap_or(i64::MAX)
}

/// Epoch milliseconds as RFC 3339 UTC.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
