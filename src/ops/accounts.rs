//! Account management: create, unlock, disable/enable, edit, delete.
//!
//! Invariants:
//! - Each operation is one transaction, audited with the agent.
//! - A disabled account cannot log in, gets no code (its live one dies) and
//!   answers requests and confirmations exactly as any other account does.
//!   Enabling never revives a code.
//! - A new email kills pending codes, and both the old and the new address
//!   are told (the old one with the new address masked): the defence
//!   against an account taken over through the support desk. Codes go only
//!   to the new address from then on.
//! - A deletion (Ley 1581 de 2012, habeas data) removes the account, its
//!   codes, its messages and its limits; its audit rows stay but name it by
//!   a pseudonym only, and details that held personal data are dropped.

use super::require_account;
use crate::app::App;
use crate::domain::account::{Account, AccountType, Ident, policy_words};
use crate::domain::email::Email;
use crate::domain::lang::Lang;
use crate::domain::limits::{ChannelState, LoginState, RequestLog};
use crate::domain::nit::Nit;
use crate::domain::password::Password;
use crate::error::{Error, Result};
use crate::i18n::{M, tf, type_label};
use crate::mail::queue::{self, new_claim};
use crate::store::{
    AuditEntry, InsertAccount, MailKind, NewAccount, NewNotice, Profile, UpdateProfile,
};

/// A new account, validated.
pub struct NewUser {
    pub kind: AccountType,
    pub nit: Nit,
    pub email: Email,
    pub username: Option<String>,
    pub name: Option<String>,
    pub lang: Lang,
}

pub fn exists_error(kind: AccountType, nit: &Nit) -> Error {
    Error::Data(tf(
        M::AccountExists,
        &[("type", &type_label(kind)), ("nit", &nit.display())],
    ))
}

pub fn username_taken_error(username: &str) -> Error {
    Error::Data(tf(
        M::UsernameTaken,
        &[("username", &crate::i18n::quote(username))],
    ))
}

/// Checks a new password against everything `user add` knows.
pub fn check_new_password(app: &App, pw: &Password, u: &NewUser) -> Result<()> {
    let words = policy_words(&u.nit, &u.email, u.username.as_deref(), u.name.as_deref());
    app.policy.check_all(pw, Some(u.nit.as_str()), &words)?;
    Ok(())
}

/// Creates an account. `password` is `None` for `--no-password`.
pub fn add(app: &mut App, u: &NewUser, password: Option<&Password>) -> Result<Account> {
    let hash = match password {
        Some(pw) => {
            check_new_password(app, pw, u)?;
            Some(app.hasher.hash(pw.as_bytes())?)
        }
        None => None,
    };
    let now = app.now();
    let agent = app.agent.clone();
    app.store.write(|tx| {
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
        let id = match res {
            InsertAccount::Created(id) => id,
            InsertAccount::Exists => return Err(exists_error(u.kind, &u.nit)),
            InsertAccount::UsernameTaken => {
                return Err(username_taken_error(u.username.as_deref().unwrap_or("")));
            }
        };
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
        tx.account(id)?
            .ok_or_else(|| crate::internal!("account {id} vanished"))
    })
}

/// Clears the login lock, the recovery channel's failures and suspension,
/// and the request quota: after `user unlock` the customer can log in and
/// request a code right away, and `user show` says so truthfully.
pub fn unlock(
    app: &mut App,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
) -> Result<Account> {
    let now = app.now();
    let agent = app.agent.clone();
    app.store.write(|tx| {
        let acc = require_account(tx, kind, ident, raw)?;
        tx.set_login_state(acc.id, &LoginState::default())?;
        tx.set_channel_state(acc.id, &ChannelState::default())?;
        tx.set_request_log(acc.id, &RequestLog::default())?;
        tx.audit(
            &AuditEntry::new(&agent, "user.unlock", "ok")
                .account(Some(acc.id))
                .subject(acc.nit.as_str()),
            now,
        )?;
        tx.account(acc.id)?
            .ok_or_else(|| crate::internal!("account vanished"))
    })
}

/// Disables an account (`Some(reason)`, possibly empty) or enables it
/// (`None`). Disabling kills the live code.
pub fn set_disabled(
    app: &mut App,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
    disable: Option<Option<&str>>,
) -> Result<(Account, u64)> {
    let now = app.now();
    let agent = app.agent.clone();
    app.store.write(|tx| {
        let acc = require_account(tx, kind, ident, raw)?;
        let killed = match disable {
            Some(reason) => {
                tx.set_disabled(acc.id, Some((now, reason)))?;
                let killed = tx.kill_codes(acc.id, now)?;
                let mut e = AuditEntry::new(&agent, "user.disable", "ok")
                    .account(Some(acc.id))
                    .subject(acc.nit.as_str());
                if let Some(r) = reason {
                    e = e.detail(format!("reason: {r}"));
                }
                tx.audit(&e, now)?;
                killed
            }
            None => {
                tx.set_disabled(acc.id, None)?;
                tx.audit(
                    &AuditEntry::new(&agent, "user.enable", "ok")
                        .account(Some(acc.id))
                        .subject(acc.nit.as_str()),
                    now,
                )?;
                0
            }
        };
        let acc = tx
            .account(acc.id)?
            .ok_or_else(|| crate::internal!("account vanished"))?;
        Ok((acc, killed))
    })
}

/// What `user edit` changes; `None` leaves a field as it is. For name and
/// username, `Some(None)` clears the field.
#[derive(Debug, Default)]
pub struct Edit {
    pub email: Option<Email>,
    pub name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub lang: Option<Lang>,
}

