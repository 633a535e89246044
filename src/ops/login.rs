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
    let agent = app.agent.name().to_string();

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
            // A hash imported from another platform was made from the
            // password as typed there, not normalised: one whose typed
            // form is not NFKC (accents typed as two characters, full-width
            // letters, ligatures) is checked as typed too. Only such hashes
            // (those to be upgraded) and such passwords; a success upgrades
            // the hash to one of the normalised form, as any old hash.
            app.hasher.verify(secret, stored)
                || (secret != password.as_bytes()
                    && app.hasher.needs_rehash(stored)
                    && app.hasher.verify(password.as_bytes(), stored))
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
                // Refused: a verified password was wrong unless the gate
                // refused first.
                let detail = match (&account, gate) {
                    (None, _) if ambiguous => "ambiguous",
                    (None, _) => "unknown_account",
                    (Some(a), None) if a.is_disabled() => "disabled",
                    (Some(_), None) => "no_password",
                    (Some(_), Some(LoginGate::Locked { .. })) => "locked",
                    (Some(_), Some(LoginGate::Verify { .. })) => "wrong_password",
                };
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

/// The rules above, at this level (the CLI tests check them again through
/// the binary, on both engines).
#[cfg(test)]
mod tests {
    use super::super::kit::{add_account, audit, cliente, disable, nit, quick_app, stored};
    use super::{LoginOutcome, login};
    use crate::app::App;
    use crate::domain::account::{AccountType, Ident};
    use crate::domain::email::Email;

    const PW: &str = "caballo tornillo grapa verde";
    const CLIENTE: AccountType = AccountType::Cliente;

    fn ok(app: &mut App, kind: AccountType, who: &Ident, pw: &str) -> bool {
        match login(app, kind, who, pw).unwrap() {
            LoginOutcome::Ok(_) => true,
            LoginOutcome::Refused => false,
        }
    }

    #[test]
    fn each_outcome_is_refused_alike_and_audited_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", Some(PW));
        cliente(&mut app, "800003122", "luis@example.co", None);
        cliente(&mut app, "830015428", "eva@example.co", Some(PW));
        disable(&mut app, "830015428");
        let prov = AccountType::Proveedor;
        let shared = "compras@example.co";
        add_account(&mut app, prov, "900373587", shared, Some("norte"), Some(PW));
        add_account(&mut app, prov, "860518862", shared, Some("sur"), Some(PW));

        assert!(ok(&mut app, CLIENTE, &nit("900102030"), PW));
        assert!(!ok(
            &mut app,
            CLIENTE,
            &nit("900102030"),
            "otra cosa distinta"
        ));
        assert!(!ok(&mut app, CLIENTE, &nit("899999034"), PW));
        assert!(!ok(&mut app, CLIENTE, &nit("800003122"), PW));
        assert!(!ok(&mut app, CLIENTE, &nit("830015428"), PW), "disabled");
        let email = Ident::Email(Email::parse(shared).unwrap());
        assert!(
            !ok(&mut app, prov, &email, PW),
            "an email two proveedores share"
        );
        assert!(ok(&mut app, prov, &Ident::Username("norte".into()), PW));

