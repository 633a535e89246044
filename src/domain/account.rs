//! Accounts: the two types of the manual and how each is identified.
//!
//! Invariants:
//! - One account per (type, NIT).
//! - A `cliente` ("Cliente Factura") is identified by its NIT only.
//! - A `proveedor` is identified by NIT, username or email (the manual's
//!   field "NIT, Usuario o email (Proveedor)"). The three forms cannot be
//!   confused: an email has `@`; a NIT is digits and separators; a username
//!   must contain a letter and no `@`.

use super::email::{Email, EmailError};
use super::lang::Lang;
use super::limits::{ChannelState, LoginState, RequestLog};
use super::nit::{Nit, NitError};
use super::password::Context;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountType {
    /// "Cliente Factura": a platform user, identified by NIT.
    Cliente,
    /// "Proveedor": a supplier, identified by NIT, username or email.
    Proveedor,
}

impl AccountType {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountType::Cliente => "cliente",
            AccountType::Proveedor => "proveedor",
        }
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "cliente" => Some(AccountType::Cliente),
            "proveedor" => Some(AccountType::Proveedor),
            _ => None,
        }
    }

    /// The forms people and spreadsheets write: `cliente`, `proveedor`, the
    /// manual's labels "Cliente Factura" and "Proveedor", and the English
    /// `client`/`supplier`, in any case.
    pub fn parse_loose(s: &str) -> Option<Self> {
        let folded: String = s
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        match folded.as_str() {
            "cliente" | "cliente factura" | "client" | "invoice client" => {
                Some(AccountType::Cliente)
            }
            "proveedor" | "supplier" => Some(AccountType::Proveedor),
            _ => None,
        }
    }
}

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 64;
pub const NAME_MAX: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernameError {
    Length,
    Chars,
    NoLetter,
}

/// A proveedor's username: 3–64 of `[A-Za-z0-9._-]`, with at least one letter
/// so it can never be mistaken for a NIT. Compared without case.
pub fn parse_username(s: &str) -> Result<String, UsernameError> {
    let s = s.trim();
    if s.len() < USERNAME_MIN || s.len() > USERNAME_MAX {
        return Err(UsernameError::Length);
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(UsernameError::Chars);
    }
    if !s.chars().any(|c| c.is_ascii_alphabetic()) {
        return Err(UsernameError::NoLetter);
    }
    Ok(s.to_string())
}

/// What a person typed to name an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ident {
    Nit(Nit),
    Username(String),
    Email(Email),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentError {
    Nit(NitError),
    Email(EmailError),
    Username(UsernameError),
    /// A username or email given for a cliente, who is identified by NIT only.
    ClienteNeedsNit,
}

/// Looks like a NIT: digits plus the separators people type. Letters make it
/// a username (for a proveedor) or a NIT error (for a cliente).
fn looks_like_nit(s: &str) -> bool {
    let mut digits = 0usize;
    for c in s.chars() {
        match c {
            '0'..='9' => digits += 1,
            '.' | ' ' | ',' | '-' => {}
            _ => return false,
        }
    }
    digits > 0
}

impl Ident {
    /// Parses an identifier. With `kind == Some(Cliente)` only a NIT is
    /// accepted; with a proveedor or no type, all three forms are.
    pub fn parse(input: &str, kind: Option<AccountType>) -> Result<Ident, IdentError> {
        let s = input.trim();
        if kind == Some(AccountType::Cliente) {
            if s.contains('@') {
                return Err(IdentError::ClienteNeedsNit);
            }
            return Nit::parse(s).map(Ident::Nit).map_err(IdentError::Nit);
        }
        if s.contains('@') {
            return Email::parse(s).map(Ident::Email).map_err(IdentError::Email);
        }
        if looks_like_nit(s) || s.is_empty() {
            return Nit::parse(s).map(Ident::Nit).map_err(IdentError::Nit);
        }
        parse_username(s)
            .map(Ident::Username)
            .map_err(IdentError::Username)
    }

    /// What the audit log records as the subject of an attempt: the
    /// account's NIT when the identifier named an account, otherwise only
    /// the kind of identifier typed. A miss is never recorded verbatim:
    /// people type passwords into the user field.
    pub fn audit_label(&self, found: Option<&Account>) -> String {
        match (found, self) {
            (Some(a), _) => a.nit.as_str().to_string(),
            (None, Ident::Nit(_)) => "nit?".to_string(),
            (None, Ident::Username(_)) => "username?".to_string(),
            (None, Ident::Email(_)) => "email?".to_string(),
        }
    }
}

/// An account disabled by an agent (`user disable`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disabled {
    pub at: i64,
    pub reason: Option<String>,
}

/// An account, every stored field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub kind: AccountType,
    pub nit: Nit,
    pub username: Option<String>,
    pub email: Email,
    pub name: Option<String>,
    pub lang: Lang,
    pub password_hash: Option<String>,
    pub created_at: i64,
    pub password_changed_at: Option<i64>,
    pub last_login_at: Option<i64>,
    pub login: LoginState,
    pub channel: ChannelState,
    pub request_log: RequestLog,
    /// The account's one usable code, if it has one (a new code replaces
    /// it; the code's own row says whether it is still pending).
    pub live_code_id: Option<i64>,
    pub disabled: Option<Disabled>,
}

impl Account {
    pub fn is_disabled(&self) -> bool {
        self.disabled.is_some()
    }

    /// The account's own data a password must not be built from.
    pub fn policy_words(&self) -> Vec<(Context, String)> {
        policy_words(
            &self.nit,
            &self.email,
            self.username.as_deref(),
            self.name.as_deref(),
        )
    }
}

