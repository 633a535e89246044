//! Password policy (NIST SP 800-63B-4).
//!
//! Invariants:
//! - Passwords are NFKC-normalised before checking and hashing, so the same
//!   password typed on two keyboards hashes the same.
//! - Length is counted in characters after normalisation: at least
//!   `min_len` (15 by default, never below 8), at most 256 characters and
//!   1024 bytes. Longer input is refused *before* normalisation or hashing,
//!   so a 10 MB paste costs nothing. Nothing is ever truncated.
//! - No composition rules (no "one digit, one symbol").
//! - Refused when the zxcvbn estimator scores it below 3 ("safely
//!   unguessable"), with a Spanish word list added to its dictionaries, or
//!   when it is built from context: the product's name, the identifier typed,
//!   the account's NIT, username, email or name.
//! - Checks are split so `reset confirm` can run the ones that need only the
//!   typed values before touching the code, and the account-dependent ones
//!   only after the code is verified (no account oracle).

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

pub const MAX_CHARS: usize = 256;
pub const MAX_BYTES: usize = 1024;
pub const DEFAULT_MIN_LEN: usize = 15;
pub const FLOOR_MIN_LEN: usize = 8;
pub const PRODUCT_NAME: &str = "recupera";

/// Words people in Colombia build passwords from that zxcvbn's English
/// dictionaries do not know. They are fed to zxcvbn as cheap guesses.
const SPANISH_WORDS: &[&str] = &[
    "contraseña",
    "contrasena",
    "clave",
    "colombia",
    "bogota",
    "bogotá",
    "medellin",
    "medellín",
    "cali",
    "barranquilla",
    "cartagena",
    "factura",
    "facturacion",
    "facturación",
    "proveedor",
    "cliente",
    "usuario",
    "administrador",
    "empresa",
    "oficina",
    "soporte",
    "secreto",
    "bienvenido",
    "hola",
    "teamo",
    "amor",
    "dios",
    "jesus",
    "familia",
    "futbol",
    "fútbol",
    "nacional",
    "millonarios",
    "america",
    "junior",
    "santafe",
    "mariposa",
    "princesa",
    "cumpleaños",
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
    "uno",
    "dos",
    "tres",
    "cuatro",
    "cinco",
    "seis",
    "siete",
    "ocho",
    "nueve",
    "diez",
];

/// Where a context word came from, so the refusal can say why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Product,
    Identifier,
    Nit,
    Email,
    Username,
    Name,
}

impl Context {
    /// A stable name for logs (`built_from_nit`).
    pub fn tag(self) -> &'static str {
        match self {
            Context::Product => "product",
            Context::Identifier => "identifier",
            Context::Nit => "nit",
            Context::Email => "email",
            Context::Username => "username",
            Context::Name => "name",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    Empty,
    TooShort { min: usize, got: usize },
    TooLong,
    Guessable,
    BuiltFrom(Context),
    Mismatch,
}

/// A normalised password. Zeroed on drop; never printed.
pub struct Password(Zeroizing<String>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([REDACTED])")
    }
}

