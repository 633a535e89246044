//! Operations: what each command does, over an [`App`](crate::app::App),
//! with typed inputs and typed outcomes. No prompts and no printing here:
//! the commands gather inputs and render outcomes; the demo and the tests
//! call these directly.
//!
//! Invariants:
//! - Every operation reads and writes through `app.store` transactions;
//!   state checks and the updates they allow happen in one transaction.
//! - The argon2 work of an operation never depends on whether an account
//!   exists (see each operation's module).

pub mod accounts;
pub mod codes;
pub mod db;
pub mod import;
#[cfg(test)]
pub(crate) mod kit;
pub mod login;
pub mod reset;

use crate::domain::account::{Account, AccountType, Ident};
use crate::error::{Error, Result};
use crate::i18n::{M, quote, tf};
use crate::store::Txn;

/// Accounts an identifier names. A username or an email names proveedores
/// only (the manual: "NIT, Usuario o email (Proveedor)"). In a write
/// transaction the accounts returned stay locked until it ends.
pub fn find_accounts(
    tx: &mut dyn Txn,
    kind: Option<AccountType>,
    ident: &Ident,
) -> Result<Vec<Account>> {
    Ok(match ident {
        Ident::Nit(nit) => tx.accounts_by_nit(kind, nit)?,
        Ident::Username(u) => match kind {
            Some(AccountType::Cliente) => Vec::new(),
            _ => tx.accounts_by_username(u)?,
        },
        Ident::Email(e) => match kind {
            Some(AccountType::Cliente) => Vec::new(),
            _ => tx.accounts_by_email(Some(AccountType::Proveedor), e)?,
        },
    })
}

pub fn ambiguous(raw: &str) -> Error {
    Error::Usage(tf(M::Ambiguous, &[("ident", &quote(raw))]))
}

/// For agent commands (`user show`, `user unlock`, `audit --user`, …): the
/// account must exist, and saying it does not is fine (the agent is
/// trusted); several accounts is a usage error asking for precision.
pub fn require_account(
    tx: &mut dyn Txn,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
) -> Result<Account> {
    let mut found = find_accounts(tx, kind, ident)?;
    match found.len() {
        0 => Err(Error::NotFound(match kind {
            Some(k) => tf(
                M::NoSuchAccount,
                &[
                    ("type", &crate::i18n::type_label(k)),
                    ("ident", &quote(raw)),
                ],
            ),
            None => tf(M::NoSuchAccountAny, &[("ident", &quote(raw))]),
        })),
        1 => found.pop().ok_or_else(|| crate::internal!("vanished")),
        // A NIT that a cliente and a proveedor share, without --type: the
        // cliente, as SPEC's "--type defaults to cliente" (and `reset
        // request`) have it. An email several proveedores share stays
        // ambiguous.
        _ if kind.is_none()
            && matches!(ident, Ident::Nit(_))
            && found
                .iter()
                .filter(|a| a.kind == AccountType::Cliente)
                .count()
                == 1 =>
        {
            found
                .into_iter()
                .find(|a| a.kind == AccountType::Cliente)
                .ok_or_else(|| crate::internal!("vanished"))
        }
        _ => Err(ambiguous(raw)),
    }
}

/// The worker pool for CPU-bound batches (hashing), made on first use;
/// `None` when this process cannot start threads.
fn pool() -> Option<&'static rayon::ThreadPool> {
    if spawn_refused() {
        return None;
    }
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().build().ok())
        .as_ref()
}

/// `f` over `items` on every core, in order; sequential when no thread
/// can be started. The first error wins.
pub fn par_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync + Send,
) -> Result<Vec<U>> {
    use rayon::prelude::*;
    match pool() {
        Some(p) if items.len() > 1 => p.install(|| items.par_iter().map(&f).collect()),
        _ => items.iter().map(f).collect(),
    }
}

/// A row id no account or code ever has (ids start at 1 on both engines).
/// A miss runs the statements a hit would run against it: the same round
/// trips to the server and the same work in SQLite, none of it changing a
/// row, so a known account's answer takes no longer than an unknown one's
/// (argon2 is fast enough now that a few statements show: BENCHMARKS.md,
/// "Uniform timing").
pub(crate) const NO_ROW: i64 = -1;