/// NIT, email (whole and local part), username, name (whole and each word).
pub fn policy_words(
    nit: &Nit,
    email: &Email,
    username: Option<&str>,
    name: Option<&str>,
) -> Vec<(Context, String)> {
    let mut words = vec![
        (Context::Nit, nit.as_str().to_string()),
        (Context::Email, email.as_str().to_string()),
        (Context::Email, email.local_part().to_string()),
    ];
    if let Some(u) = username {
        words.push((Context::Username, u.to_string()));
    }
    if let Some(n) = name {
        words.push((Context::Name, n.to_string()));
        words.extend(
            n.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| (Context::Name, w.to_string())),
        );
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cliente_is_nit_only() {
        assert!(matches!(
            Ident::parse("900.102.030-4", Some(AccountType::Cliente)),
            Ok(Ident::Nit(_))
        ));
        assert_eq!(
            Ident::parse("juan@x.co", Some(AccountType::Cliente)),
            Err(IdentError::ClienteNeedsNit)
        );
        assert_eq!(
            Ident::parse("9001A", Some(AccountType::Cliente)),
            Err(IdentError::Nit(NitError::NotDigit('A')))
        );
    }

    #[test]
    fn proveedor_forms() {
        let p = Some(AccountType::Proveedor);
        assert!(matches!(Ident::parse("900102030", p), Ok(Ident::Nit(_))));
        assert!(matches!(
            Ident::parse("acme.sas", p),
            Ok(Ident::Username(u)) if u == "acme.sas"
        ));
        assert!(matches!(
            Ident::parse("ventas@acme.co", p),
            Ok(Ident::Email(_))
        ));
        assert!(matches!(
            Ident::parse("900102030-5", p),
            Err(IdentError::Nit(NitError::WrongCheckDigit { .. }))
        ));
        assert!(matches!(Ident::parse("", p), Err(IdentError::Nit(_))));
        assert_eq!(
            Ident::parse("a b", p),
            Err(IdentError::Username(UsernameError::Chars))
        );
    }

    #[test]
    fn usernames() {
        assert_eq!(parse_username("ab"), Err(UsernameError::Length));
        assert_eq!(parse_username("123-45"), Err(UsernameError::NoLetter));
        assert_eq!(parse_username("juan@x"), Err(UsernameError::Chars));
        assert_eq!(parse_username(" Acme_1 ").unwrap(), "Acme_1");
        // The bounds are inclusive: 3 and 64 characters are usernames.
        assert_eq!(parse_username("abc").unwrap(), "abc");
        let longest = "a".repeat(USERNAME_MAX);
        assert_eq!(parse_username(&longest).unwrap(), longest);
        let too_long = "a".repeat(USERNAME_MAX + 1);
        assert_eq!(parse_username(&too_long), Err(UsernameError::Length));
    }

    #[test]
    fn separators_alone_are_not_a_nit() {
        // No digit: not NIT-shaped, so it is judged as a username.
        let p = Some(AccountType::Proveedor);
        assert_eq!(
            Ident::parse("...", p),
            Err(IdentError::Username(UsernameError::NoLetter))
        );
        assert!(matches!(Ident::parse("900.102.030", p), Ok(Ident::Nit(_))));
    }

    fn account(name: Option<&str>, username: Option<&str>) -> Account {
        Account {
            id: 7,
            kind: AccountType::Proveedor,
            nit: Nit::parse("900102030").unwrap(),
            username: username.map(str::to_string),
            email: Email::parse("ventas@acme.co").unwrap(),
            name: name.map(str::to_string),
            lang: Lang::Es,
            password_hash: None,
            created_at: 0,
            password_changed_at: None,
            last_login_at: None,
            login: LoginState::default(),
            channel: ChannelState::default(),
            request_log: RequestLog::default(),
            live_code_id: None,
            disabled: None,
        }
    }

    #[test]
    fn audit_labels_never_carry_what_was_typed_for_a_miss() {
        let a = account(None, None);
        let typed = Ident::parse("secreto-juan", None).unwrap();
        assert_eq!(typed.audit_label(Some(&a)), "900102030");
        assert_eq!(typed.audit_label(None), "username?");
        let nit = Ident::parse("900102030", None).unwrap();
        assert_eq!(nit.audit_label(None), "nit?");
        let email = Ident::parse("x@y.co", None).unwrap();
        assert_eq!(email.audit_label(None), "email?");
    }

    #[test]
    fn disabled_is_the_presence_of_a_disable_record() {
        let mut a = account(None, None);
        assert!(!a.is_disabled());
        a.disabled = Some(Disabled {
            at: 5,
            reason: None,
        });
        assert!(a.is_disabled());
    }

    #[test]
    fn policy_words_cover_every_personal_field() {
        let a = account(Some("Juan Pérez-Gómez"), Some("acme.sas"));
        let words = a.policy_words();
        let words: Vec<(Context, &str)> = words.iter().map(|(c, w)| (*c, w.as_str())).collect();
        assert_eq!(
            words,
            vec![
                (Context::Nit, "900102030"),
                (Context::Email, "ventas@acme.co"),
                (Context::Email, "ventas"),
                (Context::Username, "acme.sas"),
                (Context::Name, "Juan Pérez-Gómez"),
                (Context::Name, "Juan"),
                (Context::Name, "Pérez"),
                (Context::Name, "Gómez"),
            ]
        );
        let bare = account(None, None).policy_words();
        assert_eq!(bare.len(), 3);
    }
}
