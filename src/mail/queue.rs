//! The mail queue: claiming, delivering, recording, retrying.
//!
//! Invariants:
//! - A message is queued in the same transaction as the state it reports
//!   (the code, the password change) and delivered after the commit; a
//!   failed delivery stays queued with its error and attempt count.
//! - Every delivery holds a claim (a token and a lease) taken in a
//!   transaction; only the claim's holder records the outcome, so two
//!   deliveries (two `mail retry`, or a retry and a background delivery)
//!   never send one message twice. A claim whose process died lapses.
//! - The queue never holds a code. Retrying a reset message gives its code
//!   a fresh value (the old one was never delivered, so nobody has it) with
//!   the original expiry; a message whose code expired or was replaced is
//!   dropped, not sent. Fresh codes are hashed on every core at once.
//! - Starting a background delivery can fail (a process at its limit):
//!   the message is then delivered here, and the caller's answer is the same.

use crate::app::{App, Background};
use crate::domain::code;
use crate::error::{Error, Result};
use crate::i18n::{M, tf};
use crate::mail::{ChangedMail, EmailChangedMail, ResetMail, SendError, SuspendedMail};
use crate::store::{AuditEntry, Claim, MailKind, MailRow, MailState};
use lettre::Message;
use zeroize::Zeroizing;

/// How long a claim on a queued message holds: a delivery under way owns
/// its message this long, and nobody else sends it meanwhile. Far above
/// the SMTP timeout (at most 300 s per step).
pub const LEASE_SECS: i64 = 15 * 60;

/// A message that failed this many times is dropped with its last error.
pub const MAX_ATTEMPTS: i64 = 10;

