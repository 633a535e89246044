//! Logging in (manual step 07: USUARIO + CONTRASEÑA, "ACCEDER").
//!
//! Invariants:
//! - One outcome for an unknown account, a wrong password, a locked,
//!   disabled or password-less account.
//! - Each attempt costs exactly one password-hash evaluation, hit or miss,
//!   and runs the same statements (a miss against `NO_ROW`).
//! - The attempt is counted before the password is checked (the gate's
//!   state is stored in the same transaction that read it), so parallel
//!   guesses cannot exceed the limit.

use super::{NO_ROW, find_accounts};
use crate::app::App;
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::limits::{LoginGate, LoginState};
use crate::domain::password::{MAX_BYTES, Password};
use crate::error::{Error, Result};
use crate::i18n::{M, t};
use crate::store::AuditEntry;

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
    let normalized = Password::new(password).ok();
    let secret: &[u8] = normalized
        .as_ref()
        .map_or(password.as_bytes(), |p| p.as_bytes());
    let now = app.now();
    let limits = app.limits;
    let agent = app.agent.clone();

    // 1. Find the account and count the attempt. An email shared by several
    // proveedores names no one account: it is refused like an unknown one
    // (same answer, same cost).
    let (account, gate, ambiguous) = app.store.write(|tx| {
        let mut found = find_accounts(tx, Some(kind), ident)?;
        let ambiguous = found.len() > 1;
        let acc = if ambiguous { None } else { found.pop() };
        let gate = match &acc {
            Some(a) if a.password_hash.is_some() && !a.is_disabled() => {
                let g = limits.login_gate(a.login, now);
                if let LoginGate::Verify { counted } = &g {
                    tx.set_login_state(a.id, counted)?;
                }
                Some(g)
            }
            _ => None,
        };
        if !matches!(gate, Some(LoginGate::Verify { .. })) {
            tx.set_login_state(NO_ROW, &LoginState::default())?;
        }
        Ok((acc, gate, ambiguous))
    })?;

    // 2. One hash evaluation, whatever happened above.
    let verified = match (&account, gate) {
        (Some(a), Some(LoginGate::Verify { .. })) => {
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
        (Some(a), None) if a.is_disabled() => "disabled",
        (Some(_), None) => "no_password",
        (Some(_), Some(LoginGate::Locked { .. })) => "locked",
        (Some(_), Some(LoginGate::Verify { .. })) if verified => "ok",
        (Some(_), Some(LoginGate::Verify { .. })) => "wrong_password",
    };
    let account_id = account.as_ref().map(|a| a.id);
    let subject = ident.audit_label(account.as_ref());
    app.store.write(|tx| {
        match (account_id, verified) {
            (Some(id), true) => {
                tx.set_login_state(id, &LoginState::default())?;
                tx.set_last_login(id, now)?;
                let upgraded = match &rehash {
                    Some((old, new)) => tx.replace_password_hash(id, old, new)?,
                    None => false,
                };
                let mut e = AuditEntry::new(&agent, "login", "ok")
                    .account(Some(id))
                    .subject(subject.clone());
                if upgraded {
                    e = e.detail("rehashed");
                }
                tx.audit(&e, now)?;
            }
            _ => {
                // The statements of a success, changing nothing (NO_ROW).
                tx.set_login_state(NO_ROW, &LoginState::default())?;
                tx.set_last_login(NO_ROW, now)?;
                tx.audit(
                    &AuditEntry::new(&agent, "login", "refused")
                        .account(account_id)
                        .subject(subject.clone())
                        .detail(detail),
                    now,
                )?
            }
        }
        Ok(())
    })?;

    match account {
        Some(a) if verified => Ok(LoginOutcome::Ok(Box::new(a))),
        _ => Ok(LoginOutcome::Refused),
    }
}
