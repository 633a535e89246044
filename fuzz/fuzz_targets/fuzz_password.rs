//! `Password::new`: never panics; an accepted password is at most
//! `MAX_BYTES` bytes and `MAX_CHARS` characters, is the NFKC form of the
//! input (so entering it again gives the same password) and confirms against
//! the input it came from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recupera::domain::password::{MAX_BYTES, MAX_CHARS, Password, PolicyError, confirm};
use unicode_normalization::UnicodeNormalization;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    check(&input);
});

fn check(input: &str) {
    let got = Password::new(input);
    if input.len() > MAX_BYTES * 4 {
        // Refused before normalising: do not spend time on an oracle.
        assert!(matches!(got, Err(PolicyError::TooLong)), "{got:?}");
        return;
    }
    let nfkc: String = input.nfkc().collect();
    match got {
        Ok(pw) => {
            let s = pw.as_str();
            assert!(!s.is_empty(), "empty password accepted from {input:?}");
            assert!(s.len() <= MAX_BYTES, "{} bytes accepted", s.len());
            let n = s.chars().count();
            assert!(n <= MAX_CHARS, "{n} chars accepted");
            assert_eq!(pw.chars(), n);
            assert_eq!(pw.as_bytes(), s.as_bytes());
            assert_eq!(s, nfkc, "not the NFKC form of {input:?}");
            assert_eq!(format!("{pw:?}"), "Password([REDACTED])");
            let again = Password::new(s).unwrap_or_else(|e| {
                panic!("normalised password refused on re-entry: {e:?} (input {input:?})")
            });
            assert_eq!(again.as_str(), s, "NFKC not idempotent for {input:?}");
            assert_eq!(confirm(&pw, input), Ok(()), "{input:?} does not confirm");
        }
        Err(PolicyError::Empty) => {
            assert!(nfkc.is_empty(), "Empty for {input:?}");
        }
        Err(PolicyError::TooLong) => {
            assert!(
                nfkc.len() > MAX_BYTES || nfkc.chars().count() > MAX_CHARS,
                "TooLong for {} bytes / {} chars after NFKC",
                nfkc.len(),
                nfkc.chars().count()
            );
        }
        Err(e) => panic!("Password::new gave {e:?}, which only the policy should give"),
    }
}
