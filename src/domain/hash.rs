//! argon2id hashing for passwords and recovery codes.
//!
//! Invariants:
//! - New hashes use argon2id v1.3, m=19456 KiB, t=2, p=1 (OWASP's minimum),
//!   a fresh 16-byte salt, stored as a PHC string.
//! - Every verification costs one argon2 evaluation, whether or not there is
//!   a stored hash: [`Hasher::burn`] does the work of a verification for a
//!   miss, so a caller can keep hits and misses the same price.
//! - The optional pepper is argon2's `secret` input; it never reaches the
//!   database. Losing it invalidates every stored hash (see README).
//! - The 19 MiB of working memory come from `argon2mem` (huge pages,
//!   faulted in ahead of time), not from the allocator: the same argon2
//!   computation, without thousands of page faults per hash.
//! - A hash made ahead ([`Hasher::hash_ahead`]) runs on a thread of its
//!   own and counts as an evaluation only when taken; one not wanted is
//!   stopped at its next quarter pass (our kernel checks a flag there; the
//!   argon2 crate's, used without AVX2, cannot stop and runs to its end),
//!   its work thrown away.
//! - Hashes imported from another platform are accepted as they are: PHC
//!   argon2id/argon2i strings and bcrypt (`$2y$`, `$2b$`, `$2a$`). They
//!   verify with their own parameters (bcrypt: PHP's semantics, the first 72
//!   bytes) and always need a re-hash, so the first successful login turns
//!   them into argon2id.

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Params, PasswordHash, Version};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use zeroize::Zeroizing;

pub const M_COST: u32 = 19_456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

/// Salt used only to burn the cost of a verification on a miss.
const BURN_SALT: &[u8; 16] = b"recupera-no-hash";

#[derive(Clone)]
pub struct Hasher {
    pepper: Option<Zeroizing<Vec<u8>>>,
    params: Params,
    /// Evaluations done (argon2 or bcrypt), shared by clones: how tests see
    /// that a miss really costs what a hit costs.
    evaluations: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Hashes asked for ahead ([`Hasher::hash_ahead`]), thread or not:
    /// how tests see that every confirmation asks for one alike.
    aheads: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("pepper", &self.pepper.as_ref().map(|_| "[set]"))
            .field("params", &self.params)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("argon2: {0}")]
pub struct HashError(String);

impl Hasher {
    /// The production hasher, with or without a pepper.
    pub fn new(pepper: Option<Vec<u8>>) -> Self {
        Self::with_params(pepper, M_COST, T_COST, P_COST)
    }

    /// A hasher at other parameters: tests and benchmarks use it to make
    /// hashes "from an older version" that must be upgraded at login.
    pub fn with_params(pepper: Option<Vec<u8>>, m: u32, t: u32, p: u32) -> Self {
        let params = Params::new(m, t, p, None).unwrap_or_default();
        Hasher {
            pepper: pepper.map(Zeroizing::new),
            params,
            evaluations: Default::default(),
            aheads: Default::default(),
        }
    }

    /// A pepper argon2 cannot take fails closed: nothing is hashed and
    /// nothing verifies (never a silent fallback to no pepper).
    fn check_pepper(&self) -> Result<(), HashError> {
        match &self.pepper {
            Some(k) if k.len() > argon2::MAX_SECRET_LEN => {
                Err(HashError("pepper too long".to_string()))
            }
            _ => Ok(()),
        }
    }