        let details: Vec<String> = audit(&mut app, "login")
            .into_iter()
            .map(|(outcome, detail)| format!("{outcome}:{detail}"))
            .collect();
        assert_eq!(
            details,
            [
                "ok:",
                "refused:wrong_password",
                "refused:unknown_account",
                "refused:no_password",
                "refused:disabled",
                "refused:ambiguous",
                "ok:",
            ]
        );
    }

    #[test]
    fn five_failures_lock_and_a_success_before_them_clears_the_count() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        let id = cliente(&mut app, "900102030", "ana@example.co", Some(PW)).id;
        let who = nit("900102030");
        for _ in 0..4 {
            assert!(!ok(&mut app, CLIENTE, &who, "otra cosa distinta"));
        }
        assert_eq!(stored(&mut app, id).login.failures, 4);
        clock.advance(30);
        assert!(ok(&mut app, CLIENTE, &who, PW));
        let acc = stored(&mut app, id);
        assert_eq!(acc.login.failures, 0, "a success clears the count");
        let logged_in_at = app.now();
        assert_eq!(acc.last_login_at, Some(logged_in_at));

        clock.advance(30);
        for _ in 0..5 {
            assert!(!ok(&mut app, CLIENTE, &who, "otra cosa distinta"));
        }
        assert!(stored(&mut app, id).login.locked_until.is_some());
        assert!(
            !ok(&mut app, CLIENTE, &who, PW),
            "locked: the right password too"
        );
        let last = audit(&mut app, "login").pop().unwrap();
        assert_eq!(last, ("refused".into(), "locked".into()));
        assert_eq!(
            stored(&mut app, id).last_login_at,
            Some(logged_in_at),
            "a refusal records no login"
        );
    }

    /// No stored password is longer than 4 × 1024 bytes: longer is refused
    /// before any hashing, up to that is checked (and refused here).
    #[test]
    fn the_length_bound_is_four_times_the_longest_password() {
        use crate::domain::password::MAX_BYTES;
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", Some(PW));
        let who = nit("900102030");
        let before = app.hasher.evaluations();
        let at_bound = "a".repeat(MAX_BYTES * 4);
        assert!(matches!(
            login(&mut app, CLIENTE, &who, &at_bound),
            Ok(LoginOutcome::Refused)
        ));
        assert_eq!(app.hasher.evaluations(), before + 1);
        let over = "a".repeat(MAX_BYTES * 4 + 1);
        assert!(login(&mut app, CLIENTE, &who, &over).is_err());
        assert_eq!(
            app.hasher.evaluations(),
            before + 1,
            "no hash over the bound"
        );
    }

    /// A PHP platform hashed what its customer typed, byte for byte: a
    /// password typed with decomposed accents (NFD, as some keyboards and
    /// macOS send them) or full-width letters logs in, and its hash is
    /// upgraded to one of the normalised form. A hash of ours is checked
    /// once.
    #[test]
    fn an_imported_hash_of_a_password_not_in_nfkc_form_logs_in() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        // "Contraseña segura año 2020" with each ñ as n + a combining tilde.
        let nfd = "Contrasen\u{0303}a segura an\u{0303}o 2020";
        let wide = "ｏｆｉｃｉｎａ ｃｌａｖｅ ２０２０";
        for (k, typed) in [nfd, wide].into_iter().enumerate() {
            let id = cliente(
                &mut app,
                ["900102030", "830015428"][k],
                "a@example.co",
                None,
            )
            .id;
            let php = bcrypt::hash_with_result(typed, 4)
                .unwrap()
                .format_for_version(bcrypt::Version::TwoY);
            app.store
                .write(|tx| Ok(tx.set_password(id, &php, 0)?))
                .unwrap();
            let who = nit(["900102030", "830015428"][k]);
            assert!(!ok(&mut app, CLIENTE, &who, "otra clave cualquiera"));
            assert!(ok(&mut app, CLIENTE, &who, typed), "{typed:?}");
            let upgraded = stored(&mut app, id).password_hash.unwrap();
            assert!(upgraded.starts_with("$argon2id$"), "{upgraded}");
            // Now as typed, and in its normalised form too.
            assert!(ok(&mut app, CLIENTE, &who, typed));
            let normal: String = {
                use unicode_normalization::UnicodeNormalization;
                typed.nfkc().collect()
            };
            assert!(ok(&mut app, CLIENTE, &who, &normal));
        }
        // One of ours, wrong, typed in a form that is not NFKC: one hash.
        cliente(&mut app, "800003122", "b@example.co", Some(PW));
        let before = app.hasher.evaluations();
        assert!(!ok(&mut app, CLIENTE, &nit("800003122"), wide));
        assert_eq!(app.hasher.evaluations(), before + 1);
    }
}
