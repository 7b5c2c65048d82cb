//! When the view refreshes on its own. Every refresh is an audited list
//! request, so an idle view should make few: it refreshes every `--refresh`
//! seconds (default 60) only while the terminal has the focus (where the
//! terminal reports it), nothing is being typed, no values are revealed
//! (they stay for their 30 seconds instead of being refreshed away), and a
//! key was pressed in the last 10 minutes. A refresh missed for any of
//! these happens as soon as the reason is gone. The API offers no
//! conditional requests (no ETag), so a refresh cannot be made cheaper.
//!
//! Where the backend has a change stream (kube-dc's own), the view does not
//! refresh on a period at all: a notice of a change makes the refresh due,
//! under the same conditions. An idle view then makes no request.

use std::time::{Duration, Instant};

use super::app::App;

/// No automatic refresh after this long without a key.
pub const IDLE_PAUSE: Duration = Duration::from_secs(600);

/// The period of a view that refreshes on notices only.
const NEVER: Duration = Duration::from_secs(365 * 86_400);

pub struct Pacer {
    every: Duration,
    next: Instant,
    /// Whether the terminal has the focus (true until it says otherwise).
    pub focused: bool,
    /// A refresh came due while something held it back.
    missed: bool,
    last_key: Instant,
}

impl Pacer {
    pub fn new(every: Duration, now: Instant) -> Self {
        Pacer {
            every,
            next: now + every,
            focused: true,
            missed: false,
            last_key: now,
        }
    }

    /// Why an automatic refresh would wait now, if it would.
    pub fn held_by(&self, app: &App, now: Instant) -> Option<&'static str> {
        if app.revealed.is_some() {
            Some("refresh paused while values are revealed")
        } else if app.busy_typing() {
            Some("refresh paused while a form or a question is open")
        } else if !self.focused {
            Some("refresh paused: the terminal is not focused")
        } else if now.duration_since(self.last_key) >= IDLE_PAUSE {
            Some("refresh paused after 10 minutes without a key; any key resumes it")
        } else {
            None
        }
    }

    /// When the loop must wake: the next refresh (at once for a missed one
    /// that may go now), the reveal's end, and each second of a reveal's
    /// countdown.
    pub fn wake(&self, app: &App, now: Instant) -> Instant {
        let mut at = if self.missed && self.held_by(app, now).is_none() {
            now
        } else {
            self.next
        };
        if let Some(d) = app.reveal_deadline() {
            at = at.min(d).min(now + Duration::from_secs(1));
        }
        at
    }

    /// Whether to refresh now.
    pub fn due(&mut self, app: &App, now: Instant) -> bool {
        if now < self.next && !self.missed {
            return false;
        }
        if self.held_by(app, now).is_some() {
            self.missed |= now >= self.next;
            if now >= self.next {
                self.next = now + self.every;
            }
            return false;
        }
        self.refreshed(now);
        true
    }

    /// Refreshes come from change notices, not from the period.
    pub fn on_notices(&mut self, now: Instant) {
        self.every = NEVER;
        self.next = now + NEVER;
    }

    /// A change was noticed: the refresh is due now (and waits, like a
    /// periodic one, while something holds it back).
    pub fn notice(&mut self, now: Instant) {
        self.next = self.next.min(now);
    }

    /// A refresh was made (by `R` or after a change): the next is a full
    /// period away.
    pub fn refreshed(&mut self, now: Instant) {
        self.missed = false;
        self.next = now + self.every;
    }

    pub fn key(&mut self, now: Instant) {
        self.last_key = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Sensitive;
    use crate::ui::app::Revealed;

    #[test]
    fn held_refreshes_wait_and_then_happen_at_once() {
        let t0 = Instant::now();
        let every = Duration::from_secs(60);
        let mut p = Pacer::new(every, t0);
        let mut app = App::new("c", "ns");
        assert!(!p.due(&app, t0 + Duration::from_secs(59)));
        assert!(p.due(&app, t0 + every));
        // Unfocused: due time passes, nothing; focus back: at once.
        p.focused = false;
        let t1 = t0 + every * 2;
        assert!(!p.due(&app, t1));
        assert_eq!(
            p.held_by(&app, t1),
            Some("refresh paused: the terminal is not focused")
        );
        p.focused = true;
        assert_eq!(p.wake(&app, t1), t1);
        assert!(p.due(&app, t1));
        // Revealed values are not refreshed away; the loop wakes each second.
        let t2 = t1 + every;
        app.revealed = Some(Revealed {
            values: vec![("K".into(), Sensitive::new("v"))],
            version: 1,
            at: t2 - Duration::from_secs(5),
        });
        assert!(!p.due(&app, t2));
        assert_eq!(p.wake(&app, t2), t2 + Duration::from_secs(1));
        app.revealed = None;
        assert!(p.due(&app, t2 + Duration::from_secs(1)));
        // Ten minutes without a key: no more refreshes until one.
        let late = t0 + IDLE_PAUSE + every * 3;
        assert!(!p.due(&app, late));
        p.key(late);
        assert!(p.due(&app, late));
    }
}