    /// Hashes this hasher (and its clones) was asked to make ahead.
    pub fn aheads(&self) -> u64 {
        self.aheads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Password-hash evaluations this hasher (and its clones) has done.
    pub fn evaluations(&self) -> u64 {
        self.evaluations.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn count(&self) {
        self.evaluations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// One argon2 evaluation into `out`, in the dedicated working memory;
    /// counted once it has run. On a CPU with AVX-512 or AVX2 the evaluation
    /// is one of our kernels' (`argon2-simd`, the same function), elsewhere
    /// the argon2 crate's. `pepper: false` leaves the pepper out (only [`Self::burn`],
    /// when the pepper is unusable: the work is still done).
    fn compute(
        &self,
        (alg, version): (Algorithm, Version),
        params: &Params,
        pepper: bool,
        secret: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> Result<(), HashError> {
        let r = self.evaluate((alg, version), params, pepper, secret, salt, out, None);
        self.count();
        r.map(|_| ())
    }

    /// One argon2 evaluation into `out`, not counted: in the memory being
    /// prepared for the process's hashes, or, with `stop`, in a free region
    /// of its own, given up (`Ok(false)`, `out` not written) once `stop`
    /// is set, where our kernel runs (the argon2 crate's cannot stop).
    #[allow(clippy::too_many_arguments)]
    fn evaluate(
        &self,
        (alg, version): (Algorithm, Version),
        params: &Params,
        pepper: bool,
        secret: &[u8],
        salt: &[u8],
        out: &mut [u8],
        stop: Option<&AtomicBool>,
    ) -> Result<bool, HashError> {
        let key = self.pepper.as_deref().map(Vec::as_slice).filter(|_| pepper);
        let run = |mem: &mut [argon2::Block]| {
            let ours = match stop {
                Some(stop) => argon2_simd::hash_into_unless(
                    stop, alg, version, params, key, secret, salt, out, mem,
                ),
                None => argon2_simd::hash_into(alg, version, params, key, secret, salt, out, mem)
                    .map(|()| argon2_simd::Finished::Done),
            };
            if let Some(ended) = ours {
                return Ok(ended == argon2_simd::Finished::Done);
            }
            let a = match key {
                Some(k) => Argon2::new_with_secret(k, alg, version, params.clone())
                    .map_err(|e| HashError(e.to_string()))?,
                None => Argon2::new(alg, version, params.clone()),
            };
            a.hash_password_into_with_memory(secret, salt, out, mem)
                .map_err(|e| HashError(e.to_string()))?;
            Ok(true)
        };
        let blocks = params.block_count();
        match stop {
            Some(_) => crate::argon2mem::with_free_blocks(blocks, run),
            None => crate::argon2mem::with_blocks(blocks, run),
        }
    }

    /// Hashes a secret with a fresh salt, returning the PHC string.
    pub fn hash(&self, secret: &[u8]) -> Result<String, HashError> {
        let phc = self.new_hash(secret, None)?;
        self.count();
        phc.ok_or_else(|| HashError("stopped".to_string()))
    }

    /// Starts hashing `secret` with a fresh salt on another thread, in
    /// memory of its own, for a caller that learns only later whether it
    /// needs the hash (`reset confirm`: the new password, hashed while the
    /// code is checked). [`Ahead::take`] waits for it; dropping the
    /// [`Ahead`] stops the work at its next quarter pass. Counted as an
    /// evaluation only when taken. Only when a CPU is free for it
    /// ([`crate::argon2mem::spare_cpu`]: on a busy machine it would take
    /// CPU from other work) and a thread can be started; otherwise the
    /// hash is made in [`Ahead::take`], after the caller's own work.
    pub fn hash_ahead(&self, secret: &[u8]) -> Ahead {
        self.aheads.fetch_add(1, Ordering::SeqCst);
        let thread = !crate::ops::spawn_refused() && crate::argon2mem::spare_cpu();
        self.ahead(secret, thread)
    }

    /// [`Self::hash_ahead`], on a thread or not.
    fn ahead(&self, secret: &[u8], thread: bool) -> Ahead {
        let stop = Arc::new(AtomicBool::new(false));
        let secret = Zeroizing::new(secret.to_vec());
        let job = if thread {
            let (hasher, stop, secret) = (self.clone(), stop.clone(), secret.clone());
            std::thread::Builder::new()
                .spawn(move || hasher.new_hash(&secret, Some(&stop)))
                .ok()
        } else {
            None
        };
        Ahead {
            hasher: self.clone(),
            stop,
            job,
            secret,
        }
    }

    /// A new PHC string for `secret`, or `None` when `stop` stopped it.
    fn new_hash(
        &self,
        secret: &[u8],
        stop: Option<&AtomicBool>,
    ) -> Result<Option<String>, HashError> {
        use rand::RngExt;
        let salt: [u8; 16] = rand::rng().random();
        let mut out = [0u8; 32];
        let params = self.params.clone();
        self.check_pepper()?;
        let (alg, v) = (Algorithm::Argon2id, Version::V0x13);
        if !self.evaluate((alg, v), &params, true, secret, &salt, &mut out, stop)? {
            return Ok(None);
        }
        let err = |e: &dyn std::fmt::Display| HashError(e.to_string());
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&params).map_err(|e| err(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| err(&e))?),
            hash: Some(Output::new(&out).map_err(|e| err(&e))?),
        };
        Ok(Some(phc.to_string()))
    }

    /// Checks a secret against a stored PHC string (or an imported bcrypt
    /// hash). A malformed stored string is a mismatch, and still costs one
    /// hash.
    pub fn verify(&self, secret: &[u8], phc: &str) -> bool {
        if is_bcrypt(phc) {
            // Above the import's limit (a hash put in by other means): the
            // usual work, and no match.
            if !bcrypt_affordable(phc) {
                self.burn(secret);
                return false;
            }
            self.count();
            return match bcrypt::verify(secret, phc) {
                Ok(ok) => ok,
                Err(_) => {
                    self.burn(secret);
                    false
                }
            };
        }
        match self.verify_phc(secret, phc) {
            Some(ok) => ok,
            None => {
                self.burn(secret);
                false
            }
        }
    }

    /// `None` when the stored string is not a usable argon2 PHC string.
    fn verify_phc(&self, secret: &[u8], phc: &str) -> Option<bool> {
        let parsed = PasswordHash::new(phc).ok()?;
        let alg = Algorithm::try_from(parsed.algorithm.as_str()).ok()?;
        let version = match parsed.version {
            Some(v) => Version::try_from(v).ok()?,
            None => Version::default(),
        };
        let params = Params::try_from(&parsed).ok()?;
        if !argon2_affordable(&params) {
            return None;
        }
        let salt = parsed.salt?;
        let expected = parsed.hash?;
        self.check_pepper().ok()?;
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        self.compute(
            (alg, version),
            &params,
            true,
            secret,
            salt.as_ref(),
            &mut out,
        )
        .ok()?;
        // Constant time: every byte compared whatever the first difference.
        let diff = out
            .iter()
            .zip(expected.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        Some(diff == 0 && out.len() == expected.len())
    }

    /// Does the argon2 work of one verification and throws it away: the cost
    /// of a miss (unknown account, no code, locked account).
    pub fn burn(&self, secret: &[u8]) {
        let params = self.params.clone();
        let pepper = self.check_pepper().is_ok();
        let (alg, v) = (Algorithm::Argon2id, Version::V0x13);
        let mut out = [0u8; 32];
        let _ = self.compute((alg, v), &params, pepper, secret, BURN_SALT, &mut out);
        std::hint::black_box(&out);
    }

    /// Blocks of working memory one evaluation at these parameters needs
    /// (for `argon2mem::prefault`).
    pub fn blocks(&self) -> usize {
        self.params.block_count()
    }

    /// True when a stored hash was made with other (older, weaker) parameters
    /// or another algorithm than the current ones.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        if is_bcrypt(phc) {
            return true;
        }
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" || parsed.version != Some(0x13) {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

/// A hash being made on another thread ([`Hasher::hash_ahead`]).
pub struct Ahead {
    hasher: Hasher,
    stop: Arc<AtomicBool>,
    job: Option<std::thread::JoinHandle<Result<Option<String>, HashError>>>,
    /// For the hash made in [`Ahead::take`] when no thread ran.
    secret: Zeroizing<Vec<u8>>,
}

impl Ahead {
    /// The PHC string, once the thread has made it (or made now, when no
    /// thread ran). One evaluation.
    pub fn take(mut self) -> Result<String, HashError> {
        match self.job.take().map(std::thread::JoinHandle::join) {
            Some(Ok(phc)) => {
                let phc = phc?;
                self.hasher.count();
                phc.ok_or_else(|| HashError("stopped".to_string()))
            }
            Some(Err(_)) => Err(HashError("the hashing thread panicked".to_string())),
            None => self.hasher.hash(&self.secret),
        }
    }

    /// Drops it as callers do, then waits for the thread: whether it gave
    /// up before its end (tests).
    #[cfg(test)]
    fn drop_and_wait(mut self) -> bool {
        let job = self.job.take();
        drop(self);
        matches!(job.map(std::thread::JoinHandle::join), Some(Ok(Ok(None))))
    }
}

impl Drop for Ahead {
    /// Not wanted (or already taken): the thread's work stops at its next
    /// quarter pass (well under a millisecond); it is not waited for.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn is_bcrypt(s: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p))
}

/// Why an imported password hash was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportHashError {
    /// Not a PHC argon2 string nor a bcrypt hash.
    Unknown,
    /// Looks like one of them but does not parse.
    Malformed,
    /// An algorithm we do not accept (argon2d, scrypt, md5…).
    Algorithm,
    /// Costs above [`MAX_ARGON2_KIB`] and the others: one login with it
    /// would tie the machine up (or fail to get its memory).
    Cost,
}

/// The most an imported hash may cost, and what a stored one may cost to
/// be checked at all (a hash above them is refused at import, and at
/// login burns the usual work and does not match). PHP's defaults are
/// argon2id m=65536 KiB, t=4, p=1 and bcrypt cost 10 (12 since PHP 8.4):
/// these allow four times that memory, a quarter of a GiB, and 16 times
/// that bcrypt work (~1 s here).
pub const MAX_ARGON2_KIB: u32 = 262_144;
/// Passes, and memory × passes (KiB): PHP's default work times four.
pub const MAX_ARGON2_T: u32 = 16;
pub const MAX_ARGON2_WORK_KIB: u64 = 1_048_576;
pub const MAX_ARGON2_P: u32 = 8;
pub const MAX_BCRYPT_COST: u32 = 14;

fn argon2_affordable(p: &Params) -> bool {
    p.m_cost() <= MAX_ARGON2_KIB
        && p.t_cost() <= MAX_ARGON2_T
        && p.p_cost() <= MAX_ARGON2_P
        && u64::from(p.m_cost()) * u64::from(p.t_cost()) <= MAX_ARGON2_WORK_KIB
}

/// A bcrypt hash that parses, with a cost within [`MAX_BCRYPT_COST`].
fn bcrypt_affordable(s: &str) -> bool {
    bcrypt_cost(s).is_some_and(|c| c <= MAX_BCRYPT_COST)
}

/// A bcrypt hash's cost, when it parses.
fn bcrypt_cost(s: &str) -> Option<u32> {
    s.parse::<bcrypt::HashParts>().ok().map(|p| p.get_cost())
}

/// Checks a hash from an import: a PHC argon2id/argon2i string with valid
/// parameters, or a 60-character bcrypt hash with a cost of 4–31; either
/// within the costs above.
pub fn check_imported(s: &str) -> Result<(), ImportHashError> {
    if is_bcrypt(s) {
        return match bcrypt_cost(s) {
            Some(c) if s.len() == 60 && (4..=31).contains(&c) => {
                if c <= MAX_BCRYPT_COST {
                    Ok(())
                } else {
                    Err(ImportHashError::Cost)
                }
            }
            _ => Err(ImportHashError::Malformed),
        };
    }
    let Some(id) = s.strip_prefix('$').and_then(|r| r.split('$').next()) else {
        return Err(ImportHashError::Unknown);
    };
    if id != "argon2id" && id != "argon2i" {
        return Err(if id.is_empty() {
            ImportHashError::Unknown
        } else {
            ImportHashError::Algorithm
        });
    }
    let parsed = PasswordHash::new(s).map_err(|_| ImportHashError::Malformed)?;
    let params = Params::try_from(&parsed).map_err(|_| ImportHashError::Malformed)?;
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err(ImportHashError::Malformed);
    }
    if !argon2_affordable(&params) {
        return Err(ImportHashError::Cost);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imported_hashes() {
        use argon2::PasswordHasher;
        let h = Hasher::new(None);
        // A PHP-style bcrypt hash ($2y$), made by the bcrypt crate.
        let b = bcrypt::hash_with_result("clave vieja de php", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        assert!(b.starts_with("$2y$04$"));
        assert_eq!(check_imported(&b), Ok(()));
        assert!(h.verify(b"clave vieja de php", &b));
        assert!(!h.verify(b"clave vieja de phq", &b));
        assert!(h.needs_rehash(&b));
        // An argon2i hash from another platform verifies and is upgraded.
        let a = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(4096, 3, 1, None).unwrap(),
        )
        .hash_password(b"otra clave")
        .unwrap()
        .to_string();
        assert!(a.starts_with("$argon2i$"), "{a}");
        assert_eq!(check_imported(&a), Ok(()));
        assert!(h.verify(b"otra clave", &a));
        assert!(h.needs_rehash(&a));
        assert_eq!(check_imported(&h.hash(b"x").unwrap()), Ok(()));
        // Costs outside 4–31 and hashes of the wrong length are malformed.
        for bad in [
            b.replacen("$04$", "$03$", 1),
            b.replacen("$04$", "$32$", 1),
            format!("{b}A"),
            b[..59].to_string(),
        ] {
            assert_eq!(
                check_imported(&bad),
                Err(ImportHashError::Malformed),
                "{bad}"
            );
        }
        // A salt without a hash, a hash string without either.
        let (salted, _) = a.rsplit_once('$').unwrap();
        assert_eq!(check_imported(salted), Err(ImportHashError::Malformed));
        let (bare, _) = salted.rsplit_once('$').unwrap();
        assert_eq!(check_imported(bare), Err(ImportHashError::Malformed));
        for bad in ["", "plaintext", "$2y$10$short", "$argon2id$v=19$garbage"] {
            assert!(check_imported(bad).is_err(), "{bad}");
        }
        for other in [
            "$scrypt$ln=4,r=8,p=1$c2FsdA$aGFzaA",
            "$1$abc$def",
            "$argon2d$v=19$x",
        ] {
            assert_eq!(
                check_imported(other),
                Err(ImportHashError::Algorithm),
                "{other}"
            );
        }
    }

    /// An imported hash may not cost more than [`MAX_ARGON2_KIB`] and the
    /// others: refused at import, and a stored one above them (put in by
    /// other means) burns the usual work and never matches, so that a
    /// login can neither tie the machine up nor ask for gigabytes.
    #[test]
    fn imported_hashes_within_costs() {
        use argon2::PasswordHasher;
        let tail = "$gWWkX41Dsfy9J98n3qkWQA$5BHXh02M9E0O4t7BsngF+HGtFm+5yK/ETdW+odC7KCY";
        let phc = |m: u32, t: u32, p: u32| format!("$argon2id$v=19$m={m},t={t},p={p}{tail}");
        for (m, t, p) in [
            (65_536, 4, 1),
            (262_144, 4, 1),
            (65_536, 16, 1),
            (19_456, 2, 8),
        ] {
            assert_eq!(check_imported(&phc(m, t, p)), Ok(()), "m={m},t={t},p={p}");
        }
        for (m, t, p) in [
            (262_145, 1, 1),
            (4_194_304, 3, 1),
            (8, 17, 1),
            (131_072, 9, 1),
            (72, 1, 9),
        ] {
            assert_eq!(
                check_imported(&phc(m, t, p)),
                Err(ImportHashError::Cost),
                "m={m},t={t},p={p}"
            );
        }
        let b = bcrypt::hash_with_result("clave vieja de php", 4)
            .unwrap()
            .format_for_version(bcrypt::Version::TwoY);
        assert_eq!(check_imported(&b.replacen("$04$", "$14$", 1)), Ok(()));
        // What a login checks before running bcrypt at all.
        assert!(bcrypt_affordable(&b.replacen("$04$", "$14$", 1)));
        for over in ["$15$", "$31$"] {
            assert!(!bcrypt_affordable(&b.replacen("$04$", over, 1)), "{over}");
        }
        assert!(!bcrypt_affordable("$2y$10$short"));
        for cost in ["$15$", "$31$"] {
            assert_eq!(
                check_imported(&b.replacen("$04$", cost, 1)),
                Err(ImportHashError::Cost)
            );
        }
        // Real hashes of the password, cheap to make, over a limit: no
        // match, and one evaluation at the usual cost.
        let h = Hasher::new(None);
        for params in [Params::new(8, 17, 1, None), Params::new(72, 1, 9, None)] {
            let stored = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.unwrap())
                .hash_password(b"otra clave")
                .unwrap()
                .to_string();
            let before = h.evaluations();
            assert!(!h.verify(b"otra clave", &stored), "{stored}");
            assert_eq!(h.evaluations(), before + 1);
        }
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 16, 1, None).unwrap(),
        )
        .hash_password(b"otra clave")
        .unwrap()
        .to_string();
        assert!(h.verify(b"otra clave", &cheap));
    }

    /// RFC 9106 §5.3: the three test vectors (m=32 KiB, t=3, p=4, with
    /// secret and associated data), through `compute` (so through the
    /// kernel the CPU runs, AVX-512 or AVX2, the argon2 crate elsewhere) and
    /// the dedicated working memory. A known answer from outside this code,
    /// not argon2 compared with itself.
    #[test]
    fn rfc_9106_known_answers() {
        let params = argon2::ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(argon2::AssociatedData::new(&[4u8; 12]).unwrap())
            .build()
            .unwrap();
        let h = Hasher::new(Some(vec![3u8; 8]));
        for (alg, tag) in [
            (
                Algorithm::Argon2d,
                "512b391b6f1162975371d30919734294f868e3be3984f3c1a13a4db9fabe4acb",
            ),
            (
                Algorithm::Argon2i,
                "c814d9d1dc7f37aa13f0d77f2494bda1c8de6b016dd388d29952a4c4672b6ce8",
            ),
            (
                Algorithm::Argon2id,
                "0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659",
            ),
        ] {
            let mut out = [0u8; 32];
            h.compute(
                (alg, Version::V0x13),
                &params,
                true,
                &[1u8; 32],
                &[2u8; 16],
                &mut out,
            )
            .unwrap();
            let hex: String = out.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(hex, tag, "{alg:?}");
        }
    }

    #[test]
    fn hash_and_verify() {
        let h = Hasher::new(None);
        let phc = h.hash(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(h.verify(b"correct horse", &phc));
        assert!(!h.verify(b"correct horsf", &phc));
        assert!(!h.verify(b"x", "not a phc string"));
        assert!(!h.needs_rehash(&phc));
        // Same secret, different salt.
        assert_ne!(phc, h.hash(b"correct horse").unwrap());
    }

    #[test]
    fn old_parameters_need_rehash() {
        let old = Hasher::with_params(None, 4096, 1, 1);
        let phc = old.hash(b"pw").unwrap();
        let cur = Hasher::new(None);
        assert!(cur.verify(b"pw", &phc), "old hashes still verify");
        assert!(cur.needs_rehash(&phc));
        assert!(cur.needs_rehash("garbage"));
    }

    #[test]
    fn each_parameter_and_the_algorithm_decide_a_rehash() {
        let cur = Hasher::new(None);
        assert_eq!(cur.blocks(), M_COST as usize, "one block per KiB");
        for (m, t, p) in [
            (M_COST / 2, T_COST, P_COST),
            (M_COST, T_COST + 1, P_COST),
            (M_COST, T_COST, P_COST + 1),
        ] {
            let phc = Hasher::with_params(None, m, t, p).hash(b"pw").unwrap();
            assert!(cur.needs_rehash(&phc), "m={m} t={t} p={p}");
            assert!(cur.verify(b"pw", &phc));
        }
        // Current parameters, but argon2i, or argon2id version 0x10.
        let current = cur.hash(b"pw").unwrap();
        assert!(!cur.needs_rehash(&current));
        assert!(cur.needs_rehash(&current.replacen("$argon2id$", "$argon2i$", 1)));
        assert!(cur.needs_rehash(&current.replacen("$v=19$", "$v=16$", 1)));
    }

    /// The comparison ORs every byte's difference: two differences that
    /// would cancel out under XOR (the same bit in two bytes) still fail.
    #[test]
    fn a_tampered_hash_never_verifies() {
        let h = Hasher::new(None);
        let phc = h.hash(b"pw").unwrap();
        let mut parsed = PasswordHash::new(&phc).unwrap();
        let mut bytes = parsed.hash.unwrap().as_bytes().to_vec();
        bytes[0] ^= 1;
        bytes[1] ^= 1;
        parsed.hash = Some(Output::new(&bytes).unwrap());
        let tampered = parsed.to_string();
        assert_ne!(tampered, phc);
        assert!(!h.verify(b"pw", &tampered));
    }

    #[test]
    fn debug_never_shows_the_pepper() {
        let h = Hasher::new(Some(b"pimienta-secreta-0123456789abcdef".to_vec()));
        let shown = format!("{h:?}");
        assert!(shown.contains("[set]"), "{shown}");
        assert!(shown.contains("19456"), "{shown}");
        assert!(!shown.contains("pimienta"), "{shown}");
        assert!(format!("{:?}", Hasher::new(None)).contains("None"));
    }

    #[test]
    fn pepper_changes_the_hash() {
        let peppered = Hasher::new(Some(b"0123456789abcdef0123456789abcdef".to_vec()));
        let plain = Hasher::new(None);
        let phc = peppered.hash(b"pw").unwrap();
        assert!(peppered.verify(b"pw", &phc));
        assert!(!plain.verify(b"pw", &phc), "a lost pepper fails closed");
        let phc2 = plain.hash(b"pw").unwrap();
        assert!(!peppered.verify(b"pw", &phc2));
    }

    /// A hash made ahead is the hash `hash` makes (peppered, verifiable,
    /// a fresh salt each time) and counts one evaluation when taken.
    #[test]
    fn a_hash_made_ahead_verifies_and_counts_when_taken() {
        let h = Hasher::new(Some(b"0123456789abcdef0123456789abcdef".to_vec()));
        // On a thread, and (no CPU to spare) made when taken.
        let (a, b) = (h.ahead(b"pw", true), h.ahead(b"pw", false));
        assert!(a.job.is_some() && b.job.is_none());
        assert_eq!(h.evaluations(), 0, "counted before it was taken");
        let (a, b) = (a.take().unwrap(), b.take().unwrap());
        assert_eq!(h.evaluations(), 2);
        assert_ne!(a, b, "the same salt twice");
        assert!(h.verify(b"pw", &a) && h.verify(b"pw", &b));
        assert!(
            !Hasher::new(None).verify(b"pw", &a),
            "made without the pepper"
        );
        assert!(!h.needs_rehash(&a) && !h.needs_rehash(&b));
    }

    /// A hash made ahead and not wanted gives up (its thread ends before
    /// the work would) and is never counted. The work here is a quarter of
    /// a second on a fast CPU, stopped at once; a thread that missed the
    /// stop would end with a hash. Where our kernel does not run, the
    /// argon2 crate's cannot stop and the hash ends.
    #[test]
    fn a_hash_made_ahead_and_dropped_is_stopped_and_not_counted() {
        let h = Hasher::with_params(None, 1024, 2048, 1);
        let gave_up = h.ahead(b"pw", true).drop_and_wait();
        assert_eq!(gave_up, argon2_simd::available());
        assert_eq!(h.evaluations(), 0);
        // Dropping it is what callers do: the thread is not waited for.
        drop(h.ahead(b"pw", true));
        drop(h.ahead(b"pw", false));
        assert_eq!(h.evaluations(), 0);
    }
}
