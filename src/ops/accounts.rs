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
    AuditEntry, AuditFilter, InsertAccount, MailKind, NewAccount, NewNotice, Profile, UpdateProfile,
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
    let agent = app.agent.name().to_string();
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
    let agent = app.agent.name().to_string();
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
    let agent = app.agent.name().to_string();
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
    /// (field, before, after) of what actually changed; `None`: no value
    /// (no username, no name).
    pub changes: Vec<(&'static str, Option<String>, Option<String>)>,
    /// Codes killed by an email change.
    pub killed: u64,
}

/// A value in the audit's detail: `-` for none.
fn shown(v: Option<&str>) -> &str {
    v.unwrap_or("-")
}

pub fn edit(
    app: &mut App,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
    e: &Edit,
) -> Result<EditOutcome> {
    let now = app.now();
    let agent = app.agent.name().to_string();
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
            changes.push((
                "email",
                Some(acc.email.to_string()),
                Some(email.to_string()),
            ));
        }
        if username != acc.username {
            changes.push(("username", acc.username.clone(), username.clone()));
        }
        if name != acc.name {
            changes.push(("name", acc.name.clone(), name.clone()));
        }
        if lang != acc.lang {
            changes.push((
                "lang",
                Some(acc.lang.as_str().into()),
                Some(lang.as_str().into()),
            ));
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
            .map(|(f, b, a)| format!("{f}: {} -> {}", shown(b.as_deref()), shown(a.as_deref())))
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

/// What a deleted account is called from then on: `borrado-N`.
pub const PSEUDONYM_PREFIX: &str = "borrado-";

/// N of a pseudonym `borrado-N`.
pub fn pseudonym_number(s: &str) -> Option<i64> {
    let n = s.strip_prefix(PSEUDONYM_PREFIX)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok().filter(|n| *n > 0)
}

pub struct DeleteOutcome {
    pub pseudonym: String,
    /// Audit rows that now name the account by its pseudonym.
    pub audit_rows: u64,
    /// No older copy of the account's data is left in the database's
    /// files (false: another process's reader kept one for now).
    pub scrubbed: bool,
    /// The account's messages removed from the outbox (`None`: mail goes
    /// over SMTP, and what was delivered is the recipient's).
    pub outbox: Option<crate::mail::OutboxSweep>,
}

/// The addresses an audit row of `user.edit` names as the account's
/// email, before and after (`email: a -> b`).
fn edited_emails(detail: &str) -> impl Iterator<Item = String> + '_ {
    detail
        .split("; ")
        .filter_map(|part| part.strip_prefix("email: "))
        .flat_map(|change| change.split(" -> "))
        .filter(|a| *a != "-" && !a.is_empty())
        .map(str::to_string)
}

/// Deletes an account for good (habeas data).
pub fn delete(app: &mut App, account: &Account) -> Result<DeleteOutcome> {
    let now = app.now();
    let agent = app.agent.name().to_string();
    let id = account.id;
    let (rows, pseudonym, mailed) = app.store.write(|tx| {
        // Re-read under the lock: it may have gone meanwhile.
        let Some(current) = tx.account(id)? else {
            return Err(Error::NotFound(tf(
                M::NoSuchAccountAny,
                &[("ident", &account.nit.display())],
            )));
        };
        // Every address its mail may have gone to: the current one, the
        // ones its edits named (read before the pseudonymization drops
        // them), and those its codes and notices were sent to.
        let mut mailed = vec![current.email.as_str().to_string()];
        let edits = AuditFilter {
            account_id: Some(id),
            event: Some("user.edit".into()),
            ..AuditFilter::default()
        };
        tx.for_each_audit(&edits, &mut |r| {
            mailed.extend(r.detail.as_deref().map(edited_emails).into_iter().flatten());
            Ok(())
        })?;
        // The pseudonym is the next number after every one given so far
        // (each deletion's own audit row names it), never the account's id:
        // SQLite gives a freed highest id to the next account, and two
        // people would share a pseudonym.
        let mut last = 0i64;
        let filter = AuditFilter {
            event: Some("user.delete".into()),
            ..AuditFilter::default()
        };
        tx.for_each_audit(&filter, &mut |r| {
            let n = r.subject.as_deref().and_then(pseudonym_number);
            last = last.max(n.unwrap_or(0));
            Ok(())
        })?;
        let pseudonym = format!("{PSEUDONYM_PREFIX}{}", last + 1);
        let rows = tx.pseudonymize_audit(id, &pseudonym)?;
        mailed.extend(tx.delete_account(id)?);
        tx.audit(
            &AuditEntry::new(&agent, "user.delete", "ok").subject(pseudonym.clone()),
            now,
        )?;
        Ok((rows, pseudonym, mailed))
    })?;
    // Best effort: the deletion is committed whatever happens here.
    let scrubbed = app.store.scrub().unwrap_or(false);
    let outbox = match &app.mailer.transport {
        crate::mail::Transport::Outbox(dir) => Some(crate::mail::sweep_outbox(dir, &mailed)),
        crate::mail::Transport::Smtp(_) => None,
    };
    Ok(DeleteOutcome {
        pseudonym,
        audit_rows: rows,
        scrubbed,
        outbox,
    })
}

