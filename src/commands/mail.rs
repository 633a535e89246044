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

/// How long a claim on a queued message holds: a delivery under way owns
/// its message this long, and nobody else sends it meanwhile. Far above
/// the SMTP timeout (at most 300 s per step).
pub const LEASE_SECS: i64 = 15 * 60;

/// A message that failed this many times is dropped with its last error.
pub const MAX_ATTEMPTS: i64 = 10;

/// Who is delivering a queued message, and until when.
#[derive(Debug, Clone)]
pub struct Claim {
    pub token: String,
    pub until: i64,
}

impl Claim {
    pub fn new(now: i64) -> Claim {
        use rand::RngExt;
        let bytes: [u8; 16] = rand::rng().random();
        Claim {
            token: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            until: now + LEASE_SECS,
        }
    }
}

/// Delivers a message just queued (and claimed at queueing): in the
/// background when a background delivery is configured (SMTP), else right
/// here. Never fails the caller: a message that does not go stays queued.
pub fn dispatch(app: &mut App, mail_id: i64, claim: &Claim, msg: &Message) {
    if let Some(bg) = app.background.clone()
        && spawn_delivery(&bg, mail_id, &claim.token, &msg.formatted()).is_ok()
    {
        return;
    }
    let _ = deliver(app, mail_id, &claim.token, msg);
}

/// Starts `recupera mail deliver --id N` with the claim and the message on
/// its stdin, in its own process group (a Ctrl-C at the agent's prompt does
/// not stop it), and does not wait for it.
fn spawn_delivery(bg: &Background, mail_id: i64, token: &str, bytes: &[u8]) -> std::io::Result<()> {
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
        stdin.write_all(token.as_bytes())?;
        stdin.write_all(b"\n")?;
        stdin.write_all(bytes)?;
    }
    // Reap it if this process outlives it (the interactive flow goes on).
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    Ok(())
}

/// The background side: the claim's token and the message's bytes on
/// stdin. Sends only while the claim made at queueing still holds.
fn run_deliver(app: &mut App, mail_id: i64) -> Result<()> {
    use std::io::Read;
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(1 << 20)
        .read_to_end(&mut input)
        .map_err(|e| Error::Other(e.into()))?;
    let Some(nl) = input.iter().position(|b| *b == b'\n') else {
        return Ok(());
    };
    let token = String::from_utf8_lossy(&input[..nl]).into_owned();
    let bytes = &input[nl + 1..];
    let now = app.now();
    let row = app.store.write(|tx| {
        if tx.renew_claim(mail_id, &token, now + LEASE_SECS)? {
            tx.mail(mail_id)
        } else {
            Ok(None)
        }
    })?;
    let Some(row) = row else {
        return Ok(());
    };
    let result = app.mailer.send_raw(&row.recipient, bytes);
    record(app, mail_id, &token, &result)?;
    result.map_err(|e| Error::MailUnavailable(tf(M::MailUnavailable, &[("err", &e.text)])))
}

fn deliver(
    app: &mut App,
    mail_id: i64,
    token: &str,
    msg: &Message,
) -> Result<std::result::Result<(), SendError>> {
    let result = app.mailer.send(msg);
    record(app, mail_id, token, &result)?;
    Ok(result)
}

