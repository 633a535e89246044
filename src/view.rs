//! How outcomes look: the `--json` documents (fields documented in the
//! README) and the text shown to people, shared by the commands that show
//! the same things.
//!
//! Invariant: text that did not come from our catalog (names, emails,
//! reasons, agents, server replies) is made visible (`i18n::visible`)
//! before it reaches a table or a line; JSON keeps it as it is, escaped by
//! the JSON encoder.

use crate::clock::{colombia, rfc3339};
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::limits::Limits;
use crate::error::{Error, Result};
use crate::i18n::{M, t, tf, type_label, visible};
use crate::ops::login::LoginOutcome;
use crate::ui::Ui;
use serde_json::{Value, json};

/// The JSON form of an account.
pub fn account_json(a: &Account, now: i64, limits: &Limits) -> Value {
    let locked = a.login.locked_until.filter(|u| *u > now);
    let suspended = a.channel.suspended_until.filter(|u| *u > now);
    let quota = limits.quota(&a.request_log, now);
    json!({
        "id": a.id,
        "type": a.kind,
        "nit": a.nit.as_str(),
        "nit_display": a.nit.display(),
        "username": a.username,
        "email": a.email.as_str(),
        "name": a.name,
        "lang": a.lang,
        "has_password": a.password_hash.is_some(),
        "disabled": a.is_disabled(),
        "disabled_at": a.disabled.as_ref().map(|d| rfc3339(d.at)),
        "disabled_reason": a.disabled.as_ref().and_then(|d| d.reason.clone()),
        "login_locked_until": locked.map(rfc3339),
        "recovery_enabled": suspended.is_none() && !a.is_disabled(),
        "recovery_suspended_until": suspended.map(rfc3339),
        "requests_last_24h": quota.used,
        "next_request_at": quota.next_at.map(rfc3339),
        "failed_logins": a.login.failures,
        "failed_confirmations": a.channel.failures,
        "last_login_at": a.last_login_at.map(rfc3339),
        "password_changed_at": a.password_changed_at.map(rfc3339),
        "created_at": rfc3339(a.created_at),
    })
}

/// The short JSON form an outcome names an account by.
pub fn account_ref(a: &Account) -> Value {
    json!({
        "id": a.id,
        "type": a.kind,
        "nit": a.nit.as_str(),
        "nit_display": a.nit.display(),
    })
}

fn yes_no(b: bool) -> &'static str {
    if b { t(M::Yes) } else { t(M::No) }
}

fn dash() -> String {
    "—".to_string()
}

/// The state word of an account for tables: active, disabled, locked.
pub fn state_word(a: &Account, now: i64) -> String {
    if a.is_disabled() {
        t(M::StateDisabled).to_string()
    } else if a.login.locked_until.is_some_and(|u| u > now) {
        t(M::StateLocked).to_string()
    } else if a.channel.suspended(now) {
        t(M::StateSuspended).to_string()
    } else {
        t(M::StateActive).to_string()
    }
}

pub fn list_headers() -> [&'static str; 7] {
    [
        t(M::ColType),
        "NIT",
        t(M::ColUsername),
        t(M::ColEmail),
        t(M::ColName),
        t(M::ColPassword),
        t(M::ColState),
    ]
}

/// One row of `user list`.
pub fn list_row(a: &Account, now: i64) -> Vec<String> {
    vec![
        type_label(a.kind).to_string(),
        a.nit.display(),
        visible(a.username.as_deref().unwrap_or_default()),
        visible(a.email.as_str()),
        visible(a.name.as_deref().unwrap_or_default()),
        yes_no(a.password_hash.is_some()).to_string(),
        state_word(a, now),
    ]
}

/// The rows of `user show`.
pub fn show_rows(
    a: &Account,
    now: i64,
    limits: &Limits,
    pending: i64,
) -> Vec<(&'static str, String)> {
    let quota = limits.quota(&a.request_log, now);
    let mut rows = vec![
        (t(M::ColType), type_label(a.kind).to_string()),
        ("NIT", a.nit.display()),
        (
            t(M::ColUsername),
            a.username.as_deref().map_or_else(dash, visible),
        ),
        (t(M::ColEmail), visible(a.email.as_str())),
        (t(M::ColName), a.name.as_deref().map_or_else(dash, visible)),
        (t(M::ColMailLang), a.lang.as_str().to_string()),
        (t(M::ColState), state_word(a, now)),
    ];
    if let Some(d) = &a.disabled {
        rows.push((
            t(M::ColDisabled),
            match &d.reason {
                Some(r) => format!("{} · {}", colombia(d.at), visible(r)),
                None => colombia(d.at),
            },
        ));
    }
    rows.extend([
        (
            t(M::ColPassword),
            yes_no(a.password_hash.is_some()).to_string(),
        ),
        (
            t(M::ColLockedUntil),
            a.login
                .locked_until
                .filter(|u| *u > now)
                .map_or_else(dash, colombia),
        ),
        (
            t(M::ColRecovery),
            match a.channel.suspended_until.filter(|u| *u > now) {
                Some(u) => tf(M::RecoverySuspendedUntil, &[("until", &colombia(u))]),
                None if a.is_disabled() => t(M::RecoveryDisabled).to_string(),
                None => t(M::RecoveryEnabled).to_string(),
            },
        ),
        (
            t(M::ColRequests),
            match quota.next_at {
                Some(at) => tf(
                    M::RequestsUsedUntil,
                    &[
                        ("used", &quota.used),
                        ("limit", &quota.limit),
                        ("at", &colombia(at)),
                    ],
                ),
                None => tf(
                    M::RequestsUsed,
                    &[("used", &quota.used), ("limit", &quota.limit)],
                ),
            },
        ),
        (t(M::ColFailedLogins), a.login.failures.to_string()),
        (t(M::ColFailedConfirms), a.channel.failures.to_string()),
        (t(M::ColPendingCodes), pending.to_string()),
        (
            t(M::ColLastLogin),
            a.last_login_at.map_or_else(dash, colombia),
        ),
        (t(M::ColCreated), colombia(a.created_at)),
    ]);
    rows
}

/// Prints a login's outcome (`login`, and the end of `reset confirm`).
pub fn login_outcome(ui: &Ui, outcome: LoginOutcome, ident: &Ident) -> Result<()> {
    match outcome {
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
                &[("type", &type_label(acc.kind)), ("nit", &acc.nit.display())],
            ),
        ),
        LoginOutcome::Refused => Err(Error::Refused(match ident {
            Ident::Email(_) => format!("{} {}", t(M::LoginRefused), t(M::HintEmailShared)),
            _ => t(M::LoginRefused).to_string(),
        })),
    }
}

/// The one refusal of `reset confirm`. A NIT without `--type`, or an
/// email, may name several accounts: the hint to be precise depends only on
/// what was typed, never on what the database holds.
pub fn confirm_refused(ident: &Ident, kind: Option<AccountType>) -> Error {
    let imprecise = matches!((ident, kind), (Ident::Email(_), _) | (Ident::Nit(_), None));
    Error::Refused(if imprecise {
        format!("{} {}", t(M::ConfirmRefused), t(M::HintIdentShared))
    } else {
        t(M::ConfirmRefused).to_string()
    })
}
