//! What the ops tests share: an `App` over an in-memory SQLite store with a
//! manual clock and an outbox folder, accounts, the code a reset message
//! carries (read from the outbox, the only place it is in clear), and the
//! audit trail of one event.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::app::App;
use crate::clock::ManualClock;
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::email::Email;
use crate::domain::hash::Hasher;
use crate::domain::lang::Lang;
use crate::domain::nit::Nit;
use crate::domain::password::Password;
use crate::mail::{DEFAULT_FROM, Mailer, Transport, parse_from};
use crate::store::{AuditFilter, Store};
use std::path::Path;
use std::sync::Arc;

/// An app whose outbox is `dir/outbox`, at a fixed time, with the
/// production hasher.
pub fn app(dir: &tempfile::TempDir) -> (App, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_700_000_000));
    let mailer = Mailer {
        transport: Transport::Outbox(dir.path().join("outbox")),
        from: parse_from(DEFAULT_FROM).unwrap(),
        footer: None,
    };
    let app = App::with(Store::in_memory().unwrap(), clock.clone(), mailer, "t");
    (app, clock)
}

/// The same with a hasher at the smallest parameters: for tests of rules,
/// which hash dozens of times and do not measure the cost.
pub fn quick_app(dir: &tempfile::TempDir) -> (App, Arc<ManualClock>) {
    let (mut app, clock) = app(dir);
    app.hasher = Hasher::with_params(None, 8, 1, 1);
    (app, clock)
}

/// A NIT as an identifier.
pub fn nit(s: &str) -> Ident {
    Ident::Nit(Nit::parse(s).unwrap())
}

/// A wrong code: the one sent with its first character changed (both
/// letters are in the codes' alphabet).
pub fn wrong(code: &str) -> String {
    let first = if code.starts_with('Z') { "Y" } else { "Z" };
    format!("{first}{}", &code[1..])
}

/// A cliente with the email ana@example.co.
pub fn add(app: &mut App, nit: &str, password: Option<&str>) -> Ident {
    let acc = cliente(app, nit, "ana@example.co", password);
    Ident::Nit(acc.nit)
}

/// A cliente, with or without a password.
pub fn cliente(app: &mut App, nit: &str, email: &str, password: Option<&str>) -> Account {
    add_account(app, AccountType::Cliente, nit, email, None, password)
}

/// A proveedor with a username and no password.
pub fn proveedor(app: &mut App, nit: &str, email: &str, username: &str) -> Account {
    add_account(
        app,
        AccountType::Proveedor,
        nit,
        email,
        Some(username),
        None,
    )
}

/// Disables the cliente with this NIT (no reason given).
pub fn disable(app: &mut App, raw: &str) {
    super::accounts::set_disabled(app, Some(AccountType::Cliente), &nit(raw), raw, Some(None))
        .unwrap();
}

/// Any account.
pub fn add_account(
    app: &mut App,
    kind: AccountType,
    nit: &str,
    email: &str,
    username: Option<&str>,
    password: Option<&str>,
) -> Account {
    let pw = password.map(|p| Password::new(p).unwrap());
    super::accounts::add(
        app,
        &super::accounts::NewUser {
            kind,
            nit: Nit::parse(nit).unwrap(),
            email: Email::parse(email).unwrap(),
            username: username.map(str::to_string),
            name: None,
            lang: Lang::Es,
        },
        pw.as_ref(),
    )
    .unwrap()
}

/// The account as stored now.
pub fn stored(app: &mut App, id: i64) -> Account {
    app.store
        .read(|tx| Ok(tx.account(id)?))
        .unwrap()
        .expect("the account exists")
}

/// The plain-text part of every message in the outbox, oldest first (the
/// outbox names its files by the time they were written).
pub fn mails(outbox: &Path) -> Vec<String> {
    sent(outbox).into_iter().map(|(_, text)| text).collect()
}

/// (recipient, plain text) of every message in the outbox, oldest first.
pub fn sent(outbox: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(outbox) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| {
            let m = decode(&std::fs::read(p).unwrap());
            (m.to, m.text)
        })
        .collect()
}

/// A message read back as its reader's mail program would show it.
pub struct Decoded {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// Decodes a message's bytes (`mail-parser`): its first recipient, its
/// subject, its plain-text part and its HTML part, if any.
pub fn decode(raw: &[u8]) -> Decoded {
    let msg = mail_parser::MessageParser::default().parse(raw).unwrap();
    let to = msg
        .to()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_string();
    let text = msg
        .text_bodies()
        .find_map(|part| match &part.body {
            mail_parser::PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .expect("a plain-text part");
    let html = msg.html_bodies().find_map(|part| match &part.body {
        mail_parser::PartType::Html(t) => Some(t.to_string()),
        _ => None,
    });
    Decoded {
        to,
        subject: msg.subject().unwrap_or_default().to_string(),
        text,
        html,
    }
}

/// The code of the newest reset message in the outbox.
pub fn last_code(dir: &tempfile::TempDir) -> String {
    mails(&dir.path().join("outbox"))
        .iter()
        .rev()
        .find_map(|text| {
            text.lines().find_map(|l| {
                l.trim()
                    .strip_prefix("Código:")
                    .map(|c| c.trim().to_string())
            })
        })
        .expect("a reset message in the outbox")
}

/// `f` of every audit row of `event`, oldest first.
fn audit_map<T>(app: &mut App, event: &str, f: impl Fn(crate::store::AuditRow) -> T) -> Vec<T> {
    let filter = AuditFilter {
        event: Some(event.to_string()),
        ..AuditFilter::default()
    };
    let mut rows = Vec::new();
    app.store
        .read(|tx| {
            Ok(tx.for_each_audit(&filter, &mut |r| {
                rows.push(f(r));
                Ok(())
            })?)
        })
        .unwrap();
    rows.reverse();
    rows
}

/// (account id, subject) of every audit row of `event`, oldest first.
pub fn audit_rows(app: &mut App, event: &str) -> Vec<(Option<i64>, String)> {
    audit_map(app, event, |r| {
        (r.account_id, r.subject.unwrap_or_default())
    })
}

/// The agent of every audit row of `event`, oldest first.
pub fn audit_agents(app: &mut App, event: &str) -> Vec<String> {
    audit_map(app, event, |r| r.agent)
}

/// (outcome, detail) of every audit row of `event`, oldest first.
pub fn audit(app: &mut App, event: &str) -> Vec<(String, String)> {
    audit_map(app, event, |r| (r.outcome, r.detail.unwrap_or_default()))
}