/// True when this process must behave as one that cannot start threads or
/// processes (its limit reached). Only the test build can be told so
/// (`RECUPERA_TEST_NO_SPAWN`), to check that such a process answers the
/// same; every other build always tries.
pub fn spawn_refused() -> bool {
    #[cfg(feature = "test-clock")]
    let refused = std::env::var_os("RECUPERA_TEST_NO_SPAWN").is_some();
    #[cfg(not(feature = "test-clock"))]
    let refused = false;
    refused
}

/// The argon2 work of every outcome, counted through the hasher: a miss
/// that skipped its work (a no-op `burn`) fails here, however fast the
/// machine.
#[cfg(test)]
mod cost {
    use super::kit::{add, app};
    use crate::app::App;
    use crate::domain::account::{AccountType, Ident};
    use crate::domain::email::Email;
    use crate::domain::nit::Nit;
    use crate::domain::password::Password;

    const PW: &str = "caballo tornillo grapa verde";

    /// Evaluations `f` costs.
    fn cost(app: &mut App, f: impl FnOnce(&mut App)) -> u64 {
        let before = app.hasher.evaluations();
        f(app);
        app.hasher.evaluations() - before
    }

    #[test]
    fn every_login_costs_one_evaluation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = app(&dir);
        let known = add(&mut app, "900102030", Some(PW));
        let no_pw = add(&mut app, "800003122", None);
        let unknown = Ident::Nit(Nit::parse("830015428").unwrap());
        let login = |who: &Ident, pw: &str| {
            let who = who.clone();
            let pw = pw.to_string();
            move |app: &mut App| {
                super::login::login(app, AccountType::Cliente, &who, &pw).unwrap();
            }
        };
        assert_eq!(cost(&mut app, login(&known, PW)), 1, "right password");
        assert_eq!(
            cost(&mut app, login(&known, "otra cosa")),
            1,
            "wrong password"
        );
        assert_eq!(cost(&mut app, login(&unknown, PW)), 1, "unknown account");
        assert_eq!(cost(&mut app, login(&no_pw, PW)), 1, "no password");
        for _ in 0..5 {
            login(&known, "otra cosa")(&mut app);
        }
        assert_eq!(cost(&mut app, login(&known, PW)), 1, "locked");
    }

    #[test]
    fn every_request_costs_one_evaluation() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = app(&dir);
        let known = add(&mut app, "900102030", None);
        let unknown = Ident::Nit(Nit::parse("830015428").unwrap());
        let right = Email::parse("ana@example.co").unwrap();
        let wrong = Email::parse("otra@example.co").unwrap();
        for (who, email, what) in [
            (&known, &right, "issued"),
            (&known, &right, "throttled"),
            (&unknown, &right, "unknown"),
            (&known, &wrong, "wrong email"),
        ] {
            let c = cost(&mut app, |app| {
                super::reset::request(app, AccountType::Cliente, who, email).unwrap();
            });
            assert_eq!(c, 1, "{what}");
        }
        clock.advance(61);
    }

    /// Evaluations `f` costs, and hashes it asked for ahead.
    fn cost_ahead(app: &mut App, f: impl FnOnce(&mut App)) -> (u64, u64) {
        let before = app.hasher.aheads();
        let c = cost(app, f);
        (c, app.hasher.aheads() - before)
    }

    #[test]
    fn every_refused_confirm_costs_one_evaluation_and_a_success_two() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = app(&dir);
        let known = add(&mut app, "900102030", None);
        let without = add(&mut app, "800003122", None);
        let disabled = add(&mut app, "860001234", None);
        let unknown = Ident::Nit(Nit::parse("830015428").unwrap());
        let email = Email::parse("ana@example.co").unwrap();
        super::reset::request(&mut app, AccountType::Cliente, &known, &email).unwrap();
        let code = super::kit::last_code(&dir);
        super::kit::disable(&mut app, "860001234");
        let pw = Password::new(PW).unwrap();
        for (who, raw, what) in [
            (&known, "900102030", "wrong code, live code"),
            (&without, "800003122", "no live code"),
            (&disabled, "860001234", "disabled account"),
            (&unknown, "830015428", "unknown account"),
        ] {
            // Each asks for the new password's hash ahead, alike (its
            // work stopped, not counted), whatever the account.
            let c = cost_ahead(&mut app, |app| {
                super::reset::confirm(app, None, who, raw, "ZZZZZ", &pw).unwrap();
            });
            assert_eq!(c, (1, 1), "{what}");
        }
        // Refused on what was typed, before anything else: nothing asked.
        let short = Password::new("corta").unwrap();
        let c = cost_ahead(&mut app, |app| {
            let _ = super::reset::confirm(app, None, &known, "900102030", "ZZZZZ", &short);
            let _ = super::reset::confirm(app, None, &known, "900102030", "Z", &pw);
        });
        assert_eq!(c, (0, 0), "typed-only refusals");
        // The right code, but a password built from the account's email:
        // the code's check only, the hash made ahead is not taken.
        let from_email = Password::new("ana@example.co ana@example.co").unwrap();
        let c = cost_ahead(&mut app, |app| {
            let out = super::reset::confirm(app, None, &known, "900102030", &code, &from_email);
            assert!(matches!(out, Ok(super::reset::ConfirmOutcome::Policy(_))));
        });
        assert_eq!(c, (1, 1), "policy refusal after the right code");
        let c = cost_ahead(&mut app, |app| {
            let out = super::reset::confirm(app, None, &known, "900102030", &code, &pw);
            assert!(matches!(out, Ok(super::reset::ConfirmOutcome::Updated(_))));
        });
        assert_eq!(c, (2, 1), "success: the code's check and the new hash");
    }
}

