//! `recupera user add | list | show | unlock`.

use super::{PasswordSource, parse_ident, require_account};
use crate::app::App;
use crate::cli::{UserAddArgs, UserCommand, UserIdentArgs, UserListArgs};
use crate::clock::{colombia, rfc3339};
use crate::domain::account::{Account, AccountType, NAME_MAX, parse_username, policy_words};
use crate::domain::email::Email;
use crate::domain::nit::Nit;
use crate::domain::password::{Password, Policy, confirm};
use crate::error::{Error, Result, email_error, nit_error, policy_message};
use crate::i18n::{Lang, M, lang, t, tf};
use crate::store::{AuditEntry, InsertAccount, Limits, NewAccount};
use crate::table::{self, Listing};
use crate::ui::Ui;
use serde_json::{Value, json};

pub fn run(app: &mut App, ui: &Ui, cmd: &UserCommand, lang_on_argv: Option<Lang>) -> Result<()> {
    match cmd {
        UserCommand::Add(a) => run_add(app, ui, a, lang_on_argv),
        UserCommand::List(a) => run_list(app, ui, a),
        UserCommand::Show(a) => run_show(app, ui, a),
        UserCommand::Unlock(a) => run_unlock(app, ui, a),
    }
}

pub fn parse_nit(s: &str) -> Result<Nit> {
    Nit::parse(s).map_err(|e| nit_error(s, e))
}

pub fn parse_email(s: &str) -> Result<Email> {
    Email::parse(s).map_err(|e| email_error(s, e))
}

pub fn parse_name(s: &str) -> Result<String> {
    let s = s.trim();
    if s.chars().count() > NAME_MAX {
        return Err(Error::Data(t(M::NameTooLong).to_string()));
    }
    if s.chars().any(char::is_control) {
        return Err(Error::Data(t(M::NameInvalid).to_string()));
    }
    Ok(s.to_string())
}

/// A new account, validated.
pub struct NewUser {
    pub kind: AccountType,
    pub nit: Nit,
    pub email: Email,
    pub username: Option<String>,
    pub name: Option<String>,
    pub lang: Lang,
}

/// Creates an account. `password` is `None` for `--no-password`.
pub fn add(app: &mut App, u: &NewUser, password: Option<&Password>) -> Result<Account> {
    let hash = match password {
        Some(pw) => {
            check_new_password(&app.policy, pw, u)?;
            Some(app.hasher.hash(pw.as_bytes())?)
        }
        None => None,
    };
    let now = app.now();
    let agent = app.agent.clone();
    let id = app.store.write(|tx| {
        let res = tx.insert_account(&NewAccount {
            kind: u.kind,
            nit: &u.nit,
            username: u.username.as_deref(),
            email: &u.email,
            name: u.name.as_deref(),
            lang: u.lang,
            password_hash: hash.as_deref(),
            now,
        })?;
        match res {
            InsertAccount::Created(id) => {
                tx.audit(
                    &AuditEntry::new(&agent, "user.add", "ok")
                        .account(Some(id))
                        .subject(u.nit.as_str())
                        .detail(if hash.is_some() {
                            "with_password"
                        } else {
                            "no_password"
                        }),
                    now,
                )?;
                Ok(id)
            }
            InsertAccount::Exists => Err(Error::Data(tf(
                M::AccountExists,
                &[("type", &u.kind.label(lang())), ("nit", &u.nit.display())],
            ))),
            InsertAccount::UsernameTaken => Err(Error::Data(tf(
                M::UsernameTaken,
                &[("username", &u.username.as_deref().unwrap_or(""))],
            ))),
        }
    })?;
    app.store
        .read(|tx| tx.account(id))?
        .ok_or_else(|| Error::Other(anyhow::anyhow!("account {id} vanished")))
}

fn check_new_password(policy: &Policy, pw: &Password, u: &NewUser) -> Result<()> {
    let words = policy_words(&u.nit, &u.email, u.username.as_deref(), u.name.as_deref());
    policy.check_all(pw, Some(u.nit.as_str()), &words)?;
    Ok(())
}