#[cfg(test)]
mod tests {
    use super::super::kit::{audit, cliente, last_code, nit, proveedor, quick_app, sent, stored};
    use super::{Edit, delete, edit, set_disabled, unlock};
    use crate::app::App;
    use crate::domain::account::AccountType;
    use crate::domain::email::Email;
    use crate::domain::lang::Lang;
    use crate::domain::nit::Nit;
    use crate::ops::login::{LoginOutcome, login};
    use crate::ops::reset::{RequestResult, request};

    const CLIENTE: AccountType = AccountType::Cliente;
    const PW: &str = "caballo tornillo grapa verde";

    #[test]
    fn an_edit_names_the_emails_before_and_after() {
        let got: Vec<String> = super::edited_emails(
            "username: norte -> -; email: ana@example.co -> Ana@example.co; name: - -> Ana",
        )
        .collect();
        assert_eq!(got, ["ana@example.co", "Ana@example.co"]);
        assert_eq!(
            super::edited_emails("name: a -> b; lang: es -> en").count(),
            0
        );
        assert_eq!(
            super::edited_emails("email: - -> b@x.co").collect::<Vec<_>>(),
            ["b@x.co"]
        );
    }

    fn logs_in(app: &mut App, raw: &str, pw: &str) -> bool {
        matches!(
            login(app, CLIENTE, &nit(raw), pw).unwrap(),
            LoginOutcome::Ok(_)
        )
    }

    fn ask(app: &mut App, raw: &str, email: &str) -> RequestResult {
        request(app, CLIENTE, &nit(raw), &Email::parse(email).unwrap())
            .unwrap()
            .result
    }