/// The shadow statements (`NO_ROW`): every refusal of a login or a
/// confirmation runs the same SQL statements, in the same order, as the
/// path that verifies, so what the server or the file does cannot tell them
/// apart. SQLite's trace lists them; the ops code that decides them is the
/// same on PostgreSQL.
#[cfg(test)]
mod same_statements {
    use crate::app::App;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::account::{AccountType, Ident};
    use crate::domain::email::Email;
    use crate::domain::hash::Hasher;
    use crate::domain::lang::Lang;
    use crate::domain::nit::Nit;
    use crate::domain::password::Password;
    use crate::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
    use crate::ops::accounts::{NewUser, add};
    use crate::ops::login::login;
    use crate::ops::reset::{confirm, request};
    use crate::store::Store;
    use crate::store::sqlite::Sqlite;
    use rusqlite::trace::{TraceEvent, TraceEventCodes};
    use std::sync::{Arc, Mutex};

    /// Runs `f` and returns the SQL text of every statement it ran, in
    /// order (parameters unexpanded: ids and values do not show).
    type Recorder = Box<dyn Fn(&mut App, &mut dyn FnMut(&mut App)) -> Vec<String>>;

    #[test]
    fn sqlite_a_refusal_runs_as_many_statements_as_a_check() {
        let mut db = Sqlite::open_in_memory().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let trace = move |e: TraceEvent<'_>| {
            if let TraceEvent::Stmt(stmt, _) = e {
                sink.lock().unwrap().push(stmt.sql().to_string());
            }
        };
        db.raw_mut()
            .trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(trace))
            .unwrap();
        let record: Recorder = Box::new(move |app, f| {
            log.lock().unwrap().clear();
            f(app);
            std::mem::take(&mut *log.lock().unwrap())
        });
        a_refusal_runs_as_many_statements_as_a_check(Store::from_engine(Box::new(db)), record);
    }

    #[test]
    fn postgres_a_refusal_runs_as_many_statements_as_a_check() {
        use crate::store::postgres::SENT;
        let Some(store) = crate::store::suite::pg_store() else {
            return;
        };
        let record: Recorder = Box::new(|app, f| {
            SENT.with(|s| *s.borrow_mut() = Some(Vec::new()));
            f(app);
            SENT.with(|s| s.borrow_mut().take()).unwrap_or_default()
        });
        a_refusal_runs_as_many_statements_as_a_check(store, record);
    }

    fn a_refusal_runs_as_many_statements_as_a_check(store: Store, record: Recorder) {
        let dir = tempfile::tempdir().unwrap();
        let mailer = Mailer {
            transport: Transport::Outbox(dir.path().join("outbox")),
            from: parse_from(DEFAULT_FROM).unwrap(),
            footer: None,
        };
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1_750_000_000));
        let mut app = App::with(store, clock, mailer, "test");
        app.hasher = Hasher::with_params(None, 64, 1, 1);
        let pw = "correct-horse-battery-staple-42";
        let user = |n: &str, e: &str| NewUser {
            kind: AccountType::Cliente,
            nit: Nit::parse(n).unwrap(),
            email: Email::parse(e).unwrap(),
            username: None,
            name: None,
            lang: Lang::Es,
        };
        let known = add(
            &mut app,
            &user("900102030", "a@example.co"),
            Some(&Password::new(pw).unwrap()),
        )
        .unwrap();
        let coded = add(&mut app, &user("830015428", "c@example.co"), None).unwrap();
        let known = Ident::Nit(known.nit);
        let coded = Ident::Nit(coded.nit);
        let unknown = Ident::Nit(Nit::parse("899999034").unwrap());
        let cliente = AccountType::Cliente;

        let ok = record(&mut app, &mut |a| {
            login(a, cliente, &known, pw).unwrap();
        });
        let wrong = record(&mut app, &mut |a| {
            login(a, cliente, &known, "correct-horse-battery-staple-43").unwrap();
        });
        let missing = record(&mut app, &mut |a| {
            login(a, cliente, &unknown, pw).unwrap();
        });
        assert!(ok.len() > 4, "{ok:#?}");
        assert_eq!(wrong, ok, "login: a wrong password against a success");
        assert_eq!(missing, ok, "login: an unknown account against a success");

        request(
            &mut app,
            cliente,
            &coded,
            &Email::parse("c@example.co").unwrap(),
        )
        .unwrap();
        let new_pw = Password::new("vaca-morada-trompeta-1987-lluvia").unwrap();
        let live = record(&mut app, &mut |a| {
            confirm(a, None, &coded, "830015428", "ZZZZZ", &new_pw).unwrap();
        });
        let none = record(&mut app, &mut |a| {
            confirm(a, None, &unknown, "899999034", "ZZZZZ", &new_pw).unwrap();
        });
        // An account that exists but has no live code counts nothing either.
        let no_code = record(&mut app, &mut |a| {
            confirm(a, None, &known, "900102030", "ZZZZZ", &new_pw).unwrap();
        });
        assert!(live.len() > 4, "{live:#?}");
        assert_eq!(none, live, "confirm: unknown account against a live code");
        assert_eq!(no_code, live, "confirm: no live code against a live code");
    }
}

