//! Code housekeeping: the cron job's purge.

use crate::app::App;
use crate::error::Result;
use crate::store::{AuditEntry, PurgeCounts};

/// Codes (each with its message) deleted per transaction: a few hundredths
/// of a second of write lock on the benchmark machine, so concurrent
/// commands never wait long behind a big backlog (BENCHMARKS.md).
pub const PURGE_BATCH: u64 = 20_000;

/// Deletes finished codes (expired, used, replaced, exhausted) with their
/// messages, and finished notices, a batch per transaction. Limits live on
/// the account and are untouched.
pub fn purge(app: &mut App, dry_run: bool) -> Result<PurgeCounts> {
    let now = app.now();
    if dry_run {
        return app.store.read(|tx| Ok(tx.purge_counts(now)?));
    }
    let agent = app.agent.clone();
    let mut total = PurgeCounts::default();
    loop {
        let b = app
            .store
            .write(|tx| Ok(tx.purge_batch(now, PURGE_BATCH)?))?;
        total.codes += b.codes;
        total.mails += b.mails;
        if b.codes < PURGE_BATCH && b.mails.saturating_sub(b.codes) < PURGE_BATCH {
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
