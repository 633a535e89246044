//! `Ident::parse`: never panics, for any input and each of the three kinds
//! (`None`, cliente, proveedor). The forms cannot be confused: a cliente gets
//! a NIT or an error; a NIT, email or username returned is what its own
//! parser makes of the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recupera::domain::account::{
    AccountType, Ident, IdentError, USERNAME_MAX, USERNAME_MIN, parse_username,
};
use recupera::domain::email::Email;
use recupera::domain::nit::Nit;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    for kind in [
        None,
        Some(AccountType::Cliente),
        Some(AccountType::Proveedor),
    ] {
        check(&input, kind);
    }
});

fn check(input: &str, kind: Option<AccountType>) {
    let s = input.trim();
    let got = Ident::parse(input, kind);
    if kind == Some(AccountType::Cliente) {
        assert!(
            matches!(
                got,
                Ok(Ident::Nit(_)) | Err(IdentError::Nit(_) | IdentError::ClienteNeedsNit)
            ),
            "cliente got {got:?} for {input:?}"
        );
    }
    match &got {
        Ok(Ident::Nit(n)) => {
            assert_eq!(Nit::parse(s).as_ref(), Ok(n), "{input:?} {kind:?}");
            assert!(!s.contains('@'));
        }
        Ok(Ident::Email(e)) => {
            assert_ne!(kind, Some(AccountType::Cliente));
            assert_eq!(Email::parse(s).as_ref(), Ok(e), "{input:?} {kind:?}");
        }
        Ok(Ident::Username(u)) => {
            assert_ne!(kind, Some(AccountType::Cliente));
            assert!((USERNAME_MIN..=USERNAME_MAX).contains(&u.len()), "{u:?}");
            assert!(
                u.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
                "username {u:?}"
            );
            assert!(
                u.chars().any(|c| c.is_ascii_alphabetic()),
                "no letter in {u:?}"
            );
            assert_eq!(parse_username(s).as_ref(), Ok(u));
        }
        Err(IdentError::ClienteNeedsNit) => {
            assert_eq!(kind, Some(AccountType::Cliente));
            assert!(s.contains('@'));
        }
        Err(_) => {}
    }
}
