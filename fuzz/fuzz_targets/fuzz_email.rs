//! `Email::parse`: never panics; an accepted address is split at its last
//! '@' into a non-empty local part of at most 64 bytes and a lower-cased
//! domain with a dot; it is at most 254 bytes, holds no `,` `;` CR LF,
//! whitespace or control character, differs from what was typed only by the
//! domain's ASCII case, and parses back to itself. `masked()` never panics.
//!
//! Exactly one '@', and an ASCII, unquoted local part: the first fuzzing
//! run found `"@"@e.o` accepted (a quoted local part), now refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recupera::domain::email::{Email, EmailError, MAX_LEN, MAX_LOCAL_LEN};

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    check(&input);
});

fn check(input: &str) {
    let typed = input.trim_matches([' ', '\t']);
    match Email::parse(input) {
        Ok(email) => {
            let s = email.as_str();
            let (local, domain) = (email.local_part(), email.domain());
            assert_eq!(format!("{local}@{domain}"), s, "split of {s:?}");
            assert!(!domain.contains('@'), "'@' in domain of {s:?}");
            assert_eq!(s.matches('@').count(), 1, "not exactly one '@' in {s:?}");
            assert!(local.is_ascii() && !local.contains('"'), "quoted or non-ASCII local part in {s:?}");
            assert!(!local.is_empty(), "empty local part in {s:?}");
            assert!(
                local.len() <= MAX_LOCAL_LEN,
                "local part of {} bytes",
                local.len()
            );
            assert!(s.len() <= MAX_LEN, "address of {} bytes", s.len());
            assert!(domain.contains('.'), "domain without a dot in {s:?}");
            assert!(!domain.starts_with('['), "domain literal in {s:?}");
            assert!(
                !domain.bytes().any(|b| b.is_ascii_uppercase()),
                "domain not lower-cased in {s:?}"
            );
            if let Some(c) = s.chars().find(|&c| {
                matches!(c, ',' | ';' | '\r' | '\n') || c.is_whitespace() || c.is_control()
            }) {
                panic!("accepted {s:?} containing {c:?}");
            }
            // Only the domain's ASCII case may differ from what was typed.
            assert!(s.eq_ignore_ascii_case(typed), "{s:?} vs typed {typed:?}");
            assert!(
                typed.starts_with(local),
                "local part changed: {s:?} vs {typed:?}"
            );

            let again = Email::parse(s)
                .unwrap_or_else(|e| panic!("{s:?} (from {input:?}) refused on re-parse: {e:?}"));
            assert_eq!(again, email, "re-parse of {s:?} differs");
            assert!(email.matches(&again));
            assert_eq!(email.to_string(), s);

            let masked = email.masked();
            assert!(
                masked.ends_with(&format!("****@{domain}")),
                "masked {masked:?} of {s:?}"
            );
        }
        Err(EmailError::Forbidden(c)) => {
            assert!(matches!(c, ',' | ';' | '\r' | '\n'), "Forbidden({c:?})");
            assert!(typed.contains(c), "Forbidden({c:?}) not in {typed:?}");
        }
        Err(EmailError::Empty) => assert!(typed.is_empty(), "Empty for {input:?}"),
        Err(EmailError::NoAt) => assert!(!typed.contains('@'), "NoAt for {input:?}"),
        Err(EmailError::LocalTooLong) => {
            assert!(
                typed.rfind('@').is_some_and(|at| at > MAX_LOCAL_LEN),
                "{input:?}"
            )
        }
        Err(EmailError::TooLong) => assert!(typed.len() > MAX_LEN, "TooLong for {input:?}"),
        Err(EmailError::Invalid) => {}
    }
}
