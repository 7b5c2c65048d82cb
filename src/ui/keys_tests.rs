//! The keys of the view, tested on the state alone.

mod basics {
    use std::time::{Duration, Instant};

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::api::Sensitive;
    use crate::listing::SyncState;
    use crate::ui::app::{Action, App, REVEAL_FOR, Revealed, Row, View};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn row(name: &str) -> Row {
        Row {
            name: name.into(),
            kind: "opaque".into(),
            sync: SyncState::Ready,
            target: name.into(),
            version: Some(1),
            updated: None,
        }
    }

    #[test]
    fn filter_moves_and_selection_follows_the_name_across_refreshes() {
        let mut app = App::new("local", "local-default");
        app.set_rows(vec![row("api"), row("db"), row("db-replica"), row("web")]);
        app.on_key(key(KeyCode::Char('j')));
        assert_eq!(app.current().unwrap().name, "db");
        app.on_key(key(KeyCode::Char('/')));
        for c in "db-".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.visible().len(), 1);
        assert_eq!(app.current().unwrap().name, "db-replica");
        // Keys typed into the filter did not act ('d', 'b').
        assert_eq!(app.view, View::List);
        app.set_rows(vec![row("aaa"), row("db-replica")]);
        assert_eq!(app.current().unwrap().name, "db-replica");
        app.on_key(key(KeyCode::Char('/')));
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.visible().len(), 2);
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
    }

    #[test]
    fn values_are_hidden_on_leaving_on_refresh_and_after_the_timeout() {
        let mut app = App::new("local", "ns");
        app.set_rows(vec![row("db")]);
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::LoadDetail);
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            Action::None,
            "nothing to copy yet"
        );
        assert_eq!(app.on_key(key(KeyCode::Char('r'))), Action::Reveal);
        let t0 = Instant::now();
        let reveal = |app: &mut App| {
            app.revealed = Some(Revealed {
                values: vec![("K".into(), Sensitive::new("v"))],
                version: 1,
                at: t0,
            });
        };
        reveal(&mut app);
        assert_eq!(
            app.on_key(key(KeyCode::Char('c'))),
            Action::Copy(Sensitive::new("v"))
        );
        assert!(!app.expire(t0 + Duration::from_secs(5)));
        assert!(app.expire(t0 + REVEAL_FOR));
        assert!(app.revealed.is_none());
        reveal(&mut app);
        assert_eq!(app.on_key(key(KeyCode::Char('R'))), Action::Refresh);
        assert!(app.revealed.is_none());
        reveal(&mut app);
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert_eq!(app.view, View::List);
        assert!(app.revealed.is_none());
    }

    #[test]
    fn elevation_asks_for_a_reason_and_help_returns_where_it_was() {
        let mut app = App::new("c", "ns");
        assert_eq!(app.on_key(key(KeyCode::Char('e'))), Action::LoadElevation);
        app.on_key(key(KeyCode::Char('e')));
        assert!(app.reason.is_some());
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            Action::None,
            "empty reason"
        );
        app.on_key(key(KeyCode::Char('e')));
        for c in "IR-7 q".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(
            app.on_key(key(KeyCode::Enter)),
            Action::Elevate("IR-7 q".into())
        );
        assert_eq!(app.on_key(key(KeyCode::Char('x'))), Action::Release);
        app.on_key(key(KeyCode::Char('?')));
        assert_eq!(app.view, View::Help);
        app.on_key(key(KeyCode::Char('z')));
        assert_eq!(app.view, View::Elevation);
    }
}

mod changes {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    use crate::listing::SyncState;
    use crate::ui::app::{Action, App, Row, View};

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn app() -> App {
        let mut app = App::new("local", "ns");
        let row = |n: &str| Row {
            name: n.into(),
            kind: "opaque".into(),
            sync: SyncState::Ready,
            target: n.into(),
            version: Some(1),
            updated: None,
        };
        app.set_rows(vec![row("api"), row("db")]);
        app
    }

    #[test]
    fn esc_clears_a_kept_filter_before_it_quits() {
        let mut app = app();
        app.filter = "db".into();
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::None);
        assert!(app.filter.is_empty());
        assert_eq!(app.on_key(key(KeyCode::Esc)), Action::Quit);
    }

    #[test]
    fn destroy_needs_the_name_typed_and_other_questions_a_y() {
        let mut app = app();
        assert_eq!(
            app.on_key(key(KeyCode::Char('D'))),
            Action::AskDelete { destroy: true }
        );
        let then = Action::Delete {
            name: "api".into(),
            destroy: true,
        };
        let ask = |app: &mut App| {
            app.confirm = Some(crate::ui::app::Confirm {
                question: "Destroy?".into(),
                expect: Some("api".into()),
                typed: String::new(),
                then: then.clone(),
                details: Vec::new(),
            });
        };
        ask(&mut app);
        // 'y' is only a letter of the name here; a wrong name does nothing.
        for c in "ap".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(app.on_key(key(KeyCode::Enter)), Action::None);
        assert!(app.confirm.is_none());
        ask(&mut app);
        for c in "api".chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        assert_eq!(app.on_key(key(KeyCode::Enter)), then);
        // A y/N question: anything but y keeps the secret.
        app.ask("Delete?".into(), Action::Restore("db".into()));
        assert_eq!(app.on_key(key(KeyCode::Char('n'))), Action::None);
        app.ask("Delete?".into(), Action::Restore("db".into()));
        assert_eq!(
            app.on_key(key(KeyCode::Char('y'))),
            Action::Restore("db".into())
        );
        // The create form takes every key until Esc.
        app.on_key(key(KeyCode::Char('n')));
        assert!(app.form.is_some());
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::None);
        app.on_key(key(KeyCode::Esc));
        assert!(app.form.is_none());
        assert_eq!(app.view, View::List);
    }
}
