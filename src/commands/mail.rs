//! `recupera mail list | retry` (and the hidden `mail deliver` that
//! `reset request` starts in the background).

use crate::app::App;
use crate::cli::MailCommand;
use crate::clock::{colombia, rfc3339};
use crate::error::{Error, Result};
use crate::i18n::{M, mail_kind_label, mail_state_label, quote_long, t, tf, visible};
use crate::mail::queue::{self, Stopped};
use crate::store::MailRow;
use crate::table::Listing;
use crate::ui::Ui;
use serde_json::json;

pub fn run(app: &mut App, ui: &Ui, cmd: &MailCommand) -> Result<()> {
    match cmd {
        MailCommand::List => run_list(app, ui),
        MailCommand::Retry => run_retry(app, ui),
        MailCommand::Deliver(a) => queue::deliver_from_stdin(app, a.id),
    }
}

fn run_retry(app: &mut App, ui: &Ui) -> Result<()> {
    let (report, stopped) = queue::retry(app)?;
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
        let outbox = matches!(app.mailer.transport, crate::mail::Transport::Outbox(_));
        let e = if error.credentials && outbox {
            Error::Config(tf(M::MailOutboxRefused, &[("err", &error.text)]))
        } else if error.credentials {
            Error::Config(tf(M::MailCredentials, &[("err", &error.text)]))
        } else {
            Error::MailUnavailable(tf(M::MailUnavailable, &[("err", &error.text)]))
        };
        // What was sent before the server went away is part of the answer.
        return Err(Error::Partial(Box::new(e), json!(report)));
    }
    if report.failed > 0 {
        ui.line(&text)?;
        return Err(Error::Partial(
            Box::new(Error::Data(tf(
                M::MailRejected,
                &[("failed", &report.failed)],
            ))),
            json!(report),
        ));
    }
    ui.result(json!({"status": "ok", "report": report}), &text)
}

pub fn mail_json(m: &MailRow) -> serde_json::Value {
    json!({
        "id": m.id,
        "account_id": m.account_id,
        "recipient": m.mail.recipient,
        "kind": m.kind.as_str(),
        "created_at": rfc3339(m.created_at),
        "attempts": m.mail.attempts,
        "last_error": m.mail.last_error,
        "state": m.mail.state.as_str(),
        "finished_at": m.mail.finished_at.map(rfc3339),
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
        tx.for_each_mail(&mut |m| {
            list.push(
                || mail_json(&m),
                || {
                    vec![
                        m.id.to_string(),
                        visible(&m.mail.recipient),
                        mail_kind_label(m.kind).to_string(),
                        colombia(m.created_at),
                        m.mail.attempts.to_string(),
                        mail_state_label(m.mail.state).to_string(),
                        // Stored already cut and made visible; once more
                        // for rows written by older versions.
                        quote_long(m.mail.last_error.as_deref().unwrap_or_default()),
                    ]
                },
                false,
            )
        })?;
        Ok(())
    })?;
    list.finish()
}
