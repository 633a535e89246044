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
///
/// `at_prompt`: said in a session that goes on (its menu offers to type
/// the identifier again), so the hint names no flag.
pub fn confirm_refused(ident: &Ident, kind: Option<AccountType>, at_prompt: bool) -> Error {
    let imprecise = matches!((ident, kind), (Ident::Email(_), _) | (Ident::Nit(_), None));
    let hint = if at_prompt {
        M::HintIdentSharedHere
    } else {
        M::HintIdentShared
    };
    Error::Refused(if imprecise {
        format!("{} {}", t(M::ConfirmRefused), t(hint))
    } else {
        t(M::ConfirmRefused).to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::account::Disabled;
    use crate::domain::email::Email;
    use crate::domain::lang::Lang;
    use crate::domain::limits::{ChannelState, LoginState, RequestLog};
    use crate::domain::nit::Nit;

    const NOW: i64 = 1_796_000_000;

    /// A cliente with nothing happening to it, created a day ago.
    fn account() -> Account {
        Account {
            id: 7,
            kind: AccountType::Cliente,
            nit: Nit::parse("900123456").unwrap(),
            username: Some("ana\u{1b}[2J".into()),
            email: Email::parse("ana@example.co").unwrap(),
            name: None,
            lang: Lang::En,
            password_hash: None,
            created_at: NOW - 86_400,
            password_changed_at: None,
            last_login_at: None,
            login: LoginState::default(),
            channel: ChannelState::default(),
            request_log: RequestLog::parse(""),
            live_code_id: None,
            disabled: None,
        }
    }

    fn disabled(a: &mut Account, reason: Option<&str>) {
        a.disabled = Some(Disabled {
            at: NOW - 60,
            reason: reason.map(str::to_string),
        });
    }

    #[test]
    fn an_account_in_json_says_what_holds_now() {
        let limits = Limits::default();
        let mut a = account();
        let j = account_json(&a, NOW, &limits);
        assert_eq!(j["id"], 7);
        assert_eq!(j["type"], "cliente");
        assert_eq!(j["nit"], "900123456");
        assert_eq!(j["nit_display"], a.nit.display());
        assert_eq!(j["username"], "ana\u{1b}[2J", "JSON keeps it as it is");
        assert_eq!(j["lang"], "en");
        assert_eq!(
            (j["has_password"].clone(), j["disabled"].clone()),
            (json!(false), json!(false))
        );
        assert_eq!(j["recovery_enabled"], true);
        assert_eq!(j["requests_last_24h"], 0);
        assert!(j["next_request_at"].is_null() && j["login_locked_until"].is_null());
        assert_eq!(j["created_at"], rfc3339(NOW - 86_400));
        // A lock or a suspension that ends now is over.
        a.login.locked_until = Some(NOW);
        a.channel.suspended_until = Some(NOW);
        let j = account_json(&a, NOW, &limits);
        assert!(j["login_locked_until"].is_null() && j["recovery_suspended_until"].is_null());
        assert_eq!(j["recovery_enabled"], true);
        a.login.locked_until = Some(NOW + 1);
        a.channel.suspended_until = Some(NOW + 2);
        a.password_hash = Some("$argon2id$…".into());
        a.request_log = RequestLog::parse(&(NOW - 30).to_string());
        let j = account_json(&a, NOW, &limits);
        assert_eq!(j["login_locked_until"], rfc3339(NOW + 1));
        assert_eq!(j["recovery_suspended_until"], rfc3339(NOW + 2));
        assert_eq!(j["recovery_enabled"], false);
        assert_eq!(j["has_password"], true);
        assert_eq!(j["requests_last_24h"], 1);
        assert_eq!(j["next_request_at"], rfc3339(NOW + 30));
        assert!(!j.to_string().contains("argon2"), "never the hash");
        disabled(&mut a, Some("baja"));
        a.channel.suspended_until = None;
        let j = account_json(&a, NOW, &limits);
        assert_eq!(
            (j["disabled"].clone(), j["recovery_enabled"].clone()),
            (json!(true), json!(false))
        );
        assert_eq!(j["disabled_at"], rfc3339(NOW - 60));
        assert_eq!(j["disabled_reason"], "baja");
    }

    #[test]
    fn an_outcome_names_an_account_by_id_type_and_nit() {
        let a = account();
        assert_eq!(
            account_ref(&a),
            json!({"id": 7, "type": "cliente", "nit": "900123456", "nit_display": a.nit.display()})
        );
    }

    /// Disabled before locked before suspended before active; a lock or
    /// suspension ending now is over.
    #[test]
    fn the_state_word_says_the_weightiest_state() {
        let mut a = account();
        assert_eq!(state_word(&a, NOW), t(M::StateActive));
        a.channel.suspended_until = Some(NOW);
        a.login.locked_until = Some(NOW);
        assert_eq!(state_word(&a, NOW), t(M::StateActive));
        a.channel.suspended_until = Some(NOW + 1);
        assert_eq!(state_word(&a, NOW), t(M::StateSuspended));
        a.login.locked_until = Some(NOW + 1);
        assert_eq!(state_word(&a, NOW), t(M::StateLocked));
        disabled(&mut a, None);
        assert_eq!(state_word(&a, NOW), t(M::StateDisabled));
    }

    #[test]
    fn a_list_row_is_made_visible() {
        let mut a = account();
        a.password_hash = Some("x".into());
        let row = list_row(&a, NOW);
        // Each column of the list is a line of `user show`, under the
        // same word, and no two columns share one.
        let headers = list_headers();
        let show = show_rows(&a, NOW, &Limits::default(), 0);
        for h in headers {
            assert!(show.iter().any(|(k, _)| *k == h), "{h}");
            assert_eq!(headers.iter().filter(|x| **x == h).count(), 1, "{h}");
        }
        assert_eq!(row.len(), headers.len());
        assert_eq!(row[0], type_label(AccountType::Cliente));
        assert_eq!(row[1], a.nit.display());
        assert_eq!(row[2], visible("ana\u{1b}[2J"));
        assert!(!row[2].contains('\u{1b}'));
        assert_eq!((row[3].as_str(), row[4].as_str()), ("ana@example.co", ""));
        assert_eq!(
            (row[5].as_str(), row[6].as_str()),
            (t(M::Yes), t(M::StateActive))
        );
        a.password_hash = None;
        assert_eq!(list_row(&a, NOW)[5], t(M::No));
    }

    #[test]
    fn user_show_has_a_line_for_each_thing_an_agent_asks() {
        let limits = Limits::default();
        let mut a = account();
        let rows = show_rows(&a, NOW, &limits, 2);
        let get = |rows: &[(&str, String)], k: &str| {
            rows.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(&rows, t(M::ColUsername)).unwrap(),
            visible("ana\u{1b}[2J")
        );
        assert_eq!(get(&rows, t(M::ColName)).unwrap(), "—");
        assert_eq!(get(&rows, t(M::ColMailLang)).unwrap(), "en");
        assert_eq!(get(&rows, t(M::ColDisabled)), None);
        assert_eq!(get(&rows, t(M::ColPassword)).unwrap(), t(M::No));
        assert_eq!(get(&rows, t(M::ColLockedUntil)).unwrap(), "—");
        assert_eq!(
            get(&rows, t(M::ColRecovery)).unwrap(),
            t(M::RecoveryEnabled)
        );
        let used = tf(
            M::RequestsUsed,
            &[("used", &0), ("limit", &limits.requests_per_window)],
        );
        assert_eq!(get(&rows, t(M::ColRequests)).unwrap(), used);
        assert_eq!(get(&rows, t(M::ColPendingCodes)).unwrap(), "2");
        assert_eq!(get(&rows, t(M::ColLastLogin)).unwrap(), "—");
        assert_eq!(
            get(&rows, t(M::ColCreated)).unwrap(),
            colombia(NOW - 86_400)
        );

        // A lock or a suspension that ends now is over.
        a.login.locked_until = Some(NOW);
        a.channel.suspended_until = Some(NOW);
        let rows = show_rows(&a, NOW, &limits, 0);
        assert_eq!(get(&rows, t(M::ColLockedUntil)).unwrap(), "—");
        assert_eq!(
            get(&rows, t(M::ColRecovery)).unwrap(),
            t(M::RecoveryEnabled)
        );

        a.name = Some("Ana\u{202e}".into());
        a.login.locked_until = Some(NOW + 600);
        a.login.failures = 3;
        a.channel.failures = 4;
        a.channel.suspended_until = Some(NOW + 3600);
        a.request_log = RequestLog::parse(&(NOW - 30).to_string());
        a.last_login_at = Some(NOW - 5);
        let rows = show_rows(&a, NOW, &limits, 0);
        assert_eq!(get(&rows, t(M::ColName)).unwrap(), visible("Ana\u{202e}"));
        assert_eq!(
            get(&rows, t(M::ColLockedUntil)).unwrap(),
            colombia(NOW + 600)
        );
        let until = tf(
            M::RecoverySuspendedUntil,
            &[("until", &colombia(NOW + 3600))],
        );
        assert_eq!(get(&rows, t(M::ColRecovery)).unwrap(), until);
        let used = tf(
            M::RequestsUsedUntil,
            &[
                ("used", &1),
                ("limit", &limits.requests_per_window),
                ("at", &colombia(NOW + 30)),
            ],
        );
        assert_eq!(get(&rows, t(M::ColRequests)).unwrap(), used);
        assert_eq!(get(&rows, t(M::ColFailedLogins)).unwrap(), "3");
        assert_eq!(get(&rows, t(M::ColFailedConfirms)).unwrap(), "4");
        assert_eq!(get(&rows, t(M::ColLastLogin)).unwrap(), colombia(NOW - 5));

        a.channel.suspended_until = None;
        disabled(&mut a, Some("baja\u{1b}"));
        let rows = show_rows(&a, NOW, &limits, 0);
        let line = format!("{} · {}", colombia(NOW - 60), visible("baja\u{1b}"));
        assert_eq!(get(&rows, t(M::ColDisabled)).unwrap(), line);
        assert_eq!(
            get(&rows, t(M::ColRecovery)).unwrap(),
            t(M::RecoveryDisabled)
        );
        disabled(&mut a, None);
        let rows = show_rows(&a, NOW, &limits, 0);
        assert_eq!(get(&rows, t(M::ColDisabled)).unwrap(), colombia(NOW - 60));
    }

    /// The hint to be precise depends only on what was typed.
    #[test]
    fn a_refusal_hints_only_from_what_was_typed() {
        let nit = Ident::Nit(Nit::parse("900123456").unwrap());
        let email = Ident::Email(Email::parse("ana@example.co").unwrap());
        let user = Ident::Username("ana".into());
        let refused = t(M::ConfirmRefused);
        let hinted = format!("{refused} {}", t(M::HintIdentShared));
        let hinted_here = format!("{refused} {}", t(M::HintIdentSharedHere));
        for (ident, kind, want, want_here) in [
            (&email, None, &hinted, &hinted_here),
            (&email, Some(AccountType::Proveedor), &hinted, &hinted_here),
            (&nit, None, &hinted, &hinted_here),
            (
                &nit,
                Some(AccountType::Cliente),
                &refused.to_string(),
                &refused.to_string(),
            ),
            (&user, None, &refused.to_string(), &refused.to_string()),
        ] {
            assert!(
                matches!(confirm_refused(ident, kind, false), Error::Refused(m) if &m == want),
                "{ident:?} {kind:?}"
            );
            // In a session that goes on, the hint names no flag.
            assert!(
                matches!(confirm_refused(ident, kind, true), Error::Refused(m) if &m == want_here && !m.contains("--")),
                "{ident:?} {kind:?}"
            );
        }
        let ui = Ui::new(false);
        let login = |ident| match login_outcome(&ui, LoginOutcome::Refused, ident) {
            Err(Error::Refused(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            login(&email),
            format!("{} {}", t(M::LoginRefused), t(M::HintEmailShared))
        );
        assert_eq!(login(&nit), t(M::LoginRefused));
        assert_eq!(login(&user), t(M::LoginRefused));
    }
}