#[cfg(test)]
mod lookups {
    use super::kit::{proveedor, quick_app};
    use super::{find_accounts, par_map, require_account};
    use crate::domain::account::{AccountType, Ident};
    use crate::domain::email::Email;
    use crate::error::Error;

    /// A username or an email names proveedores only: asked for a
    /// cliente, it names nobody; an agent's look-up of nobody is bad data
    /// (65), of several a usage error (64).
    #[test]
    fn usernames_and_emails_name_proveedores_only() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let prov = AccountType::Proveedor;
        proveedor(&mut app, "900373587", "b@example.co", "norte");
        proveedor(&mut app, "860518862", "b@example.co", "sur");
        let user = Ident::Username("norte".into());
        let mail = Ident::Email(Email::parse("b@example.co").unwrap());
        let cliente = Some(AccountType::Cliente);
        let mut found = |kind, who: &Ident| {
            app.store
                .read(|tx| Ok(find_accounts(tx, kind, who)?.len()))
                .unwrap()
        };
        assert_eq!(found(cliente, &user), 0);
        assert_eq!(found(cliente, &mail), 0);
        assert_eq!(found(None, &user), 1);
        assert_eq!(found(Some(prov), &mail), 2);

        let mut require =
            |who: &Ident, raw: &str| app.store.read(|tx| require_account(tx, None, who, raw));
        let nobody = Ident::Username("oeste".into());
        assert!(matches!(require(&nobody, "oeste"), Err(Error::NotFound(_))));
        assert!(matches!(
            require(&mail, "b@example.co"),
            Err(Error::Usage(_))
        ));
        assert!(require(&user, "norte").is_ok());
    }

    /// Batches of hashes run on the worker pool; a single item runs right
    /// here (a pool's start-up is not worth one hash).
    #[test]
    fn par_map_uses_the_pool_for_a_batch_and_not_for_one() {
        let on_pool = |items: &[u32]| {
            par_map(items, |_| Ok(rayon::current_thread_index().is_some())).unwrap()
        };
        assert!(on_pool(&[1, 2, 3, 4]).iter().all(|p| *p));
        assert_eq!(on_pool(&[1]), [false]);
        let doubled = par_map(&[1, 2, 3], |x| Ok(x * 2)).unwrap();
        assert_eq!(doubled, [2, 4, 6], "in order");
    }
}
