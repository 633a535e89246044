//! `recupera mail list | retry`, and delivery of queued messages.
//!
//! Invariants:
//! - A message is queued in the same transaction as the state it reports
//!   (the code, the password change) and delivered after the commit; a
//!   failed delivery stays queued with its error and attempt count.
//! - The queue never holds a code. Retrying a reset message gives its code
//!   a fresh value (the old one was never delivered, so nobody has it) with
//!   the original expiry; a message whose code expired or was replaced is
//!   dropped, not sent.

use crate::app::{App, Background};
use crate::cli::MailCommand;
use crate::clock::{colombia, rfc3339};
use crate::domain::code;
use crate::error::{Error, Result};
use crate::i18n::{M, t, tf};
use crate::mail::{ChangedMail, ResetMail, SendError};
use crate::store::{AuditEntry, MailRow};
use crate::table::Listing;
use crate::ui::Ui;
use lettre::Message;
use serde_json::json;
use zeroize::Zeroizing;

pub fn run(app: &mut App, ui: &Ui, cmd: &MailCommand) -> Result<()> {
    match cmd {
        MailCommand::List => run_list(app, ui),
        MailCommand::Retry => run_retry(app, ui),
        MailCommand::Deliver(a) => run_deliver(app, a.id),
    }
}

/// A queued message that has not had its first attempt yet is in flight
/// (a background delivery is on it) for this long; `mail retry` leaves it
/// alone meanwhile, so one message is not sent twice.
pub const IN_FLIGHT_SECS: i64 = 120;

/// Delivers a message just queued: in the background when a background
/// delivery is configured (SMTP), else right here. Never fails the caller:
/// a message that does not go stays queued for `mail retry`.
pub fn dispatch(app: &mut App, mail_id: i64, msg: &Message) {
    if let Some(bg) = app.background.clone()
        && spawn_delivery(&bg, mail_id, &msg.formatted()).is_ok()
    {
        return;
    }
    let _ = deliver_queued(app, mail_id, msg);
}

