//! `recupera demo`: the manual's steps 01–07 on a throwaway database and
//! outbox in a temporary folder, each step printed as it happens. It runs
//! the same functions as the real commands; the only shortcut is that the
//! "customer" reads the code from the outbox file instead of an inbox.

use crate::app::App;
use crate::clock::SystemClock;
use crate::domain::account::{AccountType, Ident};
use crate::domain::code::ALPHABET;
use crate::domain::email::Email;
use crate::domain::nit::Nit;
use crate::domain::password::Password;
use crate::error::{Error, Result, policy_message};
use crate::i18n::{M, lang, t, tf, type_label};
use crate::mail::{self, Mailer, Transport};
use crate::store::{DEFAULT_BUSY_TIMEOUT, Location, Store};
use crate::ui::Ui;
use rand::RngExt;
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use zeroize::Zeroizing;

use crate::ops::accounts::{NewUser, add};
use crate::ops::login::{LoginOutcome, login};
use crate::ops::reset::{ConfirmOutcome, confirm, request};

struct Steps<'a> {
    ui: &'a Ui,
    lines: Vec<String>,
}

impl Steps<'_> {
    fn say(&mut self, s: String) -> Result<()> {
        self.ui.line(&s)?;
        self.lines.push(s);
        Ok(())
    }
}

/// The newest `.eml` in the outbox: (file name, subject, plain text).
fn newest_mail(outbox: &Path) -> Result<(String, String, String)> {
    // Outbox names sort by time of writing.
    let newest = std::fs::read_dir(outbox)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .max_by_key(|e| e.file_name())
        .ok_or_else(|| crate::internal!("no mail in {}", outbox.display()))?;
    let raw = std::fs::read(newest.path())?;
    let msg = mail_parser::MessageParser::default()
        .parse(&raw)
        .ok_or_else(|| crate::internal!("unreadable mail"))?;
    // The plain-text alternative, which every message recupera writes
    // has, read as it is: `body_text` would link mail-parser's HTML decoder,
    // whose entity table is ~2,000 pointers the loader relocates at the
    // start of every command (BENCHMARKS.md, start-up).
    let text = msg
        .text_bodies()
        .find_map(|p| match &p.body {
            mail_parser::PartType::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .ok_or_else(|| crate::internal!("no plain text in {}", newest.path().display()))?;
    Ok((
        newest.file_name().to_string_lossy().into_owned(),
        msg.subject().unwrap_or_default().to_string(),
        text,
    ))
}

/// A random 4×5 passphrase from the code alphabet: strong, and no context.
fn demo_password() -> Zeroizing<String> {
    let mut rng = rand::rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..5)
                .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
                .collect()
        })
        .collect();
    Zeroizing::new(groups.join("-"))
}

pub fn run(ui: &Ui) -> Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("recupera-demo-")
        .tempdir()?;
    let db = dir.path().join("recupera.db");
    let outbox = dir.path().join("outbox");
    let store = Store::open(&Location::Sqlite(db), DEFAULT_BUSY_TIMEOUT)?;
    let mailer = Mailer {
        transport: Transport::Outbox(outbox.clone()),
        from: mail::parse_from(mail::DEFAULT_FROM)?,
        footer: None,
    };
    let mut app = App::with(store, Arc::new(SystemClock), mailer, "demo");
    let mut s = Steps {
        ui,
        lines: Vec::new(),
    };

    s.say(tf(M::DemoIntro, &[("dir", &dir.path().display())]))?;
    let nit = Nit::parse("900102030").map_err(|e| crate::error::nit_error("900102030", e))?;
    let email = Email::parse("ana.gomez@example.co")
        .map_err(|e| crate::error::email_error("ana.gomez@example.co", e))?;
    let kind = AccountType::Cliente;
    add(
        &mut app,
        &NewUser {
            kind,
            nit: nit.clone(),
            email: email.clone(),
            username: None,
            name: Some("Ana Gómez".into()),
            lang: lang(),
        },
        None,
    )?;
    s.say(tf(
        M::DemoRegister,
        &[
            ("type", &type_label(kind)),
            ("nit", &nit.display()),
            ("email", &email),
        ],
    ))?;

    s.say(t(M::Demo01).to_string())?;
    s.say(tf(
        M::Demo02,
        &[
            ("type", &type_label(kind)),
            ("nit", &nit.as_str()),
            ("email", &email),
        ],
    ))?;
    let ident = Ident::Nit(nit.clone());
    let out = request(&mut app, kind, &ident, &email)?;
    s.say(tf(
        M::Demo03,
        &[(
            "message",
            &tf(M::ReqSent, &[("email", &format!("[{}]", out.masked_email))]),
        )],
    ))?;

    let (file, subject, body) = newest_mail(&outbox)?;
    s.say(tf(M::Demo04, &[("file", &file), ("subject", &subject)]))?;
    let code_label = format!("{}: ", M::MailCode.text(lang()));
    let code = body
        .lines()
        .find_map(|l| l.trim().strip_prefix(&code_label))
        .map(|c| Zeroizing::new(c.trim().to_string()))
        .ok_or_else(|| crate::internal!("no code in the mail"))?;
    // The code is a secret even here: the mail is shown with it masked.
    for line in body.lines() {
        let shown = if line.trim().starts_with(&code_label) {
            format!("{code_label}{}", "•".repeat(code.chars().count()))
        } else {
            line.to_string()
        };
        s.say(format!("    | {shown}"))?;
    }

    let new_pw = demo_password();
    let pw = Password::new(&new_pw).map_err(|e| Error::Data(policy_message(&e)))?;
    s.say(tf(M::Demo05, &[("len", &pw.chars())]))?;
    match confirm(&mut app, Some(kind), &ident, nit.as_str(), &code, &pw)? {
        ConfirmOutcome::Updated(_) => s.say(tf(M::Demo06, &[("message", &t(M::ConfirmOk))]))?,
        other => return Err(crate::internal!("demo confirm: {other:?}")),
    }
    match confirm(&mut app, Some(kind), &ident, nit.as_str(), &code, &pw)? {
        ConfirmOutcome::Refused => {
            s.say(tf(M::DemoOldCode, &[("message", &t(M::ConfirmRefused))]))?
        }
        other => return Err(crate::internal!("code reused: {other:?}")),
    }

    match login(&mut app, kind, &ident, &new_pw)? {
        LoginOutcome::Ok(acc) => s.say(tf(
            M::Demo07,
            &[
                ("nit", &nit.as_str()),
                (
                    "message",
                    &tf(
                        M::LoginOk,
                        &[("type", &type_label(acc.kind)), ("nit", &acc.nit.display())],
                    ),
                ),
            ],
        ))?,
        LoginOutcome::Refused => {
            return Err(Error::Refused(t(M::LoginRefused).to_string()));
        }
    }
    s.say(t(M::DemoDone).to_string())?;
    ui.doc(&json!({"status": "ok", "steps": s.lines}))
}
