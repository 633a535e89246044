//! `recupera audit`: the audit log, newest first, filtered; a table, the
//! `--json` array, or CSV for compliance exports.

use crate::app::App;
use crate::cli::{AuditArgs, AuditFormat};
use crate::clock::{colombia, parse_instant, rfc3339};
use crate::error::{Error, Result};
use crate::i18n::{M, t, tf, visible};
use crate::input;
use crate::ops::require_account;
use crate::store::AuditFilter;
use crate::table::Listing;
use crate::ui::Ui;
use serde_json::json;
use std::io::Write;

/// `--agent` on `audit` filters (the environment's RECUPERA_AGENT does not).
pub fn run(app: &mut App, ui: &Ui, a: &AuditArgs, agent_filter: Option<String>) -> Result<()> {
    // A deleted account is named by its pseudonym, which its rows carry
    // (they keep no account id).
    let mut subject = None;
    let account_id = match &a.user {
        Some(raw)
            if raw
                .trim()
                .starts_with(crate::ops::accounts::PSEUDONYM_PREFIX) =>
        {
            if crate::ops::accounts::pseudonym_number(raw.trim()).is_none() {
                return Err(Error::Usage(tf(
                    M::NoSuchAccountAny,
                    &[("ident", &visible(raw))],
                )));
            }
            subject = Some(raw.trim().to_string());
            None
        }
        Some(raw) => {
            let ident = input::ident(raw, a.kind)?;
            Some(
                app.store
                    .read(|tx| require_account(tx, a.kind, &ident, raw))?
                    .id,
            )
        }
        None => None,
    };
    let since = a
        .since
        .as_deref()
        .map(|s| parse_instant(s, false).ok_or_else(|| bad_date("--since", s)))
        .transpose()?;
    let until = a
        .until
        .as_deref()
        .map(|s| parse_instant(s, true).ok_or_else(|| bad_date("--until", s)))
        .transpose()?;
    // A mistyped event would give an empty listing that looks like "nothing
    // happened" (a compliance export of nothing): refused instead.
    let events = crate::store::AUDIT_EVENTS;
    if let Some(ev) = a.event.as_deref().filter(|e| !e.is_empty())
        && !events
            .iter()
            .any(|e| *e == ev || e.strip_prefix(ev).is_some_and(|r| r.starts_with('.')))
    {
        return Err(Error::Usage(tf(
            M::UsageBadEvent,
            &[
                ("value", &crate::i18n::quote(ev)),
                ("events", &events.join(", ")),
            ],
        )));
    }
    let filter = AuditFilter {
        account_id,
        since,
        until,
        event: a.event.clone().filter(|e| !e.is_empty()),
        agent: agent_filter,
        subject,
        limit: a.limit,
    };
    if a.format == AuditFormat::Csv && !ui.json {
        return csv(app, &filter);
    }
    let headers = [
        t(M::ColWhen),
        t(M::ColAgent),
        t(M::ColAccount),
        t(M::ColEvent),
        t(M::ColOutcome),
        t(M::ColDetail),
    ];
    let mut list = Listing::new(ui, &headers)?;
    app.store.read(|tx| {
        tx.for_each_audit(&filter, &mut |r| {
            list.push(
                || {
                    json!({
                        "id": r.id,
                        "at": rfc3339(r.at),
                        "agent": r.agent,
                        "account_id": r.account_id,
                        "subject": r.subject,
                        "event": r.event,
                        "outcome": r.outcome,
                        "detail": r.detail,
                    })
                },
                || {
                    vec![
                        colombia(r.at),
                        visible(&r.agent),
                        visible(r.subject.as_deref().unwrap_or_default()),
                        visible(&r.event),
                        visible(&r.outcome),
                        visible(r.detail.as_deref().unwrap_or_default()),
                    ]
                },
                false,
            )
        })?;
        Ok(())
    })?;
    list.finish()
}

fn bad_date(flag: &str, value: &str) -> Error {
    Error::Usage(tf(
        M::UsageBadDate,
        &[("flag", &flag), ("value", &crate::i18n::quote(value))],
    ))
}

/// A spreadsheet must not run what an agent typed: a text cell that starts
/// like a formula gets a leading apostrophe (OWASP's CSV-injection rule).
fn cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn csv(app: &mut App, filter: &AuditFilter) -> Result<()> {
    let out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut w = csv::Writer::from_writer(out);
    w.write_record([
        "id",
        "at",
        "agent",
        "account_id",
        "subject",
        "event",
        "outcome",
        "detail",
    ])
    .map_err(csv_error)?;
    app.store.read(|tx| {
        tx.for_each_audit(filter, &mut |r| {
            w.write_record([
                r.id.to_string(),
                rfc3339(r.at),
                cell(&r.agent),
                r.account_id.map(|i| i.to_string()).unwrap_or_default(),
                cell(r.subject.as_deref().unwrap_or_default()),
                cell(&r.event),
                cell(&r.outcome),
                cell(r.detail.as_deref().unwrap_or_default()),
            ])
            .map_err(csv_error)
        })?;
        Ok(())
    })?;
    let mut out = w.into_inner().map_err(|e| Error::Io(e.into_error()))?;
    out.flush()?;
    Ok(())
}

fn csv_error(e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(io),
        other => crate::internal!("csv: {other:?}"),
    }
}
