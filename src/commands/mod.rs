//! One module per command group. Each has plain functions taking typed
//! inputs (used by the demo and tests) and a `run_*` that gathers inputs
//! from flags or prompts and renders the result.

pub mod audit;
pub mod codes;
pub mod demo;
pub mod login;
pub mod mail;
pub mod reset;
pub mod user;

use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::password::Password;
use crate::error::{Error, Result, ident_error};
use crate::i18n::{M, quote, tf};
use crate::store::Tx;
use crate::ui::{StdinPassword, Ui, read_stdin_password};
use zeroize::Zeroizing;

/// Accounts an identifier names. A username or an email names proveedores
/// only (the manual: "NIT, Usuario o email (Proveedor)").
pub fn find_accounts(
    tx: &Tx<'_>,
    kind: Option<AccountType>,
    ident: &Ident,
) -> Result<Vec<Account>> {
    match ident {
        Ident::Nit(nit) => tx.accounts_by_nit(kind, nit),
        Ident::Username(u) => match kind {
            Some(AccountType::Cliente) => Ok(Vec::new()),
            _ => tx.accounts_by_username(Some(AccountType::Proveedor), u),
        },
        Ident::Email(e) => match kind {
            Some(AccountType::Cliente) => Ok(Vec::new()),
            _ => tx.accounts_by_email(Some(AccountType::Proveedor), e),
        },
    }
}

pub fn ambiguous(raw: &str) -> Error {
    Error::Usage(tf(M::Ambiguous, &[("ident", &quote(raw))]))
}

/// Exactly one account or none; several is a usage error asking for a more
/// precise identifier.
pub fn find_one(
    tx: &Tx<'_>,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
) -> Result<Option<Account>> {
    let mut found = find_accounts(tx, kind, ident)?;
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(ambiguous(raw)),
    }
}

/// For agent commands (`user show`, `user unlock`, `audit --user`): the
/// account must exist, and saying it does not is fine (the agent is trusted).
pub fn require_account(tx: &Tx<'_>, kind: Option<AccountType>, raw: &str) -> Result<Account> {
    let ident = Ident::parse(raw, kind).map_err(|e| ident_error(raw, e))?;
    find_one(tx, kind, &ident, raw)?.ok_or_else(|| {
        Error::Data(match kind {
            Some(k) => tf(
                M::NoSuchAccount,
                &[
                    ("type", &k.label(crate::i18n::lang())),
                    ("ident", &quote(raw)),
                ],
            ),
            None => tf(M::NoSuchAccountAny, &[("ident", &quote(raw))]),
        })
    })
}

pub fn parse_ident(raw: &str, kind: Option<AccountType>) -> Result<Ident> {
    Ident::parse(raw, kind).map_err(|e| ident_error(raw, e))
}

/// Where a password comes from, decided before anything is read.
pub enum PasswordSource {
    Stdin,
    Prompt,
}

pub fn password_source(ui: &Ui, stdin_flag: bool) -> Result<PasswordSource> {
    if stdin_flag {
        Ok(PasswordSource::Stdin)
    } else if ui.interactive {
        Ok(PasswordSource::Prompt)
    } else {
        Err(Error::Usage(
            crate::i18n::t(M::MissingPasswordStdin).to_string(),
        ))
    }
}

/// A new password from stdin (checking the optional confirmation line) and
/// normalised; policy checks are the caller's.
pub fn new_password_from_stdin() -> Result<Password> {
    let StdinPassword {
        password,
        confirmation,
    } = read_stdin_password()?;
    let pw = Password::new(&password)?;
    if let Some(c) = confirmation {
        crate::domain::password::confirm(&pw, &c)?;
    }
    Ok(pw)
}

/// An existing password (login) from stdin: one line, not policy-checked.
pub fn password_from_stdin() -> Result<Zeroizing<String>> {
    Ok(read_stdin_password()?.password)
}
