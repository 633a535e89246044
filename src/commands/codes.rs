//! `recupera codes purge | list`.

use crate::app::App;
use crate::cli::CodesCommand;
use crate::clock::{colombia, rfc3339};
use crate::error::Result;
use crate::i18n::{M, t, tf};
use crate::store::{AuditEntry, CodeRow, PurgeCounts};
use crate::table::Listing;
use crate::ui::Ui;
use serde_json::json;

/// Request-log rows older than this no longer count for any limit.
const REQUEST_WINDOW: i64 = 24 * 3600;

pub fn run(app: &mut App, ui: &Ui, cmd: &CodesCommand) -> Result<()> {
    match cmd {
        CodesCommand::Purge(a) => run_purge(app, ui, a.dry_run),
        CodesCommand::List => run_list(app, ui),
    }
}

/// Codes (with their mail, notices and request-log rows) deleted per
/// transaction: about a tenth of a second of write lock on the benchmark
/// machine, so concurrent commands never wait long behind a big backlog;
/// it costs ~20% more total time than one transaction (BENCHMARKS.md).
pub const PURGE_BATCH: u64 = 20_000;

/// Deletes finished codes (expired, used, replaced, exhausted) and what
/// hangs off them, a batch per transaction. Failure counters live on the
/// account and are untouched.
pub fn purge(app: &mut App, dry_run: bool) -> Result<PurgeCounts> {
    let now = app.now();
    if dry_run {
        return app.store.read(|tx| tx.purge_counts(now, REQUEST_WINDOW));
    }
    let agent = app.agent.clone();
    let mut total = PurgeCounts::default();
    loop {
        let b = app
            .store
            .write(|tx| tx.purge_batch(now, REQUEST_WINDOW, PURGE_BATCH))?;
        total.codes += b.codes;
        total.mails += b.mails;
        total.requests += b.requests;
        if b.codes < PURGE_BATCH && b.mails < PURGE_BATCH && b.requests < PURGE_BATCH {
            break;
        }
    }
    app.store.write(|tx| {
        tx.audit(
            &AuditEntry::new(&agent, "codes.purge", "ok").detail(format!(
                "codes={} mails={} requests={}",
                total.codes, total.mails, total.requests
            )),
            now,
        )
    })?;
    // The cron job is the natural moment to fold the WAL back in.
    app.store.checkpoint();
    Ok(total)
}

fn run_purge(app: &mut App, ui: &Ui, dry_run: bool) -> Result<()> {
    let c = purge(app, dry_run)?;
    let text = tf(
        if dry_run { M::PurgeDry } else { M::PurgeDone },
        &[("codes", &c.codes)],
    );
    ui.result(
        json!({
            "status": "ok",
            "dry_run": dry_run,
            "codes": c.codes,
            "mails": c.mails,
            "requests": c.requests,
        }),
        &text,
    )
}

/// The state a person cares about: a pending code past its expiry is
/// "expired" even before the purge runs.
pub fn effective_state(c: &CodeRow, now: i64) -> &str {
    if c.state == "pending" && c.expires_at <= now {
        "expired"
    } else {
        &c.state
    }
}

fn run_list(app: &mut App, ui: &Ui) -> Result<()> {
    let now = app.now();
    let headers = [
        t(M::ColAccount),
        t(M::ColCodeCreated),
        t(M::ColExpires),
        t(M::ColAttempts),
        t(M::ColState),
    ];
    let mut list = Listing::new(ui, &headers)?;
    app.store.read(|tx| {
        tx.for_each_code(|c| {
            list.push(
                || {
                    json!({
                        "id": c.id,
                        "account_id": c.account_id,
                        "type": c.kind,
                        "nit": c.nit,
                        "created_at": rfc3339(c.created_at),
                        "expires_at": rfc3339(c.expires_at),
                        "attempts": c.attempts,
                        "state": effective_state(&c, now),
                    })
                },
                || {
                    vec![
                        format!("{} {}", c.kind, c.nit),
                        colombia(c.created_at),
                        colombia(c.expires_at),
                        c.attempts.to_string(),
                        effective_state(&c, now).to_string(),
                    ]
                },
            )
        })
    })?;
    list.finish()
}