/// A fresh claim: a random token and a lease from `now`.
pub fn new_claim(now: i64) -> Claim {
    use rand::RngExt;
    let bytes: [u8; 16] = rand::rng().random();
    Claim {
        token: bytes.iter().map(|b| format!("{b:02x}")).collect(),
        until: now + LEASE_SECS,
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
/// its stdin, its environment cleared but for what it needs, in its own
/// process group (a Ctrl-C at the agent's prompt does not stop it), and
/// does not wait for it.
fn spawn_delivery(bg: &Background, mail_id: i64, token: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    if crate::ops::spawn_refused() {
        return Err(std::io::Error::from(std::io::ErrorKind::WouldBlock));
    }
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.args(["mail", "deliver", "--id", &mail_id.to_string()])
        .env_clear()
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
    let written = match child.stdin.take() {
        Some(mut stdin) => stdin
            .write_all(token.as_bytes())
            .and_then(|()| stdin.write_all(b"\n"))
            .and_then(|()| stdin.write_all(bytes)),
        None => Err(std::io::Error::other("no stdin")),
    };
    if let Err(e) = written {
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    // Reap it if this process outlives it (the interactive flow goes on);
    // without a thread to spare, the child is reaped when we exit.
    if !crate::ops::spawn_refused() {
        let _ = std::thread::Builder::new().spawn(move || {
            let _ = child.wait();
        });
    }
    Ok(())
}

/// The background side: the claim's token and the message's bytes on
/// stdin. Sends only while the claim made at queueing still holds.
pub fn deliver_from_stdin(app: &mut App, mail_id: i64) -> Result<()> {
    use std::io::Read;
    let mut input = Vec::new();
    std::io::stdin()
        .lock()
        .take(1 << 20)
        .read_to_end(&mut input)?;
    let Some(nl) = input.iter().position(|b| *b == b'\n') else {
        return Ok(());
    };
    let token = String::from_utf8_lossy(&input[..nl]).into_owned();
    let bytes = &input[nl + 1..];
    let now = app.now();
    let claim = Claim {
        token: token.clone(),
        until: now + LEASE_SECS,
    };
    let row = app.store.write(|tx| {
        if tx.renew_claim(mail_id, &claim)? {
            Ok(tx.mail(mail_id)?)
        } else {
            Ok(None)
        }
    })?;
    let Some(row) = row else {
        return Ok(());
    };
    let result = app.mailer.send_raw(&row.mail.recipient, bytes);
    let _dropped = record(app, mail_id, &token, &result)?;
    result.map_err(|e| Error::MailUnavailable(tf(M::MailUnavailable, &[("err", &e.text)])))
}

/// Sends one message and records the attempt; `Ok(Err(e), true)`: it
/// failed and was dropped for it.
fn deliver(
    app: &mut App,
    mail_id: i64,
    token: &str,
    msg: &Message,
) -> Result<(std::result::Result<(), SendError>, bool)> {
    let result = app.mailer.send(msg);
    let dropped = record(app, mail_id, token, &result)?;
    Ok((result, dropped))
}

/// Records a delivery attempt on the message (if the claim is still ours)
/// and in the audit log. A message the server refused for good (a 5xx, not
/// our credentials) at its `MAX_ATTEMPTS`th attempt is dropped with that
/// error; true when it was. A server that is down, or that answers "try
/// later" (4xx), never drops a message, however long that lasts: SPEC's
/// "the code is never lost", and a reset code's message is dropped anyway
/// once its code expires or is replaced.
fn record(
    app: &mut App,
    mail_id: i64,
    token: &str,
    result: &std::result::Result<(), SendError>,
) -> Result<bool> {
    let now = app.now();
    let agent = app.agent.name().to_string();
    app.store.write(|tx| {
        let mut outcome = if result.is_ok() { "ok" } else { "failed" };
        match &result {
            Ok(()) => {
                tx.mail_sent(mail_id, token, now)?;
            }
            Err(e) => {
                if tx.mail_failed(mail_id, token, &e.text)?
                    && e.permanent
                    && !e.credentials
                    && tx
                        .mail(mail_id)?
                        .is_some_and(|r| r.mail.attempts >= MAX_ATTEMPTS)
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
                .detail(row.map(|r| r.kind.as_str()).unwrap_or_default()),
            now,
        )?;
        Ok(outcome == "dropped")
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

fn drop_with(app: &mut App, row: &MailRow, reason: &str, now: i64) -> Result<Prepared> {
    let agent = app.agent.name().to_string();
    app.store.write(|tx| {
        tx.mail_dropped(row.id, reason, now)?;
        tx.audit(
            &AuditEntry::new(&agent, "mail.deliver", "dropped")
                .account(Some(row.account_id))
                .subject(format!("mail:{}", row.id))
                .detail(reason.to_string()),
            now,
        )?;
        Ok(())
    })?;
    Ok(Prepared::Dropped)
}

/// Claims a queued row and builds its message, re-keying a reset code (with
/// the fresh code hashed beforehand) in the same transaction as the claim.
fn prepare(app: &mut App, row: &MailRow, fresh: Option<Fresh>) -> Result<Prepared> {
    let now = app.now();
    let claim = new_claim(now);
    let Some(acc) = app.store.read(|tx| Ok(tx.account(row.account_id)?))? else {
        return drop_with(app, row, "account_missing", now);
    };
    // Claim (and re-key) in one transaction: two retries, or a retry and a
    // background delivery, can never both send this message.
    let agent = app.agent.name().to_string();
    let claimed = app.store.write(|tx| {
        if !tx.claim_mail(row.id, &claim, now)? {
            return Ok(Some(Prepared::Busy));
        }
        if let (Some(code_id), Some((_, hash))) = (row.code_id, &fresh)
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
    let to = crate::domain::email::Email::from_stored(row.mail.recipient.clone());
    let built = match (row.kind, row.code_id, &fresh) {
        (MailKind::ResetCode, Some(code_id), Some((code, _))) => {
            let Some(c) = app.store.read(|tx| Ok(tx.code(code_id)?))? else {
                return drop_with(app, row, "code_expired_or_replaced", now);
            };
            app.mailer.reset_message(&ResetMail {
                to: &to,
                lang: acc.lang,
                nit: &acc.nit,
                code,
                requested_at: c.created_at,
                expires_at: c.expires_at,
                now,
            })
        }
        (MailKind::PasswordChanged, _, _) => app.mailer.changed_message(&ChangedMail {
            to: &to,
            lang: acc.lang,
            kind: acc.kind,
            nit: &acc.nit,
            changed_at: row.created_at,
        }),
        (MailKind::ChannelSuspended, _, _) => app.mailer.suspended_message(&SuspendedMail {
            to: &to,
            lang: acc.lang,
            kind: acc.kind,
            nit: &acc.nit,
            at: row.created_at,
            until: row.created_at + app.limits.suspension_secs,
        }),
        (MailKind::EmailChangedOld | MailKind::EmailChangedNew, _, _) => {
            let masked = row.detail.clone().unwrap_or_else(|| acc.email.masked());
            app.mailer.email_changed_message(&EmailChangedMail {
                to: &to,
                lang: acc.lang,
                kind: acc.kind,
                nit: &acc.nit,
                new_masked: &masked,
                to_old: row.kind == MailKind::EmailChangedOld,
                at: row.created_at,
            })
        }
        _ => return drop_with(app, row, "unknown_kind", now),
    };
    match built {
        Ok(msg) => Ok(Prepared::Ready(Box::new(msg), claim)),
        // An address lettre refuses (only a hand-edited database has one):
        // dropped with the reason, the rest of the queue goes on.
        Err(e) => {
            let reason = crate::i18n::quote_long(&format!("unbuildable: {e}"));
            app.store
                .write(|tx| Ok(tx.mail_dropped(row.id, &reason, now)?))?;
            Ok(Prepared::Dropped)
        }
    }
}

/// What stopped a retry: the server (down, or refusing our credentials).
pub struct Stopped {
    pub error: SendError,
}

/// Messages prepared per round: their fresh codes are hashed in parallel.
const ROUND: usize = 64;

/// Delivers everything queued, oldest first. A message the server refuses
/// is left failed and the next one is tried; a server that cannot be
/// reached (or refuses our credentials) stops the run, since the rest would
/// fail the same way.
pub fn retry(app: &mut App) -> Result<(RetryReport, Option<Stopped>)> {
    let ids = app.store.read(|tx| Ok(tx.queued_mail_ids()?))?;
    let mut report = RetryReport::default();
    let mut done = 0usize;
    for chunk in ids.chunks(ROUND) {
        let mut rows = Vec::with_capacity(chunk.len());
        for id in chunk {
            match app.store.read(|tx| Ok(tx.mail(*id)?))? {
                Some(row) if row.mail.state == MailState::Queued => rows.push(row),
                _ => {}
            }
        }
        // A reset message needs a fresh code: generate and hash them all at
        // once, on every core (an import's invitations are thousands).
        let wants: Vec<bool> = rows
            .iter()
            .map(|r| r.kind == MailKind::ResetCode && r.code_id.is_some())
            .collect();
        let mut fresh = fresh_codes(app, &wants)?;
        for (row, fresh) in rows.iter().zip(fresh.drain(..)) {
            done += 1;
            match prepare(app, row, fresh)? {
                Prepared::Busy => report.not_tried += 1,
                Prepared::Dropped => report.dropped += 1,
                Prepared::Ready(msg, claim) => match deliver(app, row.id, &claim.token, &msg)? {
                    (Ok(()), _) => report.sent += 1,
                    // Dropped by this very attempt: said in this run.
                    (Err(_), true) => report.dropped += 1,
                    (Err(e), false) if e.permanent && !e.credentials => report.failed += 1,
                    (Err(e), false) => {
                        report.failed += 1;
                        report.not_tried += ids.len().saturating_sub(done) as u64;
                        return Ok((report, Some(Stopped { error: e })));
                    }
                },
            }
        }
    }
    Ok((report, None))
}

/// A code in clear (zeroed on drop) and its hash.
type Fresh = (Zeroizing<String>, String);

/// A fresh code and its hash for each `true`, computed in parallel (or
/// one after the other when no thread can be had).
fn fresh_codes(app: &App, wants: &[bool]) -> Result<Vec<Option<Fresh>>> {
    let hasher = &app.hasher;
    let one = |want: &bool| -> Result<Option<Fresh>> {
        if !*want {
            return Ok(None);
        }
        let c = Zeroizing::new(code::generate(&mut rand::rng()));
        let h = hasher.hash(c.as_bytes())?;
        Ok(Some((c, h)))
    };
    crate::ops::par_map(wants, one)
}

/// The queue at the library level, with the outbox as transport: a path
/// that is a file, not a folder, makes every delivery fail (temporarily,
/// as a server that is down would), and a real folder makes it succeed.
/// The SMTP-specific outcomes (a permanent refusal, bad credentials) come
/// from a scripted server (`mail::tests::scripted_smtp`); the CLI tests
/// run the queue against a real one.
#[cfg(test)]
mod tests {
    use super::{MAX_ATTEMPTS, RetryReport, retry};
    use crate::app::App;
    use crate::domain::account::AccountType;
    use crate::domain::email::Email;
    use crate::mail::Transport;
    use crate::mail::tests::{scripted_smtp, smtp_to};
    use crate::ops::kit::{audit, cliente, last_code, mails, nit, quick_app};
    use crate::ops::reset::{ConfirmOutcome, confirm, request};
    use crate::store::MailState;

    const CLIENTE: AccountType = AccountType::Cliente;

    /// Deliveries fail from now on (the outbox path is a file).
    fn server_down(app: &mut App, dir: &tempfile::TempDir) {
        let file = dir.path().join("not-a-folder");
        std::fs::write(&file, b"").unwrap();
        app.mailer.transport = Transport::Outbox(file);
    }

    fn server_up(app: &mut App, dir: &tempfile::TempDir) {
        app.mailer.transport = Transport::Outbox(dir.path().join("outbox"));
    }

    fn ask(app: &mut App, raw: &str, email: &str) {
        request(app, CLIENTE, &nit(raw), &Email::parse(email).unwrap()).unwrap();
    }

    fn report(sent: u64, dropped: u64, failed: u64, not_tried: u64) -> RetryReport {
        RetryReport {
            sent,
            dropped,
            failed,
            not_tried,
        }
    }

    fn state(app: &mut App, id: i64) -> (MailState, i64) {
        let row = app.store.read(|tx| Ok(tx.mail(id)?)).unwrap().unwrap();
        (row.mail.state, row.mail.attempts)
    }

    fn queued(app: &mut App) -> Vec<i64> {
        app.store.read(|tx| Ok(tx.queued_mail_ids()?)).unwrap()
    }

    /// The message never delivered carried a code nobody has: the retry
    /// sends a fresh one, which verifies, with the first one's expiry.
    #[test]
    fn a_retry_sends_a_fresh_code_that_keeps_the_first_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        server_down(&mut app, &dir);
        let asked_at = app.now();
        ask(&mut app, "900102030", "ana@example.co");
        let ids = queued(&mut app);
        assert_eq!(ids.len(), 1);
        assert_eq!(state(&mut app, ids[0]), (MailState::Queued, 1));

        clock.advance(600);
        server_up(&mut app, &dir);
        let (r, stopped) = retry(&mut app).unwrap();
        assert!(stopped.is_none());
        assert_eq!(r, report(1, 0, 0, 0));
        assert_eq!(state(&mut app, ids[0]), (MailState::Sent, 2));
        let text = mails(&dir.path().join("outbox")).pop().unwrap();
        let expiry = crate::clock::colombia(asked_at + app.code_ttl_secs);
        assert!(text.contains(&expiry), "expires {expiry}: {text}");
        let code = last_code(&dir);
        let pw = crate::domain::password::Password::new("vaca morada trompeta lluvia").unwrap();
        let out = confirm(&mut app, None, &nit("900102030"), "900102030", &code, &pw).unwrap();
        assert!(matches!(out, ConfirmOutcome::Updated(_)), "{out:?}");
        assert_eq!(
            audit(&mut app, "mail.deliver")[..2],
            [
                ("failed".to_string(), "reset_code".to_string()),
                ("ok".to_string(), "reset_code".to_string())
            ]
        );
        assert_eq!(
            retry(&mut app).unwrap().0,
            report(0, 0, 0, 0),
            "nothing left"
        );
    }

    /// A server that is down never drops a message, however many runs
    /// find it down: the code's message waits for it (SPEC: "the code is
    /// never lost").
    #[test]
    fn a_server_that_is_down_never_drops_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        server_down(&mut app, &dir);
        ask(&mut app, "900102030", "ana@example.co");
        let id = queued(&mut app)[0];
        for attempt in 2..=MAX_ATTEMPTS + 2 {
            let (r, stopped) = retry(&mut app).unwrap();
            assert!(stopped.is_some(), "a server that is down stops the run");
            assert_eq!(r, report(0, 0, 1, 0));
            assert_eq!(state(&mut app, id), (MailState::Queued, attempt));
        }
        server_up(&mut app, &dir);
        assert_eq!(retry(&mut app).unwrap().0, report(1, 0, 0, 0));
        let code = last_code(&dir);
        let pw = crate::domain::password::Password::new("vaca morada trompeta lluvia").unwrap();
        let out = confirm(&mut app, None, &nit("900102030"), "900102030", &code, &pw).unwrap();
        assert!(matches!(out, ConfirmOutcome::Updated(_)), "{out:?}");
    }

    /// A recipient the server refuses for good (5xx) is dropped at its
    /// tenth attempt, and the run that drops it says so.
    #[test]
    fn a_message_refused_for_good_is_dropped_at_its_tenth_attempt() {
        let port = scripted_smtp(&[("RCPT TO:<EVA@", "550 5.1.1 no such user\r\n")]);
        let (_dir, mut app) = three_queued_then(smtp_to(port, false));
        let eva = queued(&mut app)[1];
        assert_eq!(retry(&mut app).unwrap().0, report(2, 0, 1, 0));
        for attempt in 3..=MAX_ATTEMPTS {
            let (r, stopped) = retry(&mut app).unwrap();
            assert!(stopped.is_none());
            if attempt < MAX_ATTEMPTS {
                assert_eq!(r, report(0, 0, 1, 0), "attempt {attempt}");
                assert_eq!(state(&mut app, eva), (MailState::Queued, attempt));
            } else {
                assert_eq!(r, report(0, 1, 0, 0), "the run that drops it counts it");
                assert_eq!(state(&mut app, eva), (MailState::Dropped, attempt));
            }
        }
        assert_eq!(
            audit(&mut app, "mail.deliver").pop().unwrap(),
            ("dropped".to_string(), "reset_code".to_string())
        );
        assert!(queued(&mut app).is_empty());
        assert_eq!(retry(&mut app).unwrap().0, report(0, 0, 0, 0));
    }

    #[test]
    fn a_server_that_is_down_stops_the_run_and_counts_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        for (n, e) in [
            ("900102030", "ana@example.co"),
            ("830015428", "eva@example.co"),
            ("800003122", "luis@example.co"),
        ] {
            cliente(&mut app, n, e, None);
        }
        server_down(&mut app, &dir);
        ask(&mut app, "900102030", "ana@example.co");
        ask(&mut app, "830015428", "eva@example.co");
        ask(&mut app, "800003122", "luis@example.co");
        let (r, stopped) = retry(&mut app).unwrap();
        assert_eq!(r, report(0, 0, 1, 2));
        assert!(stopped.is_some_and(|s| s.error.text.contains("not-a-folder")));
        let attempts: Vec<i64> = queued(&mut app)
            .into_iter()
            .map(|id| state(&mut app, id).1)
            .collect();
        assert_eq!(attempts, [2, 1, 1], "only the first was tried again");
    }

    /// Three queued messages, for ana, eva and luis (the server was down
    /// when they were asked for), then `transport` as the server.
    fn three_queued_then(transport: Transport) -> (tempfile::TempDir, App) {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let people = [
            ("900102030", "ana@example.co"),
            ("830015428", "eva@example.co"),
            ("800003122", "luis@example.co"),
        ];
        for (n, e) in people {
            cliente(&mut app, n, e, None);
        }
        server_down(&mut app, &dir);
        for (n, e) in people {
            ask(&mut app, n, e);
        }
        app.mailer.transport = transport;
        (dir, app)
    }

    /// A recipient the server refuses for good fails that message only:
    /// the others go, and the run goes on past it.
    #[test]
    fn a_permanent_refusal_fails_that_message_and_the_run_goes_on() {
        let port = scripted_smtp(&[("RCPT TO:<EVA@", "550 5.1.1 no such user\r\n")]);
        let (_dir, mut app) = three_queued_then(smtp_to(port, false));
        let first = queued(&mut app);
        let (r, stopped) = retry(&mut app).unwrap();
        assert_eq!(r, report(2, 0, 1, 0));
        assert!(stopped.is_none());
        assert_eq!(queued(&mut app), [first[1]], "eva's stays queued");
        assert_eq!(state(&mut app, first[1]), (MailState::Queued, 2));
        assert_eq!(state(&mut app, first[0]).0, MailState::Sent);
        assert_eq!(state(&mut app, first[2]).0, MailState::Sent);
    }

    /// Credentials the server refuses would fail every message alike: the
    /// run stops at the first, the rest not tried.
    #[test]
    fn refused_credentials_stop_the_run() {
        let port = scripted_smtp(&[
            ("EHLO", "250-test\r\n250 AUTH PLAIN LOGIN\r\n"),
            ("AUTH", "535 5.7.8 bad credentials\r\n"),
        ]);
        let (_dir, mut app) = three_queued_then(smtp_to(port, true));
        let (r, stopped) = retry(&mut app).unwrap();
        assert_eq!(r, report(0, 0, 1, 2));
        let error = stopped.unwrap().error;
        assert!(
            error.credentials && error.text.contains("bad credentials"),
            "{error:?}"
        );
        let attempts: Vec<i64> = queued(&mut app)
            .into_iter()
            .map(|id| state(&mut app, id).1)
            .collect();
        assert_eq!(attempts, [2, 1, 1], "only the first was tried again");
    }

    /// A reset message whose code expired, or was replaced by a newer
    /// request, is not sent: nobody must receive a code that cannot work.
    #[test]
    fn a_retry_drops_a_code_that_expired_or_was_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        cliente(&mut app, "830015428", "eva@example.co", None);
        server_down(&mut app, &dir);
        ask(&mut app, "900102030", "ana@example.co");
        ask(&mut app, "830015428", "eva@example.co");
        clock.advance(61);
        ask(&mut app, "830015428", "eva@example.co");
        clock.advance(app.code_ttl_secs - 30);
        server_up(&mut app, &dir);
        let (r, stopped) = retry(&mut app).unwrap();
        assert!(stopped.is_none());
        assert_eq!(r, report(1, 2, 0, 0));
        let details: Vec<String> = audit(&mut app, "mail.deliver")
            .into_iter()
            .skip(3)
            .map(|(o, d)| format!("{o}:{d}"))
            .collect();
        assert_eq!(
            details,
            [
                "dropped:code_expired_or_replaced",
                "dropped:code_expired_or_replaced",
                "ok:reset_code",
            ]
        );
        assert_eq!(mails(&dir.path().join("outbox")).len(), 1);
    }

    /// Notices are rebuilt from their rows: the password change, and the
    /// suspension with the day it ends.
    #[test]
    fn a_retry_rebuilds_each_kind_of_notice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        cliente(&mut app, "830015428", "eva@example.co", None);
        let pw = crate::domain::password::Password::new("vaca morada trompeta lluvia").unwrap();
        // A password change whose notice does not go out.
        ask(&mut app, "900102030", "ana@example.co");
        let code = last_code(&dir);
        server_down(&mut app, &dir);
        confirm(&mut app, None, &nit("900102030"), "900102030", &code, &pw).unwrap();
        // A suspension whose notice does not go out: 20 wrong codes.
        for _ in 0..4 {
            clock.advance(61);
            server_up(&mut app, &dir);
            ask(&mut app, "830015428", "eva@example.co");
            let code = last_code(&dir);
            let wrong = format!(
                "{}{}",
                if code.starts_with('Z') { "Y" } else { "Z" },
                &code[1..]
            );
            server_down(&mut app, &dir);
            for _ in 0..5 {
                confirm(&mut app, None, &nit("830015428"), "830015428", &wrong, &pw).unwrap();
            }
        }
        let suspended_at = app.now();
        let before = mails(&dir.path().join("outbox")).len();
        clock.advance(3600);
        server_up(&mut app, &dir);
        let (r, _) = retry(&mut app).unwrap();
        assert_eq!(r, report(2, 0, 0, 0));
        let sent = mails(&dir.path().join("outbox"));
        assert_eq!(sent.len(), before + 2);
        let until = crate::clock::colombia(suspended_at + app.limits.suspension_secs);
        assert!(
            sent[before + 1].contains(&until),
            "until {until}: {}",
            sent[before + 1]
        );
        let kinds: Vec<String> = audit(&mut app, "mail.deliver")
            .into_iter()
            .rev()
            .take(2)
            .map(|(o, d)| format!("{o}:{d}"))
            .collect();
        assert_eq!(kinds, ["ok:channel_suspended", "ok:password_changed"]);
    }

    /// A delivery under way (a claim taken and not yet recorded) owns its
    /// message for the lease, fifteen minutes: a retry leaves it alone
    /// until then, and takes it once the lease lapsed (its process died).
    #[test]
    fn a_claim_holds_its_message_for_the_lease_and_then_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        server_down(&mut app, &dir);
        ask(&mut app, "900102030", "ana@example.co");
        let id = queued(&mut app)[0];
        let now = app.now();
        let claim = super::new_claim(now);
        assert!(
            app.store
                .write(|tx| Ok(tx.claim_mail(id, &claim, now)?))
                .unwrap()
        );
        server_up(&mut app, &dir);
        clock.advance(15 * 60 - 1);
        assert_eq!(retry(&mut app).unwrap().0, report(0, 0, 0, 1), "still held");
        clock.advance(1);
        assert_eq!(retry(&mut app).unwrap().0, report(1, 0, 0, 0), "lapsed");
    }

    /// An email change told to both mailboxes, rebuilt at the retry: the
    /// old address gets the masked new one; notices cost no hash (only a
    /// reset message gets a fresh code).
    #[test]
    fn a_retry_rebuilds_an_email_change_for_both_mailboxes_without_hashing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        server_down(&mut app, &dir);
        let new = Email::parse("gomez@example.co").unwrap();
        let change = crate::ops::accounts::Edit {
            email: Some(new.clone()),
            name: None,
            username: None,
            lang: None,
        };
        crate::ops::accounts::edit(&mut app, None, &nit("900102030"), "900102030", &change)
            .unwrap();
        server_up(&mut app, &dir);
        let before = app.hasher.evaluations();
        assert_eq!(retry(&mut app).unwrap().0, report(2, 0, 0, 0));
        assert_eq!(
            app.hasher.evaluations(),
            before,
            "no fresh code for a notice"
        );
        let mails = crate::ops::kit::sent(&dir.path().join("outbox"));
        let to: Vec<&str> = mails.iter().map(|(to, _)| to.as_str()).collect();
        assert_eq!(to, ["ana@example.co", "gomez@example.co"]);
        assert!(mails[0].1.contains(&new.masked()), "{}", mails[0].1);
        assert_ne!(mails[0].1, mails[1].1, "each mailbox its own text");
    }
}
