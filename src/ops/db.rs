//! The database as a whole: `db status` and `db copy`.
//!
//! Invariants of a copy:
//! - The target must be empty (no row in any table); otherwise nothing is
//!   written and the copy is refused.
//! - Everything is read from one snapshot of the source and written in one
//!   transaction on the target, ids included, so a pending code, a queued
//!   message and the audit trail all keep working there.
//! - Row counts are compared after writing and before committing: a copy
//!   that does not match is rolled back.

use crate::error::{Error, Result};
use crate::i18n::{M, tf};
use crate::store::{Counts, Engine, Record, RowCounts, Store};

pub struct Status {
    pub engine: Engine,
    pub schema_version: i64,
    pub counts: Counts,
}

pub fn status(store: &mut Store, now: i64) -> Result<Status> {
    let schema_version = store.schema_version()?;
    let counts = store.read(|tx| Ok(tx.counts(now)?))?;
    Ok(Status {
        engine: store.engine(),
        schema_version,
        counts,
    })
}

/// Copies every row of `from` into the empty `to`. `progress` is called
/// with the rows written so far and the total. A SQLite target has its WAL
/// folded in afterwards: the copy is a backup, and a backup is one file.
pub fn copy(from: &mut Store, to: &mut Store, progress: impl FnMut(u64, u64)) -> Result<RowCounts> {
    let rows = copy_rows(from, to, progress)?;
    to.compact()?;
    Ok(rows)
}

fn copy_rows(
    from: &mut Store,
    to: &mut Store,
    mut progress: impl FnMut(u64, u64),
) -> Result<RowCounts> {
    to.write(|dst| {
        let have = dst.claim_for_load()?;
        if have != RowCounts::default() {
            return Err(Error::Data(tf(
                M::CopyNotEmpty,
                &[
                    ("accounts", &have.accounts),
                    ("codes", &have.codes),
                    ("mail", &have.mail),
                    ("audit", &have.audit),
                ],
            )));
        }
        // One snapshot of the source: its counts and its rows agree.
        let expected = from.read(|src| {
            let expected = src.row_counts()?;
            let total = (expected.accounts + expected.mail + expected.audit) as u64;
            let mut done = 0u64;
            src.dump(&mut |r: Record| {
                dst.load(&r)?;
                done += 1;
                if done.is_multiple_of(1000) {
                    progress(done, total);
                }
                Ok(())
            })?;
            progress(total, total);
            Ok(expected)
        })?;
        dst.finish_load()?;
        let got = dst.row_counts()?;
        if got != expected {
            return Err(Error::Data(tf(
                M::CopyMismatch,
                &[
                    ("expected", &format!("{expected:?}")),
                    ("got", &format!("{got:?}")),
                ],
            )));
        }
        Ok(got)
    })
}

#[cfg(test)]
mod tests {
    use super::super::kit::{cliente, nit, quick_app};
    use super::{copy, status};
    use crate::domain::account::AccountType;
    use crate::domain::email::Email;
    use crate::store::{Counts, RowCounts, Store};

    const CLIENTE: AccountType = AccountType::Cliente;

    /// Three accounts, two codes (one expired by now), their two messages
    /// (one still queued), and seven audit rows: three `user.add`, two
    /// `reset.request`, two `mail.deliver`.
    fn filled(dir: &tempfile::TempDir) -> crate::app::App {
        let (mut app, clock) = quick_app(dir);
        cliente(
            &mut app,
            "900102030",
            "ana@example.co",
            Some("caballo tornillo grapa verde"),
        );
        cliente(&mut app, "830015428", "eva@example.co", None);
        cliente(&mut app, "800003122", "luis@example.co", None);
        let ask = |app: &mut crate::app::App, raw: &str, email: &str| {
            crate::ops::reset::request(app, CLIENTE, &nit(raw), &Email::parse(email).unwrap())
                .unwrap();
        };
        ask(&mut app, "900102030", "ana@example.co");
        clock.advance(app.code_ttl_secs);
        // Its message stays queued: the outbox path is a file.
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"").unwrap();
        app.mailer.transport = crate::mail::Transport::Outbox(file);
        ask(&mut app, "830015428", "eva@example.co");
        app.mailer.transport = crate::mail::Transport::Outbox(dir.path().join("outbox"));
        app
    }

    #[test]
    fn status_counts_live_codes_and_queued_mail() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = filled(&dir);
        let now = app.now();
        let s = status(&mut app.store, now).unwrap();
        assert!(s.schema_version > 0);
        assert_eq!(
            s.counts,
            Counts {
                accounts: 3,
                codes_pending: 1,
                mail_queued: 1,
                audit: 7,
            }
        );
    }

    #[test]
    fn copy_fills_an_empty_store_and_refuses_one_that_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut app = filled(&dir);
        let mut to = Store::in_memory().unwrap();
        let mut calls = Vec::new();
        let got = copy(&mut app.store, &mut to, |done, total| {
            calls.push((done, total))
        })
        .unwrap();
        let want = RowCounts {
            accounts: 3,
            codes: 2,
            mail: 2,
            audit: 7,
        };
        assert_eq!(got, want);
        assert_eq!(calls, [(12, 12)], "accounts, messages and audit rows");
        let now = app.now();
        assert_eq!(
            status(&mut to, now).unwrap().counts,
            status(&mut app.store, now).unwrap().counts
        );

        // Into a SQLite file: one file, the WAL folded in (a copy of the
        // file alone, as a backup is taken, holds everything).
        let file = dir.path().join("respaldo.db");
        let loc = crate::store::Location::Sqlite(file.clone());
        let mut backup = Store::open(&loc, crate::store::DEFAULT_BUSY_TIMEOUT).unwrap();
        copy(&mut app.store, &mut backup, |_, _| {}).unwrap();
        drop(backup);
        let wal = dir.path().join("respaldo.db-wal");
        assert!(
            std::fs::metadata(&wal).map_or(0, |m| m.len()) == 0,
            "the WAL is empty"
        );
        let alone = dir.path().join("solo.db");
        std::fs::copy(&file, &alone).unwrap();
        let loc = crate::store::Location::Sqlite(alone);
        let mut alone = Store::open(&loc, crate::store::DEFAULT_BUSY_TIMEOUT).unwrap();
        assert_eq!(alone.read(|tx| Ok(tx.row_counts()?)).unwrap(), want);

        let again = copy(&mut app.store, &mut to, |_, _| {});
        assert!(again.is_err(), "the target is not empty");
        assert_eq!(
            to.read(|tx| Ok(tx.row_counts()?)).unwrap(),
            want,
            "unchanged"
        );
    }
}
