//! The backend's notion of now. Elevation windows, rotations and audit
//! timestamps all read it, so a test can move time instead of waiting.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
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
        Clock::Manual(Arc::new(AtomicI64::new(crate::store::now_ms())))
    }

    /// Epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => crate::store::now_ms(),
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