pub struct EditOutcome {
    pub account: Account,
    /// (field, before, after) of what actually changed.
    pub changes: Vec<(&'static str, String, String)>,
    /// Codes killed by an email change.
    pub killed: u64,
}

fn shown(v: Option<&str>) -> String {
    v.map_or_else(|| "-".to_string(), str::to_string)
}

pub fn edit(
    app: &mut App,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
    e: &Edit,
) -> Result<EditOutcome> {
    let now = app.now();
    let agent = app.agent.clone();
    let claim = new_claim(now);
    let (outcome, notices, old) = app.store.write(|tx| {
        let acc = require_account(tx, kind, ident, raw)?;
        let email = e.email.clone().unwrap_or_else(|| acc.email.clone());
        let username = match &e.username {
            Some(u) => u.clone(),
            None => acc.username.clone(),
        };
        let name = match &e.name {
            Some(n) => n.clone(),
            None => acc.name.clone(),
        };
        let lang = e.lang.unwrap_or(acc.lang);
        let mut changes = Vec::new();
        // A new mailbox (not a change of case) kills codes and is notified.
        let email_changed = !email.matches(&acc.email);
        if email.as_str() != acc.email.as_str() {
            changes.push(("email", acc.email.to_string(), email.to_string()));
        }
        if username != acc.username {
            changes.push((
                "username",
                shown(acc.username.as_deref()),
                shown(username.as_deref()),
            ));
        }
        if name != acc.name {
            changes.push(("name", shown(acc.name.as_deref()), shown(name.as_deref())));
        }
        if lang != acc.lang {
            changes.push(("lang", acc.lang.as_str().into(), lang.as_str().into()));
        }
        if changes.is_empty() {
            return Ok((
                EditOutcome {
                    account: acc,
                    changes,
                    killed: 0,
                },
                Vec::new(),
                None,
            ));
        }
        let res = tx.update_profile(
            acc.id,
            &Profile {
                email: &email,
                username: username.as_deref(),
                name: name.as_deref(),
                lang,
            },
        )?;
        if res == UpdateProfile::UsernameTaken {
            return Err(username_taken_error(username.as_deref().unwrap_or("")));
        }
        let mut killed = 0;
        let mut notices = Vec::new();
        if email_changed {
            killed = tx.kill_codes(acc.id, now)?;
            let masked = email.masked();
            let to_old = tx.enqueue_notice(&NewNotice {
                account_id: acc.id,
                kind: MailKind::EmailChangedOld,
                recipient: &acc.email,
                detail: Some(&masked),
                now,
                claim: Some(&claim),
            })?;
            let to_new = tx.enqueue_notice(&NewNotice {
                account_id: acc.id,
                kind: MailKind::EmailChangedNew,
                recipient: &email,
                detail: None,
                now,
                claim: Some(&claim),
            })?;
            notices = vec![
                (to_old, MailKind::EmailChangedOld),
                (to_new, MailKind::EmailChangedNew),
            ];
        }
        let detail: Vec<String> = changes
            .iter()
            .map(|(f, b, a)| format!("{f}: {b} -> {a}"))
            .collect();
        tx.audit(
            &AuditEntry::new(&agent, "user.edit", "ok")
                .account(Some(acc.id))
                .subject(acc.nit.as_str())
                .detail(detail.join("; ")),
            now,
        )?;
        let updated = tx
            .account(acc.id)?
            .ok_or_else(|| crate::internal!("account vanished"))?;
        Ok((
            EditOutcome {
                account: updated,
                changes,
                killed,
            },
            notices,
            Some(acc),
        ))
    })?;
    if let Some(old) = old {
        for (id, kind) in notices {
            let to = match kind {
                MailKind::EmailChangedOld => &old.email,
                _ => &outcome.account.email,
            };
            let msg = app
                .mailer
                .email_changed_message(&crate::mail::EmailChangedMail {
                    to,
                    lang: outcome.account.lang,
                    kind: outcome.account.kind,
                    nit: &outcome.account.nit,
                    new_masked: &outcome.account.email.masked(),
                    to_old: kind == MailKind::EmailChangedOld,
                    at: now,
                });
            if let Ok(msg) = msg {
                queue::dispatch(app, id, &claim, &msg);
            }
        }
    }
    Ok(outcome)
}

pub struct DeleteOutcome {
    pub pseudonym: String,
    /// Audit rows that now name the account by its pseudonym.
    pub audit_rows: u64,
}

/// Deletes an account for good (habeas data).
pub fn delete(app: &mut App, account: &Account) -> Result<DeleteOutcome> {
    let now = app.now();
    let agent = app.agent.clone();
    let pseudonym = format!("borrado-{}", account.id);
    let id = account.id;
    let rows = app.store.write(|tx| {
        // Re-read under the lock: it may have gone meanwhile.
        if tx.account(id)?.is_none() {
            return Err(Error::Data(tf(
                M::NoSuchAccountAny,
                &[("ident", &pseudonym)],
            )));
        }
        let rows = tx.pseudonymize_audit(id, &pseudonym)?;
        tx.delete_account(id)?;
        tx.audit(
            &AuditEntry::new(&agent, "user.delete", "ok")
                .account(Some(id))
                .subject(pseudonym.clone()),
            now,
        )?;
        Ok(rows)
    })?;
    // Best effort: the deletion is committed whatever happens here.
    let _ = app.store.scrub();
    Ok(DeleteOutcome {
        pseudonym,
        audit_rows: rows,
    })
}