fn run_add(app: &mut App, ui: &Ui, a: &UserAddArgs, lang_on_argv: Option<Lang>) -> Result<()> {
    if a.password_stdin && a.no_password {
        return Err(Error::Usage(t(M::PasswordConflict).to_string()));
    }
    let kind = ui.account_type(a.kind, a.nit.is_none())?;
    let nit = ui.value_or_prompt(a.nit.as_deref(), "--nit", t(M::PromptNit), parse_nit)?;
    let email = ui.value_or_prompt(
        a.email.as_deref(),
        "--email",
        t(M::PromptEmail),
        parse_email,
    )?;
    // Decide where the password comes from before reading anything.
    let source = if a.no_password {
        None
    } else if a.password_stdin {
        Some(PasswordSource::Stdin)
    } else if ui.interactive {
        Some(PasswordSource::Prompt)
    } else {
        return Err(Error::Usage(t(M::MissingPasswordSource).to_string()));
    };
    let username = match &a.username {
        Some(u) => Some(parse_username(u)?),
        None if ui.interactive && kind == AccountType::Proveedor => ui
            .optional_prompt(t(M::PromptUsername))?
            .map(|u| parse_username(&u))
            .transpose()?,
        None => None,
    };
    let name = match &a.name {
        Some(n) => Some(parse_name(n)?).filter(|n| !n.is_empty()),
        None => None,
    };
    let u = NewUser {
        kind,
        nit,
        email,
        username,
        name,
        lang: a.mail_lang.or(lang_on_argv).unwrap_or(Lang::Es),
    };
    let password = match source {
        None => None,
        Some(PasswordSource::Stdin) => Some(super::new_password_from_stdin()?),
        Some(PasswordSource::Prompt) => {
            let policy = app.policy;
            let raw = ui.password_prompt(
                t(M::PromptNewPassword),
                Some(t(M::PromptConfirmPassword)),
                |s| {
                    Password::new(s)
                        .map_err(|e| policy_message(&e))
                        .and_then(|pw| {
                            check_new_password(&policy, &pw, &u).map_err(|e| e.to_string())
                        })
                },
            )?;
            let pw = Password::new(&raw)?;
            confirm(&pw, &raw)?;
            Some(pw)
        }
    };
    let acc = add(app, &u, password.as_ref())?;
    let text = tf(
        M::UserAdded,
        &[
            ("type", &acc.kind.label(lang())),
            ("nit", &acc.nit.display()),
            ("email", &acc.email),
        ],
    );
    let text = if password.is_none() {
        format!("{text}\n{}", t(M::UserAddedNoPassword))
    } else {
        text
    };
    ui.result(
        json!({"status": "created", "account": account_json(&acc, app.now(), None, &app.limits)}),
        &text,
    )
}

/// The JSON form of an account (fields documented in the README).
pub fn account_json(a: &Account, now: i64, pending_codes: Option<i64>, limits: &Limits) -> Value {
    let locked = a.login_locked_until.filter(|u| *u > now);
    let mut v = json!({
        "id": a.id,
        "type": a.kind,
        "nit": a.nit.as_str(),
        "nit_display": a.nit.display(),
        "username": a.username,
        "email": a.email.as_str(),
        "name": a.name,
        "lang": a.lang,
        "has_password": a.password_hash.is_some(),
        "login_locked_until": locked.map(rfc3339),
        "recovery_enabled": a.failed_confirms < limits.account_confirm_failures,
        "failed_logins": a.failed_logins,
        "failed_confirmations": a.failed_confirms,
        "last_login_at": a.last_login_at.map(rfc3339),
        "password_changed_at": a.password_changed_at.map(rfc3339),
        "created_at": rfc3339(a.created_at),
    });
    if let Some(p) = pending_codes {
        v["pending_codes"] = json!(p);
    }
    v
}

fn yes_no(b: bool) -> &'static str {
    if b { t(M::Yes) } else { t(M::No) }
}