impl Password {
    /// Normalises typed input. Input over the byte limit is refused here,
    /// before any work proportional to its size.
    pub fn new(raw: &str) -> Result<Password, PolicyError> {
        if raw.len() > MAX_BYTES * 4 {
            // Even allowing NFKC to shrink full-width input, nothing this
            // large can fit the limit: refuse it without normalising it.
            return Err(PolicyError::TooLong);
        }
        let normalized: Zeroizing<String> = Zeroizing::new(raw.nfkc().collect());
        if normalized.is_empty() {
            return Err(PolicyError::Empty);
        }
        if normalized.len() > MAX_BYTES || normalized.chars().count() > MAX_CHARS {
            return Err(PolicyError::TooLong);
        }
        Ok(Password(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub fn chars(&self) -> usize {
        self.0.chars().count()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub min_len: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_len: DEFAULT_MIN_LEN,
        }
    }
}

/// What the context checks compare: compatibility-decomposed, accents
/// dropped, lowercased. "Gómez" and "gomez" are one word here: most people
/// type names without their accents, and a password built from the name
/// is refused either way.
fn fold(s: &str) -> String {
    s.nfkd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect::<String>()
        .to_lowercase()
}

/// Context words shorter than this are not checked (a 2-letter name part
/// like "de" would refuse half the dictionary).
fn significant(kind: Context, w: &str) -> bool {
    let n = w.chars().count();
    match kind {
        Context::Nit => n >= 4,
        Context::Name => n >= 4,
        _ => n >= 3,
    }
}

/// A password that passed [`Policy::check_typed`]: what
/// [`Policy::check_account`] takes, so that it may rely on that check.
#[derive(Debug)]
pub struct Typed<'a>(&'a Password);

impl Policy {
    /// Checks that need only what was typed: length, the estimator, the
    /// product's name and the identifier typed with it.
    pub fn check_typed<'a>(
        &self,
        pw: &'a Password,
        identifier: Option<&str>,
    ) -> Result<Typed<'a>, PolicyError> {
        let n = pw.chars();
        if n < self.min_len {
            return Err(PolicyError::TooShort {
                min: self.min_len,
                got: n,
            });
        }
        let mut ctx = vec![(Context::Product, PRODUCT_NAME.to_string())];
        if let Some(id) = identifier {
            ctx.push((Context::Identifier, id.to_string()));
        }
        self.check_context(pw, &ctx)?;
        if score(pw, SPANISH_WORDS) < 3 {
            return Err(PolicyError::Guessable);
        }
        Ok(Typed(pw))
    }

    /// Checks that need the account: its NIT, email, username and name.
    pub fn check_account(
        &self,
        typed: &Typed<'_>,
        words: &[(Context, String)],
    ) -> Result<(), PolicyError> {
        let pw = typed.0;
        self.check_context(pw, words)?;
        let account: Vec<&str> = words.iter().map(|(_, w)| w.as_str()).collect();
        // The typed check's estimate, with the Spanish words only, passed.
        // When no account word can take part in any match of the password,
        // the estimate with them added is that same one (the vendored
        // zxcvbn's change 6), and is not computed again.
        if !zxcvbn::user_inputs_may_match(pw.as_str(), &account) {
            return Ok(());
        }
        let inputs = [SPANISH_WORDS, &account].concat();
        if score(pw, &inputs) < 3 {
            // The typed-only check passed, so what made it guessable is the
            // account's own data.
            let kind = words.first().map_or(Context::Name, |(k, _)| *k);
            let culprit = words
                .iter()
                .find(|(_, w)| {
                    let w = fold(w);
                    fold(pw.as_str())
                        .split(|c: char| !c.is_alphanumeric())
                        .any(|part| part.len() >= 3 && w.contains(part))
                })
                .map_or(kind, |(k, _)| *k);
            return Err(PolicyError::BuiltFrom(culprit));
        }
        Ok(())
    }

    fn check_context(&self, pw: &Password, words: &[(Context, String)]) -> Result<(), PolicyError> {
        let folded = fold(pw.as_str());
        let digits: String = folded.chars().filter(char::is_ascii_digit).collect();
        for (kind, w) in words {
            let w = fold(w);
            if !significant(*kind, &w) {
                continue;
            }
            let hit = match kind {
                // A NIT hidden among separators ("900-102-030") still counts.
                Context::Nit => digits.contains(&w),
                _ => folded.contains(&w),
            };
            if hit {
                return Err(PolicyError::BuiltFrom(*kind));
            }
        }
        Ok(())
    }

    /// Everything at once: for `user add`, where the account data is typed.
    pub fn check_all(
        &self,
        pw: &Password,
        identifier: Option<&str>,
        words: &[(Context, String)],
    ) -> Result<(), PolicyError> {
        let typed = self.check_typed(pw, identifier)?;
        self.check_account(&typed, words)
    }
}