    fn add_err(app: &mut App, kind: AccountType, n: &str, user: Option<&str>, pw: &str) -> String {
        let u = super::NewUser {
            kind,
            nit: Nit::parse(n).unwrap(),
            email: Email::parse("otra@example.co").unwrap(),
            username: user.map(str::to_string),
            name: None,
            lang: Lang::Es,
        };
        let pw = crate::domain::password::Password::new(pw).unwrap();
        match super::add(app, &u, Some(&pw)) {
            Ok(a) => panic!("account {} created", a.id),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn the_agent_is_worked_out_only_when_an_event_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        app.agent = crate::app::Agent::new(None);
        let id = cliente(&mut app, "900102030", "ana@example.co", None).id;
        assert!(app.agent.resolved());
        // A request for an account that does not exist is audited too.
        let (mut other, _) = quick_app(&dir);
        other.agent = crate::app::Agent::new(None);
        ask(&mut other, "900102030", "ana@example.co");
        assert!(other.agent.resolved());
        // A read writes nothing and looks up no one.
        let (mut reader, _) = quick_app(&dir);
        reader.agent = crate::app::Agent::new(None);
        assert!(
            reader
                .store
                .read(|tx| Ok(tx.account(id)?))
                .unwrap()
                .is_none()
        );
        assert!(!reader.agent.resolved());
        // Worked out late, the name is the one worked out at once.
        let rows = super::super::kit::audit_agents(&mut app, "user.add");
        assert_eq!(rows, vec![crate::app::agent_name(None)]);
    }

    #[test]
    fn add_refuses_a_second_account_a_taken_username_and_a_weak_password() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let prov = AccountType::Proveedor;
        cliente(&mut app, "900102030", "ana@example.co", Some(PW));
        proveedor(&mut app, "900373587", "b@example.co", "norte");
        let e = add_err(&mut app, CLIENTE, "900102030", None, PW);
        assert!(
            e.contains(&Nit::parse("900102030").unwrap().display()),
            "{e}"
        );
        let e = add_err(&mut app, prov, "860518862", Some("norte"), PW);
        assert!(e.contains("norte"), "{e}");
        add_err(&mut app, CLIENTE, "830015428", None, "contraseña123456");
        add_err(
            &mut app,
            CLIENTE,
            "830015428",
            None,
            "830015428 caballo verde",
        );
        let details: Vec<String> = audit(&mut app, "user.add")
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(details, ["with_password", "no_password"]);
    }

    #[test]
    fn unlock_clears_the_login_lock_the_channel_and_the_request_quota() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let id = cliente(&mut app, "900102030", "ana@example.co", Some(PW)).id;
        for _ in 0..5 {
            logs_in(&mut app, "900102030", "otra cosa distinta");
        }
        assert!(!logs_in(&mut app, "900102030", PW), "locked");
        assert_eq!(
            ask(&mut app, "900102030", "ana@example.co"),
            RequestResult::Sent
        );
        let wrong = if last_code(&dir) == "ZZZZZ" {
            "YYYYY"
        } else {
            "ZZZZZ"
        };
        let pw = crate::domain::password::Password::new("vaca morada trompeta lluvia").unwrap();
        crate::ops::reset::confirm(&mut app, None, &nit("900102030"), "900102030", wrong, &pw)
            .unwrap();
        assert_eq!(stored(&mut app, id).channel.failures, 1);
        assert_eq!(
            ask(&mut app, "900102030", "ana@example.co"),
            RequestResult::Throttled
        );