fn run_list(app: &mut App, ui: &Ui, a: &UserListArgs) -> Result<()> {
    let now = app.now();
    let limits = app.limits;
    let headers = [
        t(M::ColType),
        "NIT",
        t(M::ColUsername),
        t(M::ColEmail),
        t(M::ColName),
        t(M::ColPassword),
        t(M::ColLocked),
    ];
    let mut list = Listing::new(ui, &headers)?;
    app.store.read(|tx| {
        tx.for_each_account(a.kind, |acc| {
            list.push(
                || account_json(&acc, now, None, &limits),
                || {
                    let locked = acc.login_locked_until.filter(|u| *u > now).map(colombia);
                    vec![
                        acc.kind.label(lang()).to_string(),
                        acc.nit.display(),
                        acc.username.clone().unwrap_or_default(),
                        acc.email.to_string(),
                        acc.name.clone().unwrap_or_default(),
                        yes_no(acc.password_hash.is_some()).to_string(),
                        locked.unwrap_or_default(),
                    ]
                },
            )
        })
    })?;
    list.finish()
}

fn run_show(app: &mut App, ui: &Ui, a: &UserIdentArgs) -> Result<()> {
    let now = app.now();
    let (acc, pending) = app.store.read(|tx| {
        let acc = require_account(tx, a.kind, &a.ident)?;
        let pending = tx.pending_codes(acc.id, now)?;
        Ok((acc, pending))
    })?;
    let v = account_json(&acc, now, Some(pending), &app.limits);
    if ui.json {
        return ui.doc(&v);
    }
    let dash = || "—".to_string();
    let locked = acc.login_locked_until.filter(|u| *u > now);
    let rows: Vec<(&str, String)> = vec![
        (t(M::ColType), acc.kind.label(lang()).to_string()),
        ("NIT", acc.nit.display()),
        (t(M::ColUsername), acc.username.clone().unwrap_or_else(dash)),
        (t(M::ColEmail), acc.email.to_string()),
        (t(M::ColName), acc.name.clone().unwrap_or_else(dash)),
        (t(M::ColMailLang), acc.lang.as_str().to_string()),
        (
            t(M::ColPassword),
            yes_no(acc.password_hash.is_some()).to_string(),
        ),
        (
            t(M::ColLockedUntil),
            locked.map(colombia).unwrap_or_else(dash),
        ),
        (
            t(M::ColRecovery),
            if acc.failed_confirms < app.limits.account_confirm_failures {
                t(M::RecoveryEnabled).to_string()
            } else {
                t(M::RecoveryDisabled).to_string()
            },
        ),
        (t(M::ColFailedLogins), acc.failed_logins.to_string()),
        (t(M::ColFailedConfirms), acc.failed_confirms.to_string()),
        (t(M::ColPendingCodes), pending.to_string()),
        (
            t(M::ColLastLogin),
            acc.last_login_at.map(colombia).unwrap_or_else(dash),
        ),
        (t(M::ColCreated), colombia(acc.created_at)),
    ];
    table::key_values(ui, &rows)
}

/// Clears an account's login lock and failure counters.
pub fn unlock(app: &mut App, kind: Option<AccountType>, raw: &str) -> Result<Account> {
    let now = app.now();
    let agent = app.agent.clone();
    let id = app.store.write(|tx| {
        let acc = require_account(tx, kind, raw)?;
        tx.unlock(acc.id)?;
        tx.audit(
            &AuditEntry::new(&agent, "user.unlock", "ok")
                .account(Some(acc.id))
                .subject(acc.nit.as_str()),
            now,
        )?;
        Ok(acc.id)
    })?;
    app.store
        .read(|tx| tx.account(id))?
        .ok_or_else(|| Error::Other(anyhow::anyhow!("account {id} vanished")))
}

fn run_unlock(app: &mut App, ui: &Ui, a: &UserIdentArgs) -> Result<()> {
    // Validate the identifier's form first for a precise message.
    parse_ident(&a.ident, a.kind)?;
    let acc = unlock(app, a.kind, &a.ident)?;
    let now = app.now();
    ui.result(
        json!({"status": "unlocked", "account": account_json(&acc, now, None, &app.limits)}),
        &tf(
            M::UserUnlocked,
            &[
                ("type", &acc.kind.label(lang())),
                ("nit", &acc.nit.display()),
            ],
        ),
    )
}