fn score(pw: &Password, inputs: &[&str]) -> u8 {
    u8::from(zxcvbn::zxcvbn(pw.as_str(), inputs).score())
}

/// The confirmation must be the same password, compared after normalisation.
pub fn confirm(pw: &Password, again: &str) -> Result<(), PolicyError> {
    let again: Zeroizing<String> = Zeroizing::new(again.nfkc().collect());
    if pw.as_str() == again.as_str() {
        Ok(())
    } else {
        Err(PolicyError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored zxcvbn (vendor/zxcvbn: its frequency lists are made
    /// ready at build time) ranks a listed word by its position in its list,
    /// as upstream does, and picks the list where it ranks best.
    #[test]
    fn zxcvbn_ranks_words_by_their_place_in_its_lists() {
        use zxcvbn::matching::patterns::MatchPattern;
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/vendor/zxcvbn/data/");
        let lists: Vec<(&str, Vec<String>)> = [
            ("Passwords", "passwords"),
            ("English", "english_wiki"),
            ("FemaleNames", "female_names"),
            ("MaleNames", "male_names"),
            ("Surnames", "surnames"),
            ("UsTvAndFilm", "us_tv_and_film"),
        ]
        .iter()
        .map(|(name, file)| {
            let text = std::fs::read_to_string(format!("{data}{file}.txt")).unwrap();
            (
                *name,
                text.trim_end().split(',').map(String::from).collect(),
            )
        })
        .collect();
        let rank_in = |name: &str, w: &str| {
            let (_, words) = lists.iter().find(|(n, _)| *n == name).unwrap();
            words.iter().position(|x| x == w).map(|i| i + 1)
        };
        let (mut sampled, mut checked) = (0, 0);
        for (_, words) in &lists {
            for w in words.iter().step_by(97) {
                sampled += 1;
                let e = zxcvbn::zxcvbn(w, &[]);
                let [m] = e.sequence() else { continue };
                let MatchPattern::Dictionary(p) = &m.pattern else {
                    continue;
                };
                if p.reversed || p.l33t || p.matched_word != *w {
                    continue;
                }
                let name = format!("{:?}", p.dictionary_name);
                assert_eq!(Some(p.rank), rank_in(&name, w), "{w} in {name}");
                let best = lists.iter().filter_map(|(n, _)| rank_in(n, w)).min();
                assert_eq!(Some(p.rank), best, "{w}: the list where it ranks best");
                checked += 1;
            }
        }
        assert!(
            checked * 10 >= sampled * 8,
            "{checked} of {sampled} checked"
        );
    }

    /// The vendored zxcvbn's date separators are Unicode's White_Space
    /// written out (its regex crates are built without Unicode tables, so
    /// `\s` is not available): every one of them separates a date as
    /// upstream's `\s` did, and a look-alike outside the property does not.
    #[test]
    fn zxcvbn_dates_take_every_unicode_white_space_as_a_separator() {
        use zxcvbn::matching::patterns::MatchPattern;
        let is_date = |sep: char| {
            let pw = format!("13{sep}2{sep}1921");
            let e = zxcvbn::zxcvbn(&pw, &[]);
            e.sequence().iter().any(|m| {
                m.token == pw
                    && matches!(&m.pattern, MatchPattern::Date(d)
                        if d.separator == sep.to_string() && (d.year, d.month, d.day) == (1921, 2, 13))
            })
        };
        let white_space = ('\0'..=char::MAX).filter(|c| c.is_whitespace());
        let mut n = 0;
        for c in white_space {
            assert!(is_date(c), "U+{:04X}", c as u32);
            n += 1;
        }
        // Rust's is_whitespace is the White_Space property: 25 characters.
        assert_eq!(n, 25);
        for c in ['\u{200B}', '\u{180E}', '\u{FEFF}', 'x', ','] {
            assert!(!is_date(c), "U+{:04X}", c as u32);
        }
        for c in ['-', '/', '\\', '_', '.'] {
            assert!(is_date(c), "{c}");
        }
    }

    /// The vendored zxcvbn gives one estimate per password, the one
    /// zxcvbn.js 4.4.2 gives: its scoring walks sequence lengths in
    /// ascending order (`BTreeMap`), where upstream's `HashMap`s gave, on
    /// these passphrases, one of two guess counts at random on each call.
    /// Guess counts as zxcvbn.js computed them (2026-12-06).
    #[test]
    fn zxcvbn_estimates_are_the_same_on_every_call() {
        for (pw, guesses) in [
            ("Drama+modesto+REdHawk", 46_399_000_000_000_000),
            ("mark+construction+Poopy", 41_185_786_085_632),
            ("boris tiniest DoUghboY", 254_209_651_840_000_000),
            ("ILIANA-success-Volumetric", 28_003_173_760_000_000),
        ] {
            for _ in 0..20 {
                assert_eq!(zxcvbn::zxcvbn(pw, &[]).guesses(), guesses, "{pw}");
            }
        }
    }

    const STRONG: &str = "caballo-tornillo-grapa-verde";

    fn pw(s: &str) -> Password {
        Password::new(s).unwrap()
    }

    /// The typed-only check's verdict.
    fn typed(p: &Policy, s: &str, identifier: Option<&str>) -> Result<(), PolicyError> {
        p.check_typed(&pw(s), identifier).map(|_| ())
    }

    /// The account's check, of a password that passes the typed one.
    fn account(p: &Policy, s: &str, words: &[(Context, String)]) -> Result<(), PolicyError> {
        let pw = pw(s);
        let typed = p.check_typed(&pw, None).expect("passes the typed check");
        p.check_account(&typed, words)
    }

    #[test]
    fn length_limits() {
        let p = Policy::default();
        assert_eq!(Password::new("").unwrap_err(), PolicyError::Empty);
        assert_eq!(
            typed(&p, "Tq9#vL2m", None),
            Err(PolicyError::TooShort { min: 15, got: 8 })
        );
        assert_eq!(
            Password::new(&"x".repeat(10_000)).unwrap_err(),
            PolicyError::TooLong
        );
        assert_eq!(
            Password::new(&"x".repeat(257)).unwrap_err(),
            PolicyError::TooLong
        );
        // 256 three-byte characters are 768 bytes: allowed; 300 are not.
        assert!(Password::new(&"€".repeat(256)).is_ok());
        assert_eq!(
            Password::new(&"€".repeat(300)).unwrap_err(),
            PolicyError::TooLong
        );
        assert_eq!(typed(&p, STRONG, None), Ok(()));
        let eight = Policy { min_len: 8 };
        assert_eq!(typed(&eight, "Tq9#vL2m!x", None), Ok(()));
    }

    #[test]
    fn nfkc_normalisation() {
        // Full-width letters and the "ﬁ" ligature normalise to ASCII.
        let a = pw("ｃａｂａｌｌｏ-ﬁjo-grapa-verde");
        assert_eq!(a.as_str(), "caballo-fijo-grapa-verde");
        // What is hashed is the normalised form, and nothing prints it.
        assert_eq!(a.as_bytes(), b"caballo-fijo-grapa-verde");
        assert_eq!(format!("{a:?}"), "Password([REDACTED])");
        assert_eq!(confirm(&a, "caballo-fijo-grapa-verde"), Ok(()));
        assert_eq!(
            confirm(&a, "caballo-fijo-grapa-verdE"),
            Err(PolicyError::Mismatch)
        );
    }

    #[test]
    fn no_composition_rules_but_guessable_refused() {
        let p = Policy::default();
        // All lower case, no digits: fine when long and unguessable.
        assert_eq!(typed(&p, "luz mesa trombón cactus", None), Ok(()));
        for weak in [
            "passwordpassword",
            "123456789012345",
            "aaaaaaaaaaaaaaaa",
            "qwertyuiopasdfgh",
            "contraseña123456",
            "colombia12345678",
        ] {
            assert_eq!(typed(&p, weak, None), Err(PolicyError::Guessable), "{weak}");
        }
    }

    #[test]
    fn context_words() {
        let p = Policy::default();
        assert_eq!(
            typed(&p, "mi-recupera-segura-2024x", None),
            Err(PolicyError::BuiltFrom(Context::Product))
        );
        assert_eq!(
            typed(&p, "zz900102030zzqqvvww", Some("900102030")),
            Err(PolicyError::BuiltFrom(Context::Identifier))
        );
        let words = vec![
            (Context::Nit, "900102030".to_string()),
            (Context::Email, "juan.perez@gmail.com".to_string()),
            (Context::Email, "juan.perez".to_string()),
            (Context::Username, "acme_ventas".to_string()),
            (Context::Name, "María de la Cruz".to_string()),
            (Context::Name, "María".to_string()),
            (Context::Name, "de".to_string()),
        ];
        assert_eq!(
            account(&p, "trombón 900-102-030 cactus", &words),
            Err(PolicyError::BuiltFrom(Context::Nit))
        );
        assert_eq!(
            account(&p, "JUAN.PEREZ luz mesa trombón", &words),
            Err(PolicyError::BuiltFrom(Context::Email))
        );
        assert_eq!(
            account(&p, "Acme_Ventas luz mesa trombón", &words),
            Err(PolicyError::BuiltFrom(Context::Username))
        );
        assert_eq!(
            account(&p, "maría luz mesa trombón", &words),
            Err(PolicyError::BuiltFrom(Context::Name))
        );
        // Accents do not matter either way.
        assert_eq!(
            account(&p, "AnaMariaDeLaCruz-luz-mesa", &words),
            Err(PolicyError::BuiltFrom(Context::Name))
        );
        let gomez = vec![
            (Context::Name, "Ana Gómez".to_string()),
            (Context::Name, "Ana".to_string()),
            (Context::Name, "Gómez".to_string()),
        ];
        for typed in [
            "AnaGomezDelValle-77",
            "gomez.ana.delvalle",
            "GÓMEZ-luz-mesa-77",
        ] {
            assert_eq!(
                account(&p, typed, &gomez),
                Err(PolicyError::BuiltFrom(Context::Name)),
                "{typed}"
            );
        }
        // "de" is too short to count.
        assert_eq!(account(&p, "luz de mesa trombón cactus", &words), Ok(()));
    }

    /// zxcvbn finds the account's data where a plain search does not (a
    /// l33t or reversed surname): the reason then names the field a typed
    /// fragment comes from, and a score of exactly 3 is enough.
    #[test]
    fn guessable_through_the_account_data() {
        let p = Policy::default();
        let words = vec![
            (Context::Nit, "900102030".to_string()),
            (Context::Email, "mvalderrama2019@gmail.com".to_string()),
            (Context::Email, "mvalderrama2019".to_string()),
            (Context::Name, "Maria Valderrama".to_string()),
            (Context::Name, "Maria".to_string()),
            (Context::Name, "Valderrama".to_string()),
        ];
        for s in ["v4lderr4ma-2019", "amarredlav-2019"] {
            assert_eq!(typed(&p, s, None), Ok(()), "{s}");
            assert_eq!(
                account(&p, s, &words),
                Err(PolicyError::BuiltFrom(Context::Email)),
                "{s}"
            );
        }
        assert_eq!(score(&pw("Tq9#vL2m!x"), &[]), 3);
        let eight = Policy { min_len: 8 };
        assert_eq!(account(&eight, "Tq9#vL2m!x", &words), Ok(()));
    }

    /// The account's check does not estimate again when no account word
    /// can take part in a match of the password (the vendored zxcvbn's
    /// `user_inputs_may_match`): its verdicts are those of an estimate
    /// made every time, and it does skip on ordinary accounts.
    #[test]
    fn the_estimate_not_made_again_is_the_one_it_would_give() {
        let p = Policy { min_len: 8 };
        use crate::domain::account::policy_words;
        use crate::domain::{email::Email, nit::Nit};
        let accounts: Vec<Vec<(Context, String)>> = [
            (
                "900102030",
                "mvalderrama2019@gmail.com",
                None,
                "Maria Valderrama",
            ),
            ("830015428", "ana@example.co", None, "Ana Pérez"),
            (
                "900373587",
                "compras@acme.com.co",
                Some("acme_ventas"),
                "Acme Ventas",
            ),
            ("800000434", "c7@example.co", None, "José Ñúñez"),
        ]
        .iter()
        .map(|(nit, email, user, name)| {
            let (nit, email) = (Nit::parse(nit).unwrap(), Email::parse(email).unwrap());
            policy_words(&nit, &email, *user, Some(name))
        })
        .collect();
        let passwords = [
            "caballo-tornillo-grapa-verde",
            "v4lderr4ma-2019",
            "amarredlav-2019",
            "Tq9#vL2m!x",
            "vaca-morada-trompeta-1987-lluvia",
            "ventas-acme-2024-mesa-luz",
            "semtev-emca-2024-luz",
            "c0mpr4s-trombón-77",
            "zúñez-jose-1987-río",
            "anaana-perez-mesa-09",
            "sarpmoc-lluvia-cactus",
        ];
        let (mut skipped, mut estimated, mut refused) = (0, 0, 0);
        for s in passwords {
            let pw = pw(s);
            let Ok(typed) = p.check_typed(&pw, None) else {
                continue;
            };
            for words in &accounts {
                let account: Vec<&str> = words.iter().map(|(_, w)| w.as_str()).collect();
                let every_time = p.check_context(&pw, words).is_ok()
                    && score(&pw, &[SPANISH_WORDS, &account].concat()) >= 3;
                assert_eq!(p.check_account(&typed, words).is_ok(), every_time, "{s}");
                refused += usize::from(!every_time);
                if zxcvbn::user_inputs_may_match(pw.as_str(), &account) {
                    estimated += 1;
                } else {
                    skipped += 1;
                }
            }
        }
        assert!(
            skipped >= 20 && estimated >= 6 && refused >= 4,
            "{skipped} skipped, {estimated} estimated, {refused} refused"
        );
    }

    /// A NIT or name part under four characters is not searched for; other
    /// fields count from three.
    #[test]
    fn short_context_words() {
        let p = Policy::default();
        let short = vec![
            (Context::Nit, "900".to_string()),
            (Context::Name, "Ana".to_string()),
        ];
        assert_eq!(account(&p, "caballo-900-ana-tornillo", &short), Ok(()));
        let user = vec![(Context::Username, "ana".to_string())];
        assert_eq!(
            account(&p, "caballo-900-ana-tornillo", &user),
            Err(PolicyError::BuiltFrom(Context::Username))
        );
    }

    #[test]
    fn check_all_is_both_checks() {
        let p = Policy::default();
        let words = vec![(Context::Name, "Valderrama".to_string())];
        assert_eq!(
            p.check_all(&pw("Tq9#vL2m"), None, &words),
            Err(PolicyError::TooShort { min: 15, got: 8 })
        );
        assert_eq!(
            p.check_all(&pw("valderrama-caballo-grapa"), None, &words),
            Err(PolicyError::BuiltFrom(Context::Name))
        );
        assert_eq!(p.check_all(&pw(STRONG), None, &words), Ok(()));
    }

    /// The names scripts see in `built_from_…` reasons.
    #[test]
    fn context_tags_are_stable() {
        let tags: Vec<&str> = [
            Context::Product,
            Context::Identifier,
            Context::Nit,
            Context::Email,
            Context::Username,
            Context::Name,
        ]
        .into_iter()
        .map(Context::tag)
        .collect();
        assert_eq!(
            tags,
            ["product", "identifier", "nit", "email", "username", "name"]
        );
    }
}