        let acc = unlock(&mut app, None, &nit("900102030"), "900102030").unwrap();
        assert_eq!(acc.id, id);
        assert_eq!(acc.login.failures, 0);
        assert_eq!(acc.channel.failures, 0);
        assert!(logs_in(&mut app, "900102030", PW), "no lock");
        assert_eq!(
            ask(&mut app, "900102030", "ana@example.co"),
            RequestResult::Sent,
            "no quota"
        );
        assert_eq!(audit(&mut app, "user.unlock").len(), 1);
    }

    #[test]
    fn disabling_kills_the_live_code_and_enabling_lets_the_account_in_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", Some(PW));
        ask(&mut app, "900102030", "ana@example.co");
        let who = nit("900102030");
        let (acc, killed) =
            set_disabled(&mut app, None, &who, "900102030", Some(Some("baja"))).unwrap();
        assert!(acc.is_disabled());
        assert_eq!(killed, 1, "the live code");
        assert!(!logs_in(&mut app, "900102030", PW));
        let (acc, killed) = set_disabled(&mut app, None, &who, "900102030", None).unwrap();
        assert!(!acc.is_disabled());
        assert_eq!(killed, 0);
        assert!(logs_in(&mut app, "900102030", PW));
    }

    #[test]
    fn edit_records_what_changed_and_a_new_mailbox_kills_codes_and_tells_both() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let prov = AccountType::Proveedor;
        proveedor(&mut app, "900373587", "b@example.co", "sur");
        proveedor(&mut app, "900102030", "ana@example.co", "norte");
        let who = nit("900102030");
        let none = || Edit {
            email: None,
            name: None,
            username: None,
            lang: None,
        };
        let ed = |app: &mut App, e: Edit| edit(app, None, &who, "900102030", &e);

        let out = ed(&mut app, none()).unwrap();
        assert!(out.changes.is_empty());
        let out = ed(
            &mut app,
            Edit {
                name: Some(Some("Ana Gómez".into())),
                username: Some(None),
                lang: Some(Lang::En),
                ..none()
            },
        )
        .unwrap();
        let fields: Vec<&str> = out.changes.iter().map(|c| c.0).collect();
        assert_eq!(fields, ["username", "name", "lang"]);
        let err = ed(
            &mut app,
            Edit {
                username: Some(Some("sur".into())),
                ..none()
            },
        );
        assert!(err.is_err(), "a username another account has");

        // A change of case is the same mailbox: recorded, nothing killed.
        request(
            &mut app,
            prov,
            &who,
            &Email::parse("ana@example.co").unwrap(),
        )
        .unwrap();
        let case = Email::parse("Ana@example.co").unwrap();
        let out = ed(
            &mut app,
            Edit {
                email: Some(case),
                ..none()
            },
        )
        .unwrap();
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.killed, 0);
        assert_eq!(sent(&dir.path().join("outbox")).len(), 1, "the code only");

        let new = Email::parse("gomez@example.co").unwrap();
        let out = ed(
            &mut app,
            Edit {
                email: Some(new),
                ..none()
            },
        )
        .unwrap();
        assert_eq!(out.killed, 1, "the code sent to the old mailbox");
        let mails = sent(&dir.path().join("outbox"));
        let to: Vec<&str> = mails[1..].iter().map(|(to, _)| to.as_str()).collect();
        assert_eq!(to, ["Ana@example.co", "gomez@example.co"]);
        assert!(
            mails[1]
                .1
                .contains(&Email::parse("gomez@example.co").unwrap().masked())
        );
        let details: Vec<String> = audit(&mut app, "user.edit")
            .into_iter()
            .map(|r| r.1)
            .collect();
        assert_eq!(
            details,
            [
                "username: norte -> -; name: - -> Ana Gómez; lang: es -> en",
                "email: ana@example.co -> Ana@example.co",
                "email: Ana@example.co -> gomez@example.co",
            ]
        );
    }

    #[test]
    fn delete_leaves_only_a_pseudonym_in_the_trail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let acc = cliente(&mut app, "900102030", "ana@example.co", Some(PW));
        logs_in(&mut app, "900102030", PW);
        let out = delete(&mut app, &acc).unwrap();
        assert_eq!(out.pseudonym, format!("borrado-{}", acc.id));
        assert_eq!(out.audit_rows, 2, "user.add and login");
        assert!(
            app.store
                .read(|tx| Ok(tx.account(acc.id)?))
                .unwrap()
                .is_none()
        );
        assert!(delete(&mut app, &acc).is_err(), "already gone");
        let subjects: Vec<String> = {
            let mut v = Vec::new();
            app.store
                .read(|tx| {
                    Ok(tx.for_each_audit(&Default::default(), &mut |r| {
                        v.push(r.subject.unwrap_or_default());
                        Ok(())
                    })?)
                })
                .unwrap();
            v
        };
        assert!(
            subjects.iter().all(|s| !s.contains("900102030")),
            "{subjects:?}"
        );
    }

    /// The outbox keeps no message to a deleted account, even to an
    /// address it had before and that no code or notice remembers after
    /// a purge: the edit's audit row named it, and was read before the
    /// pseudonymization dropped it. Another account's message stays.
    #[test]
    fn delete_clears_its_mail_from_the_outbox_even_after_a_purge() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let (mut app, clock) = quick_app(&dir);
        let acc = cliente(&mut app, "900102030", "ana@example.co", None);
        cliente(&mut app, "800003122", "eva@example.co", None);
        for (n, e) in [
            ("900102030", "ana@example.co"),
            ("800003122", "eva@example.co"),
        ] {
            let r = request(&mut app, CLIENTE, &nit(n), &Email::parse(e).unwrap()).unwrap();
            assert!(matches!(r.result, RequestResult::Sent), "{:?}", r.result);
        }
        // Both change their address; only Ana's edit is hers.
        for (n, e) in [
            ("900102030", "nueva@example.co"),
            ("800003122", "eva2@example.co"),
        ] {
            edit(
                &mut app,
                None,
                &nit(n),
                n,
                &Edit {
                    email: Some(Email::parse(e).unwrap()),
                    name: None,
                    username: None,
                    lang: None,
                },
            )
            .unwrap();
        }
        let to =
            |o: &std::path::Path| -> Vec<String> { sent(o).into_iter().map(|m| m.0).collect() };
        assert_eq!(
            to(&outbox),
            [
                "ana@example.co",
                "eva@example.co",
                "ana@example.co",
                "nueva@example.co",
                "eva@example.co",
                "eva2@example.co"
            ]
        );
        // Two days on, the purge takes every finished code and notice: the
        // old address is in no row but the edit's audit.
        clock.advance(2 * 86_400);
        crate::ops::codes::purge(&mut app, false).unwrap();
        let rows = app.store.read(|tx| Ok(tx.row_counts()?)).unwrap();
        assert_eq!((rows.codes, rows.mail), (0, 0), "{rows:?}");
        let out = delete(&mut app, &acc).unwrap();
        let sweep = out.outbox.unwrap();
        assert_eq!((sweep.removed, sweep.failed), (3, 0));
        assert_eq!(
            to(&outbox),
            ["eva@example.co", "eva@example.co", "eva2@example.co"]
        );
    }

    /// SQLite gives a freed highest id to the next account: the deleted
    /// person's history stays with its own pseudonym, the new account
    /// starts with none of it, and no two deletions share a pseudonym.
    #[test]
    fn an_id_used_again_inherits_no_history_and_no_pseudonym() {
        use crate::store::AuditFilter;
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        let b = cliente(&mut app, "830015428", "eva@example.co", Some(PW));
        logs_in(&mut app, "830015428", PW);
        assert_eq!(delete(&mut app, &b).unwrap().pseudonym, "borrado-1");
        let c = cliente(&mut app, "800003122", "luis@example.co", None);
        assert_eq!(c.id, b.id, "SQLite gave the freed id again");
        let rows = |app: &mut App, f: AuditFilter| {
            let mut v = Vec::new();
            app.store
                .read(|tx| {
                    Ok(tx.for_each_audit(&f, &mut |r| {
                        v.push(format!("{}:{}", r.event, r.subject.unwrap_or_default()));
                        Ok(())
                    })?)
                })
                .unwrap();
            v
        };
        let of_c = AuditFilter {
            account_id: Some(c.id),
            ..AuditFilter::default()
        };
        assert_eq!(rows(&mut app, of_c.clone()), ["user.add:800003122"]);
        let out = delete(&mut app, &c).unwrap();
        assert_eq!((out.pseudonym.as_str(), out.audit_rows), ("borrado-2", 1));
        let named = |p: &str| AuditFilter {
            subject: Some(p.into()),
            ..AuditFilter::default()
        };
        assert_eq!(
            rows(&mut app, named("borrado-1")),
            [
                "user.delete:borrado-1",
                "login:borrado-1",
                "user.add:borrado-1"
            ]
        );
        assert_eq!(
            rows(&mut app, named("borrado-2")),
            ["user.delete:borrado-2", "user.add:borrado-2"]
        );
        assert!(rows(&mut app, of_c).is_empty());
    }

    #[test]
    fn pseudonyms_are_read_back_exactly() {
        use super::pseudonym_number;
        assert_eq!(pseudonym_number("borrado-1"), Some(1));
        assert_eq!(pseudonym_number("borrado-42"), Some(42));
        for bad in [
            "borrado-",
            "borrado-0",
            "borrado-x",
            "borrado--1",
            "borrado-+1",
            "borrado-1a",
            "900102030",
        ] {
            assert_eq!(pseudonym_number(bad), None, "{bad}");
        }
    }
}
