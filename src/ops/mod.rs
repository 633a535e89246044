//! Operations: what each command does, over an [`App`](crate::app::App),
//! with typed inputs and typed outcomes. No prompts and no printing here:
//! the commands gather inputs and render outcomes; the demo and the tests
//! call these directly.
//!
//! Invariants:
//! - Every operation reads and writes through `app.store` transactions;
//!   state checks and the updates they allow happen in one transaction.
//! - The argon2 work of an operation never depends on whether an account
//!   exists (see each operation's module).

pub mod accounts;
pub mod codes;
pub mod db;
pub mod import;
pub mod login;
pub mod reset;

use crate::domain::account::{Account, AccountType, Ident};
use crate::error::{Error, Result};
use crate::i18n::{M, quote, tf};
use crate::store::Txn;

/// Accounts an identifier names. A username or an email names proveedores
/// only (the manual: "NIT, Usuario o email (Proveedor)"). In a write
/// transaction the accounts returned stay locked until it ends.
pub fn find_accounts(
    tx: &mut dyn Txn,
    kind: Option<AccountType>,
    ident: &Ident,
) -> Result<Vec<Account>> {
    Ok(match ident {
        Ident::Nit(nit) => tx.accounts_by_nit(kind, nit)?,
        Ident::Username(u) => match kind {
            Some(AccountType::Cliente) => Vec::new(),
            _ => tx.accounts_by_username(u)?,
        },
        Ident::Email(e) => match kind {
            Some(AccountType::Cliente) => Vec::new(),
            _ => tx.accounts_by_email(Some(AccountType::Proveedor), e)?,
        },
    })
}

pub fn ambiguous(raw: &str) -> Error {
    Error::Usage(tf(M::Ambiguous, &[("ident", &quote(raw))]))
}

/// For agent commands (`user show`, `user unlock`, `audit --user`, …): the
/// account must exist, and saying it does not is fine (the agent is
/// trusted); several accounts is a usage error asking for precision.
pub fn require_account(
    tx: &mut dyn Txn,
    kind: Option<AccountType>,
    ident: &Ident,
    raw: &str,
) -> Result<Account> {
    let mut found = find_accounts(tx, kind, ident)?;
    match found.len() {
        0 => Err(Error::Data(match kind {
            Some(k) => tf(
                M::NoSuchAccount,
                &[
                    ("type", &crate::i18n::type_label(k)),
                    ("ident", &quote(raw)),
                ],
            ),
            None => tf(M::NoSuchAccountAny, &[("ident", &quote(raw))]),
        })),
        1 => found.pop().ok_or_else(|| crate::internal!("vanished")),
        _ => Err(ambiguous(raw)),
    }
}

/// Runs `background` on a scoped thread while `here` runs on this one;
/// when no thread can be started (a process at its limit), both run here,
/// one after the other: the answer is the same, only slower.
pub fn parallel<A: Send, B>(
    background: impl FnOnce() -> A + Send,
    here: impl FnOnce() -> B,
) -> Result<(A, B)> {
    let job = std::sync::Mutex::new(Some(background));
    let take = || job.lock().unwrap_or_else(|e| e.into_inner()).take();
    std::thread::scope(|s| {
        let spawned = if spawn_refused() {
            Err(std::io::Error::from(std::io::ErrorKind::WouldBlock))
        } else {
            std::thread::Builder::new().spawn_scoped(s, || take().map(|f| f()))
        };
        let b = here();
        let a = match spawned {
            Ok(handle) => match handle.join() {
                Ok(a) => a,
                Err(p) => std::panic::resume_unwind(p),
            },
            Err(_) => None,
        };
        let a = match a {
            Some(a) => a,
            None => match take() {
                Some(f) => f(),
                None => return Err(crate::internal!("parallel job lost")),
            },
        };
        Ok((a, b))
    })
}

/// The worker pool for CPU-bound batches (hashing), made on first use;
/// `None` when this process cannot start threads.
fn pool() -> Option<&'static rayon::ThreadPool> {
    if spawn_refused() {
        return None;
    }
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().build().ok())
        .as_ref()
}

/// `f` over `items` on every core, in order; sequential when no thread
/// can be started. The first error wins.
pub fn par_map<T: Sync, U: Send>(
    items: &[T],
    f: impl Fn(&T) -> Result<U> + Sync + Send,
) -> Result<Vec<U>> {
    use rayon::prelude::*;
    match pool() {
        Some(p) if items.len() > 1 => p.install(|| items.par_iter().map(&f).collect()),
        _ => items.iter().map(f).collect(),
    }
}

/// True when this process must behave as one that cannot start threads or
/// processes (its limit reached). Only the test build can be told so
/// (`RECUPERA_TEST_NO_SPAWN`), to check that such a process answers the
/// same; every other build always tries.
pub fn spawn_refused() -> bool {
    #[cfg(feature = "test-clock")]
    let refused = std::env::var_os("RECUPERA_TEST_NO_SPAWN").is_some();
    #[cfg(not(feature = "test-clock"))]
    let refused = false;
    refused
}