/// Records a delivery attempt on the queue row (if the claim is still
/// ours) and in the audit log; a message that has failed `MAX_ATTEMPTS`
/// times is dropped with its last error.
fn record(
    app: &mut App,
    mail_id: i64,
    token: &str,
    result: &std::result::Result<(), SendError>,
) -> Result<()> {
    let now = app.now();
    let agent = app.agent.clone();
    app.store.write(|tx| {
        let mut outcome = if result.is_ok() { "ok" } else { "failed" };
        match &result {
            Ok(()) => {
                tx.mail_sent(mail_id, token, now)?;
            }
            Err(e) => {
                if tx.mail_failed(mail_id, token, &e.text)?
                    && tx
                        .mail(mail_id)?
                        .is_some_and(|r| r.attempts >= MAX_ATTEMPTS)
                {
                    tx.mail_dropped(mail_id, &format!("too many attempts: {}", e.text), now)?;
                    outcome = "dropped";
                }
            }
        }
        let row = tx.mail(mail_id)?;
        tx.audit(
            &AuditEntry::new(&agent, "mail.deliver", outcome)
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
    /// Refused by the server (this message only: a recipient it rejects).
    pub failed: u64,
    /// Still queued: a delivery is under way elsewhere, or an earlier
    /// message found the server down.
    pub not_tried: u64,
}

enum Prepared {
    /// Someone else holds the message (a delivery under way).
    Busy,
    Dropped,
    Ready(Box<Message>, Claim),
}

/// Claims a queued row and builds its message, re-keying a reset code in
/// the same transaction as the claim.
fn prepare(app: &mut App, row: &MailRow) -> Result<Prepared> {
    let now = app.now();
    let agent = app.agent.clone();
    let claim = Claim::new(now);
    let Some(acc) = app.store.read(|tx| tx.account(row.account_id))? else {
        app.store
            .write(|tx| tx.mail_dropped(row.id, "account_missing", now))?;
        return Ok(Prepared::Dropped);
    };
    let reset = match (row.kind.as_str(), row.code_id) {
        ("reset_code", Some(code_id)) => Some(code_id),
        ("password_changed", _) => None,
        _ => {
            app.store
                .write(|tx| tx.mail_dropped(row.id, "unknown_kind", now))?;
            return Ok(Prepared::Dropped);
        }
    };
    // A reset message gets a fresh code (the clear one was never stored);
    // its hash is made before taking the lock.
    let fresh = reset.map(|_| Zeroizing::new(code::generate(&mut rand::rng())));
    let hash = match &fresh {
        Some(c) => Some(app.hasher.hash(c.as_bytes())?),
        None => None,
    };
    // Claim (and re-key) in one transaction: two retries, or a retry and a
    // background delivery, can never both send this message.
    let claimed = app.store.write(|tx| {
        if !tx.claim_mail(row.id, &claim.token, now, claim.until)? {
            return Ok(Some(Prepared::Busy));
        }
        if let (Some(code_id), Some(hash)) = (reset, &hash)
            && !tx.rekey_code(code_id, hash, now)?
        {
            tx.mail_dropped(row.id, "code_expired_or_replaced", now)?;
            tx.audit(
                &AuditEntry::new(&agent, "mail.deliver", "dropped")
                    .account(Some(acc.id))
                    .subject(format!("mail:{}", row.id))
                    .detail("code_expired_or_replaced"),
                now,
            )?;
            return Ok(Some(Prepared::Dropped));
        }
        Ok(None)
    })?;
    if let Some(done) = claimed {
        return Ok(done);
    }
    let built = match (reset, &fresh) {
        (Some(code_id), Some(code)) => {
            let requested_at = app
                .store
                .read(|tx| tx.code_created_at(code_id))?
                .unwrap_or(row.created_at);
            app.mailer.reset_message(&ResetMail {
                to: &acc.email,
                lang: acc.lang,
                nit: &acc.nit,
                code,
                requested_at,
                ttl_hours: app.ttl_hours(),
            })
        }
        _ => app.mailer.changed_message(&ChangedMail {
            to: &acc.email,
            lang: acc.lang,
            kind: acc.kind,
            nit: &acc.nit,
            changed_at: row.created_at,
        }),
    };
    match built {
        Ok(msg) => Ok(Prepared::Ready(Box::new(msg), claim)),
        // An address lettre refuses (only a hand-edited database has one):
        // dropped with the reason, the rest of the queue goes on.
        Err(e) => {
            let reason = format!("unbuildable: {e}");
            app.store
                .write(|tx| tx.mail_dropped(row.id, &reason, now))?;
            Ok(Prepared::Dropped)
        }
    }
}

/// What stopped a retry: the server (down, or refusing our credentials).
pub struct Stopped {
    pub error: SendError,
}

/// Delivers everything queued, oldest first. A message the server refuses
/// is left failed and the next one is tried; a server that cannot be
/// reached (or refuses our credentials) stops the run, since the rest would
/// fail the same way.
pub fn retry(app: &mut App) -> Result<(RetryReport, Option<Stopped>)> {
    let ids = app.store.read(|tx| tx.queued_mail_ids())?;
    let mut report = RetryReport::default();
    for (i, id) in ids.iter().enumerate() {
        let Some(row) = app.store.read(|tx| tx.mail(*id))? else {
            continue;
        };
        if row.state != "queued" {
            continue;
        }
        match prepare(app, &row)? {
            Prepared::Busy => report.not_tried += 1,
            Prepared::Dropped => report.dropped += 1,
            Prepared::Ready(msg, claim) => match deliver(app, row.id, &claim.token, &msg)? {
                Ok(()) => report.sent += 1,
                Err(e) if e.permanent && !e.credentials => report.failed += 1,
                Err(e) => {
                    report.failed += 1;
                    report.not_tried += (ids.len() - i - 1) as u64;
                    return Ok((report, Some(Stopped { error: e })));
                }
            },
        }
    }
    Ok((report, None))
}

fn run_retry(app: &mut App, ui: &Ui) -> Result<()> {
    let (report, stopped) = retry(app)?;
    let text = tf(
        M::MailRetryDone,
        &[
            ("sent", &report.sent),
            ("dropped", &report.dropped),
            ("failed", &report.failed),
            ("queued", &(report.failed + report.not_tried)),
        ],
    );
    if let Some(Stopped { error }) = stopped {
        // With --json, main prints the one error document.
        ui.line(&text)?;
        return Err(if error.credentials {
            Error::Config(tf(M::MailCredentials, &[("err", &error.text)]))
        } else {
            Error::MailUnavailable(tf(M::MailUnavailable, &[("err", &error.text)]))
        });
    }
    if report.failed > 0 {
        ui.line(&text)?;
        return Err(Error::Data(tf(
            M::MailRejected,
            &[("failed", &report.failed)],
        )));
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