/// Starts `recupera mail deliver --id N` with the message on its stdin, in
/// its own process group (a Ctrl-C at the agent's prompt does not stop it),
/// and does not wait for it.
fn spawn_delivery(bg: &Background, mail_id: i64, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["mail", "deliver", "--id", &mail_id.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in &bg.env {
        cmd.env(k, v);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(bytes)?;
    }
    // Reap it if this process outlives it (the interactive flow goes on).
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// The background side: the message's bytes on stdin, its queue row by id.
fn run_deliver(app: &mut App, mail_id: i64) -> Result<()> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(1 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Other(e.into()))?;
    let Some(row) = app.store.read(|tx| tx.mail(mail_id))? else {
        return Ok(());
    };
    if row.state != "queued" || bytes.is_empty() {
        return Ok(());
    }
    let result = app.mailer.send_raw(&row.recipient, &bytes);
    record(app, mail_id, &result)?;
    result.map_err(|e| Error::MailUnavailable(tf(M::MailUnavailable, &[("err", &e.text)])))
}

/// Delivers a message whose queue row is `mail_id` and records the result.
/// Returns whether it went.
pub fn deliver_queued(app: &mut App, mail_id: i64, msg: &Message) -> Result<bool> {
    Ok(deliver(app, mail_id, msg)?.is_ok())
}

fn deliver(
    app: &mut App,
    mail_id: i64,
    msg: &Message,
) -> Result<std::result::Result<(), SendError>> {
    let result = app.mailer.send(msg);
    record(app, mail_id, &result)?;
    Ok(result)
}

/// Records a delivery attempt on the queue row and in the audit log.
fn record(app: &mut App, mail_id: i64, result: &std::result::Result<(), SendError>) -> Result<()> {
    let now = app.now();
    let agent = app.agent.clone();
    app.store.write(|tx| {
        match &result {
            Ok(()) => tx.mail_sent(mail_id, now)?,
            Err(e) => tx.mail_failed(mail_id, &e.text)?,
        }
        let row = tx.mail(mail_id)?;
        tx.audit(
            &AuditEntry::new(
                &agent,
                "mail.deliver",
                if result.is_ok() { "ok" } else { "failed" },
            )
            .account(row.as_ref().map(|r| r.account_id))
            .subject(format!("mail:{mail_id}"))
            .detail(row.map(|r| r.kind).unwrap_or_default()),
            now,
        )
    })
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RetryReport {
    pub sent: u64,
    pub dropped: u64,
    pub failed: u64,
    /// Still queued because an earlier message found the server down.
    pub not_tried: u64,
}

/// Builds the message for a queued row, re-keying a reset code. `None`
/// means the row was dropped.
fn prepare(app: &mut App, row: &MailRow) -> Result<Option<Message>> {
    let now = app.now();
    let agent = app.agent.clone();
    let account = app.store.read(|tx| tx.account(row.account_id))?;
    let Some(acc) = account else {
        app.store
            .write(|tx| tx.mail_dropped(row.id, "account_missing", now))?;
        return Ok(None);
    };
    match (row.kind.as_str(), row.code_id) {
        ("reset_code", Some(code_id)) => {
            let fresh = Zeroizing::new(code::generate(&mut rand::rng()));
            let hash = app.hasher.hash(fresh.as_bytes())?;
            let live = app.store.write(|tx| {
                let ok = tx.rekey_code(code_id, &hash, now)?;
                if !ok {
                    tx.mail_dropped(row.id, "code_expired_or_replaced", now)?;
                    tx.audit(
                        &AuditEntry::new(&agent, "mail.deliver", "dropped")
                            .account(Some(acc.id))
                            .subject(format!("mail:{}", row.id))
                            .detail("code_expired_or_replaced"),
                        now,
                    )?;
                }
                Ok(ok)
            })?;
            if !live {
                return Ok(None);
            }
            let requested_at = app
                .store
                .read(|tx| tx.code_created_at(code_id))?
                .unwrap_or(row.created_at);
            app.mailer
                .reset_message(&ResetMail {
                    to: &acc.email,
                    lang: acc.lang,
                    nit: &acc.nit,
                    code: &fresh,
                    requested_at,
                    ttl_hours: app.ttl_hours(),
                })
                .map(Some)
        }
        ("password_changed", _) => app
            .mailer
            .changed_message(&ChangedMail {
                to: &acc.email,
                lang: acc.lang,
                kind: acc.kind,
                nit: &acc.nit,
                changed_at: row.created_at,
            })
            .map(Some),
        _ => {
            app.store
                .write(|tx| tx.mail_dropped(row.id, "unknown_kind", now))?;
            Ok(None)
        }
    }
}

/// Delivers everything queued, oldest first; stops at the first failure
/// (the server is down: the rest would fail the same way).
pub fn retry(app: &mut App) -> Result<(RetryReport, Option<SendError>)> {
    let ids = app.store.read(|tx| tx.queued_mail_ids())?;
    let mut report = RetryReport::default();
    let mut last_error = None;
    for (i, id) in ids.iter().enumerate() {
        let Some(row) = app.store.read(|tx| tx.mail(*id))? else {
            continue;
        };
        if row.state != "queued" {
            continue;
        }
        if row.attempts == 0 && app.now() - row.created_at < IN_FLIGHT_SECS {
            // Its first delivery may still be under way.
            report.not_tried += 1;
            continue;
        }
        let prepared = match prepare(app, &row) {
            Ok(p) => p,
            // The store failing is the caller's problem; a message that
            // cannot be built (an address lettre refuses) must not stop the
            // rest of the queue: it is dropped with the reason.
            Err(e @ (Error::Db(_) | Error::Busy(_))) => return Err(e),
            Err(e) => {
                let now = app.now();
                let reason = format!("unbuildable: {e}");
                app.store
                    .write(|tx| tx.mail_dropped(row.id, &reason, now))?;
                None
            }
        };
        match prepared {
            None => report.dropped += 1,
            Some(msg) => match deliver(app, row.id, &msg)? {
                Ok(()) => report.sent += 1,
                Err(e) => {
                    report.failed += 1;
                    report.not_tried += (ids.len() - i - 1) as u64;
                    last_error = Some(e);
                    break;
                }
            },
        }
    }
    Ok((report, last_error))
}

fn run_retry(app: &mut App, ui: &Ui) -> Result<()> {
    let (report, last_error) = retry(app)?;
    let text = tf(
        M::MailRetryDone,
        &[
            ("sent", &report.sent),
            ("dropped", &report.dropped),
            ("failed", &report.failed),
            ("queued", &(report.failed + report.not_tried)),
        ],
    );
    if let Some(err) = last_error {
        // With --json, main prints the one error document.
        ui.line(&text)?;
        return Err(if err.credentials {
            Error::Config(tf(M::MailCredentials, &[("err", &err.text)]))
        } else {
            Error::MailUnavailable(tf(M::MailUnavailable, &[("err", &err.text)]))
        });
    }
    ui.result(json!({"status": "ok", "report": report}), &text)
}

pub fn mail_json(m: &MailRow) -> serde_json::Value {
    json!({
        "id": m.id,
        "account_id": m.account_id,
        "recipient": m.recipient,
        "kind": m.kind,
        "created_at": rfc3339(m.created_at),
        "attempts": m.attempts,
        "last_error": m.last_error,
        "state": m.state,
        "finished_at": m.finished_at.map(rfc3339),
    })
}

fn run_list(app: &mut App, ui: &Ui) -> Result<()> {
    let headers = [
        "#",
        t(M::ColRecipient),
        t(M::ColKind),
        t(M::ColCodeCreated),
        t(M::ColAttempts),
        t(M::ColState),
        t(M::ColLastError),
    ];
    let mut list = Listing::new(ui, &headers)?;
    app.store.read(|tx| {
        tx.for_each_mail(|m| {
            list.push(
                || mail_json(&m),
                || {
                    vec![
                        m.id.to_string(),
                        m.recipient.clone(),
                        m.kind.clone(),
                        colombia(m.created_at),
                        m.attempts.to_string(),
                        m.state.clone(),
                        m.last_error.clone().unwrap_or_default(),
                    ]
                },
            )
        })
    })?;
    list.finish()
}
