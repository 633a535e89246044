//! `recupera login` (manual step 07: USUARIO + CONTRASEÑA, "ACCEDER").
//!
//! Invariants:
//! - One answer for an unknown account, a wrong password, a locked account
//!   and an account without a password; the same exit code (1).
//! - Each attempt costs exactly one argon2 evaluation, hit or miss.
//! - The attempt is counted before the password is checked (see
//!   `Tx::login_gate`), so parallel guesses cannot exceed the limit.

use super::{PasswordSource, find_accounts, parse_ident, password_from_stdin, password_source};
use crate::app::App;
use crate::cli::LoginArgs;
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::password::MAX_BYTES;
use crate::error::{Error, Result};
use crate::i18n::{M, lang, t, tf};
use crate::store::{AuditEntry, LoginGate};
use crate::ui::Ui;
use serde_json::json;

pub enum LoginOutcome {
    Ok(Box<Account>),
    Refused,
}

/// Checks a password. Never says why a login was refused.
pub fn login(
    app: &mut App,
    kind: AccountType,
    ident: &Ident,
    password: &str,
) -> Result<LoginOutcome> {
    if password.len() > MAX_BYTES * 4 {
        // No stored password can be this long; refuse without hashing.
        return Err(Error::Data(t(M::PwTooLong).to_string()));
    }
    // NFKC, as when the password was set; no policy checks at login.
    let normalized = crate::domain::password::Password::new(password).ok();
    let secret: &[u8] = normalized
        .as_ref()
        .map_or(password.as_bytes(), |p| p.as_bytes());
    let now = app.now();
    let limits = app.limits;
    let agent = app.agent.clone();

    // 1. Find the account and count the attempt. An email shared by several
    // proveedores names no one account: it is refused like an unknown one
    // (same answer, same cost), and the refusal for any email says to use
    // the NIT or the username, so the hint reveals nothing.
    let (account, gate, ambiguous) = app.store.write(|tx| {
        let mut found = find_accounts(tx, Some(kind), ident)?;
        let ambiguous = found.len() > 1;
        let acc = if ambiguous { None } else { found.pop() };
        let gate = match &acc {
            Some(a) if a.password_hash.is_some() => Some(tx.login_gate(a.id, now, &limits)?),
            _ => None,
        };
        Ok((acc, gate, ambiguous))
    })?;

    // 2. One argon2 evaluation, whatever happened above.
    let verified = match (&account, gate) {
        (Some(a), Some(LoginGate::Verify)) => {
            let stored = a.password_hash.as_deref().unwrap_or_default();
            app.hasher.verify(secret, stored)
        }
        _ => {
            app.hasher.burn(secret);
            false
        }
    };

    // 3. An upgrade of an old hash costs one more hash, only on success.
    let rehash = match (&account, verified) {
        (Some(a), true) => {
            let stored = a.password_hash.clone().unwrap_or_default();
            if app.hasher.needs_rehash(&stored) {
                Some((stored, app.hasher.hash(secret)?))
            } else {
                None
            }
        }
        _ => None,
    };

    let detail = match (&account, gate) {
        (None, _) if ambiguous => "ambiguous",
        (None, _) => "unknown_account",
        (Some(_), None) => "no_password",
        (Some(_), Some(LoginGate::Locked { .. })) => "locked",
        (Some(_), Some(LoginGate::Verify)) if verified => "ok",
        (Some(_), Some(LoginGate::Verify)) => "wrong_password",
    };
    let account_id = account.as_ref().map(|a| a.id);
    let subject = ident.audit_label(account.as_ref());
    app.store.write(|tx| {
        if let (Some(id), true) = (account_id, verified) {
            let upgraded = tx.login_success(
                id,
                now,
                rehash.as_ref().map(|(o, n)| (o.as_str(), n.as_str())),
            )?;
            let mut e = AuditEntry::new(&agent, "login", "ok")
                .account(Some(id))
                .subject(subject.clone());
            if upgraded {
                e = e.detail("rehashed");
            }
            tx.audit(&e, now)?;
        } else {
            tx.audit(
                &AuditEntry::new(&agent, "login", "refused")
                    .account(account_id)
                    .subject(subject.clone())
                    .detail(detail),
                now,
            )?;
        }
        Ok(())
    })?;

    match account {
        Some(a) if verified => Ok(LoginOutcome::Ok(Box::new(a))),
        _ => Ok(LoginOutcome::Refused),
    }
}

pub fn run(app: &mut App, ui: &Ui, a: &LoginArgs) -> Result<()> {
    // "Iniciar sesión" or "Iniciar sesión como Proveedor".
    let kind = ui.account_type(a.kind, a.user.is_none())?;
    let prompt = t(M::PromptUser);
    let ident = ui.value_or_prompt(a.user.as_deref(), "--user", prompt, |s| {
        parse_ident(s, Some(kind))
    })?;
    let password = match password_source(ui, a.password_stdin)? {
        PasswordSource::Stdin => password_from_stdin()?,
        PasswordSource::Prompt => ui.password_prompt(t(M::PromptPassword), None, |_| Ok(()))?,
    };
    run_with(app, ui, kind, &ident, &password)
}

/// Logs in and prints the outcome (also used right after `reset confirm`).
pub fn run_with(
    app: &mut App,
    ui: &Ui,
    kind: AccountType,
    ident: &Ident,
    password: &str,
) -> Result<()> {
    match login(app, kind, ident, password)? {
        LoginOutcome::Ok(acc) => ui.result(
            json!({
                "status": "ok",
                "account": {
                    "id": acc.id,
                    "type": acc.kind,
                    "nit": acc.nit.as_str(),
                    "nit_display": acc.nit.display(),
                    "username": acc.username,
                    "name": acc.name,
                }
            }),
            &tf(
                M::LoginOk,
                &[
                    ("type", &acc.kind.label(lang())),
                    ("nit", &acc.nit.display()),
                ],
            ),
        ),
        LoginOutcome::Refused => Err(Error::Refused(match ident {
            Ident::Email(_) => format!("{} {}", t(M::LoginRefused), t(M::HintEmailShared)),
            _ => t(M::LoginRefused).to_string(),
        })),
    }
}
