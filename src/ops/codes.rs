//! Code housekeeping: the cron job's purge.

use crate::app::App;
use crate::error::Result;
use crate::store::{AuditEntry, PurgeCounts};

/// Codes (each with its message) deleted per transaction: a few hundredths
/// of a second of write lock on the benchmark machine, so concurrent
/// commands never wait long behind a big backlog (BENCHMARKS.md).
pub const PURGE_BATCH: u64 = 20_000;

/// Ids looked at per transaction (so at most as many codes, finished or
/// not): bounds a transaction that finds few to delete, as when a purge
/// walks past live codes.
pub const PURGE_WINDOW: u64 = 5 * PURGE_BATCH;

/// Deletes finished codes (expired, used, replaced, exhausted) with their
/// messages, and finished notices, a batch per transaction. Limits live on
/// the account and are untouched.
///
/// The codes are walked once, in id order (the order of the table's pages
/// on both engines), not in the order they ended: when finished and live
/// codes are mixed on every page, walking by end would rewrite most pages
/// in every batch (8 s per million codes instead of under 1 s on SQLite,
/// BENCHMARKS.md). A code that ends while the purge runs ends after `now`
/// and waits for the next purge.
pub fn purge(app: &mut App, dry_run: bool) -> Result<PurgeCounts> {
    if dry_run {
        let now = app.now();
        return app.store.read(|tx| Ok(tx.purge_counts(now)?));
    }
    purge_in_steps(app, PURGE_WINDOW, PURGE_BATCH)
}

/// The purge, looking at `window` ids and deleting at most `batch` codes
/// (and `batch` notices) per transaction.
fn purge_in_steps(app: &mut App, window: u64, batch: u64) -> Result<PurgeCounts> {
    let now = app.now();
    let agent = app.agent.name().to_string();
    let mut total = PurgeCounts::default();
    // Where the walk through the codes has got to; `None`: every code seen.
    let mut after = Some(i64::MIN);
    loop {
        let from = after.unwrap_or(i64::MAX);
        let b = app
            .store
            .write(|tx| Ok(tx.purge_batch(now, from, window, batch)?))?;
        total.codes += b.codes;
        total.mails += b.codes + b.notices;
        after = b.next;
        if after.is_none() && b.notices < batch {
            break;
        }
        app.store.let_writers_in();
    }
    app.store.write(|tx| {
        Ok(tx.audit(
            &AuditEntry::new(&agent, "codes.purge", "ok")
                .detail(format!("codes={} mails={}", total.codes, total.mails)),
            now,
        )?)
    })?;
    // The cron job is the natural moment to give the space back.
    let _ = app.store.compact();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::domain::account::AccountType;
    use crate::domain::email::Email;
    use crate::domain::lang::Lang;
    use crate::domain::nit::Nit;
    use crate::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
    use crate::store::{InsertAccount, MailKind, NewAccount, NewCode, NewNotice, Store};
    use std::sync::Arc;

    /// 60 accounts with a code each, finished and live in turn, and 7
    /// finished notices, purged 5 codes at a time out of windows of 8:
    /// every finished code and notice goes, in as many steps as it takes,
    /// and every live code stays.
    fn purge_takes_every_finished_code_in_small_steps(store: Store) {
        let e = Email::parse("a@example.co").unwrap();
        let mut live = Vec::new();
        let mut store = store;
        store
            .write(|tx| {
                for i in 0..60_i64 {
                    let nit = Nit::parse(&format!("90010{i:04}")).unwrap();
                    let InsertAccount::Created(acc) = tx.insert_account(&NewAccount {
                        kind: AccountType::Cliente,
                        nit: &nit,
                        username: None,
                        email: &e,
                        name: None,
                        lang: Lang::Es,
                        password_hash: None,
                        now: 0,
                    })?
                    else {
                        panic!("account {i}")
                    };
                    let expires = if i % 2 == 0 { 100 } else { 5000 };
                    let id = tx.insert_code(&NewCode {
                        account_id: acc,
                        hash: Some("h"),
                        now: i,
                        expires_at: expires,
                        recipient: &e,
                        claim: None,
                    })?;
                    if i % 2 == 1 {
                        live.push(id);
                    }
                    if i % 9 == 0 {
                        let n = tx.enqueue_notice(&NewNotice {
                            account_id: acc,
                            kind: MailKind::PasswordChanged,
                            recipient: &e,
                            detail: None,
                            now: i,
                            claim: None,
                        })?;
                        tx.mail_dropped(n, "x", 50)?;
                    }
                }
                Ok(())
            })
            .unwrap();
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(1000));
        let mailer = Mailer {
            transport: Transport::Outbox(std::env::temp_dir()),
            from: parse_from(DEFAULT_FROM).unwrap(),
            footer: None,
        };
        let mut app = App::with(store, clock, mailer, "test");
        let done = purge_in_steps(&mut app, 8, 5).unwrap();
        assert_eq!((done.codes, done.mails), (30, 37));
        let left = app.store.read(|tx| Ok(tx.purge_counts(1000)?)).unwrap();
        assert_eq!((left.codes, left.mails), (0, 0));
        app.store
            .read(|tx| {
                for id in &live {
                    assert!(tx.code(*id)?.is_some(), "live code {id} kept");
                }
                Ok(())
            })
            .unwrap();
        // A second purge finds nothing left.
        let again = purge_in_steps(&mut app, 8, 5).unwrap();
        assert_eq!((again.codes, again.mails), (0, 0));
        // More finished notices than a batch once the codes are done (a
        // window wide enough for every code): the purge goes on until
        // they are all gone.
        app.store
            .write(|tx| {
                for i in 0..12 {
                    let n = tx.enqueue_notice(&NewNotice {
                        account_id: 1,
                        kind: MailKind::PasswordChanged,
                        recipient: &e,
                        detail: None,
                        now: 100 + i,
                        claim: None,
                    })?;
                    tx.mail_dropped(n, "x", 200)?;
                }
                Ok(())
            })
            .unwrap();
        let notices = purge_in_steps(&mut app, 1000, 5).unwrap();
        assert_eq!((notices.codes, notices.mails), (0, 12));
    }

    #[test]
    fn sqlite_purge_takes_every_finished_code_in_small_steps() {
        purge_takes_every_finished_code_in_small_steps(Store::in_memory().unwrap());
    }

    #[test]
    fn postgres_purge_takes_every_finished_code_in_small_steps() {
        let Some(store) = crate::store::suite::pg_store() else {
            return;
        };
        purge_takes_every_finished_code_in_small_steps(store);
    }
}
