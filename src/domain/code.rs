//! Recovery codes.
//!
//! Invariants:
//! - 5 characters from [`ALPHABET`]: `[A-Za-z0-9]` without the look-alikes
//!   `0 O o 1 l I`, so a customer can read a code over the phone. 56 symbols,
//!   about 29 bits, which is why the abuse limits exist.
//! - Drawn by a CSPRNG (the `CryptoRng` bound makes a weak generator a compile
//!   error), each symbol uniform (rejection sampling in `random_range`).
//! - A code is case-sensitive and is never trimmed or case-folded.

use rand::{CryptoRng, RngExt};

pub const LEN: usize = 5;

/// `[A-Za-z0-9]` minus `0 O o 1 l I`.
pub const ALPHABET: &[u8; 56] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeError {
    Length,
    /// One of the look-alikes the alphabet leaves out (`0 O o 1 l I`).
    LookAlike(char),
    Invalid(char),
}

/// Draws a new code.
pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> String {
    (0..LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// Checks the form of a typed code before any database or hashing work, so a
/// typo gets a precise message instead of spending an attempt.
pub fn check_form(code: &str) -> Result<(), CodeError> {
    if let Some(c) = code
        .chars()
        .find(|c| matches!(c, '0' | 'O' | 'o' | '1' | 'l' | 'I'))
    {
        return Err(CodeError::LookAlike(c));
    }
    if let Some(c) = code
        .chars()
        .find(|c| !c.is_ascii() || !ALPHABET.contains(&(*c as u8)))
    {
        return Err(CodeError::Invalid(c));
    }
    if code.len() != LEN {
        return Err(CodeError::Length);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alphabet_is_alnum_minus_lookalikes() {
        let expected: Vec<u8> = (b'0'..=b'9')
            .chain(b'A'..=b'Z')
            .chain(b'a'..=b'z')
            .filter(|c| !b"0Oo1lI".contains(c))
            .collect();
        assert_eq!(ALPHABET.to_vec(), expected);
    }

    #[test]
    fn generated_codes_have_the_form_and_cover_the_alphabet() {
        let mut rng = rand::rng();
        let mut seen = [0u32; 128];
        for _ in 0..4000 {
            let c = generate(&mut rng);
            assert_eq!(check_form(&c), Ok(()), "{c}");
            for b in c.bytes() {
                seen[b as usize] += 1;
            }
        }
        // 20,000 symbols over 56 letters: ~357 each; every symbol must show
        // up, and none may be wildly over-represented.
        for &b in ALPHABET {
            let n = seen[b as usize];
            assert!((200..600).contains(&n), "{} seen {n} times", b as char);
        }
    }

    #[test]
    fn form_errors() {
        assert_eq!(check_form("7Zx2f"), Ok(()));
        assert_eq!(check_form("7Zx1f"), Err(CodeError::LookAlike('1')));
        assert_eq!(check_form("AbcO2"), Err(CodeError::LookAlike('O')));
        assert_eq!(check_form("abcd"), Err(CodeError::Length));
        assert_eq!(check_form("abcdef"), Err(CodeError::Length));
        assert_eq!(check_form("ab-cd"), Err(CodeError::Invalid('-')));
        assert_eq!(check_form("abcdé"), Err(CodeError::Invalid('é')));
    }
}
