//! Accounts on PostgreSQL.

use super::{PgTxn, get, lock_clause};
use crate::domain::account::{Account, AccountType, Disabled};
use crate::domain::email::Email;
use crate::domain::lang::Lang;
use crate::domain::limits::{ChannelState, LoginState, RequestLog};
use crate::domain::nit::Nit;
use crate::store::{
    Accounts, Each, Error, InsertAccount, NewAccount, Profile, Result, UpdateProfile, bad_value,
};
use postgres::Row;

/// Accounts per `INSERT` statement in `insert_accounts` (nine arrays of
/// this many values: a few hundred kilobytes per round trip).
const INSERT_BATCH: usize = 1000;

pub(super) const COLUMNS: &str = "id, kind, nit, username, email, name, lang, password_hash, \
     created_at, password_changed_at, last_login_at, failed_logins, login_locked_until, \
     failed_confirms, recovery_suspended_until, request_log, live_code_id, disabled_at, \
     disabled_reason";

pub(super) fn from_row(r: &Row) -> Result<Account> {
    let kind: String = get(r, 1)?;
    let kind = AccountType::from_stored(&kind).ok_or_else(|| bad_value("accounts.kind", &kind))?;
    let lang: String = get(r, 6)?;
    let log: String = get(r, 15)?;
    let disabled_at: Option<i64> = get(r, 17)?;
    let reason: Option<String> = get(r, 18)?;
    Ok(Account {
        id: get(r, 0)?,
        kind,
        nit: Nit::from_stored(get(r, 2)?),
        username: get(r, 3)?,
        email: Email::from_stored(get(r, 4)?),
        name: get(r, 5)?,
        lang: Lang::from_stored(&lang),
        password_hash: get(r, 7)?,
        created_at: get(r, 8)?,
        password_changed_at: get(r, 9)?,
        last_login_at: get(r, 10)?,
        login: LoginState {
            failures: get(r, 11)?,
            locked_until: get(r, 12)?,
        },
        channel: ChannelState {
            failures: get(r, 13)?,
            suspended_until: get(r, 14)?,
        },
        request_log: RequestLog::parse(&log),
        live_code_id: get(r, 16)?,
        disabled: disabled_at.map(|at| Disabled { at, reason }),
    })
}

impl PgTxn<'_> {
    /// Accounts matching `cond`; locked in a write transaction.
    fn accounts_where(
        &mut self,
        cond: &str,
        order: &str,
        params: super::Params<'_>,
    ) -> Result<Vec<Account>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM accounts WHERE {cond} ORDER BY {order}{}",
            lock_clause(self.write)
        );
        self.rows(&sql, params)?.iter().map(from_row).collect()
    }

    /// Why `a` was not inserted: its type and NIT exist, or (the other
    /// unique rule) its username is taken.
    fn refusal(&mut self, a: &NewAccount<'_>) -> Result<InsertAccount> {
        let exists: bool = get(
            &self.one(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE kind = $1 AND nit = $2)",
                &[&a.kind.as_str(), &a.nit.as_str()],
            )?,
            0,
        )?;
        if exists {
            Ok(InsertAccount::Exists)
        } else {
            Ok(InsertAccount::UsernameTaken)
        }
    }

    fn username_taken(&mut self, username: &str, except: Option<i64>) -> Result<bool> {
        get(
            &self.one(
                "SELECT EXISTS (SELECT 1 FROM accounts WHERE lower(username) = lower($1) \
                 AND ($2::BIGINT IS NULL OR id <> $2))",
                &[&username, &except],
            )?,
            0,
        )
    }
}

impl Accounts for PgTxn<'_> {
    fn insert_account(&mut self, a: &NewAccount<'_>) -> Result<InsertAccount> {
        let changed_at = a.password_hash.map(|_| a.now);
        // ON CONFLICT DO NOTHING covers every unique rule (type and NIT,
        // username) without aborting the transaction.
        let row = self.opt(
            "INSERT INTO accounts (kind, nit, username, email, name, lang, password_hash, \
             created_at, password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT DO NOTHING RETURNING id",
            &[
                &a.kind.as_str(),
                &a.nit.as_str(),
                &a.username,
                &a.email.as_str(),
                &a.name,
                &a.lang.as_str(),
                &a.password_hash,
                &a.now,
                &changed_at,
            ],
        )?;
        if let Some(r) = row {
            return Ok(InsertAccount::Created(get(&r, 0)?));
        }
        self.refusal(a)
    }

    fn insert_accounts(&mut self, rows: &[NewAccount<'_>]) -> Result<Vec<InsertAccount>> {
        let mut out = Vec::with_capacity(rows.len());
        for batch in rows.chunks(INSERT_BATCH) {
            let kinds: Vec<&str> = batch.iter().map(|a| a.kind.as_str()).collect();
            let nits: Vec<&str> = batch.iter().map(|a| a.nit.as_str()).collect();
            let usernames: Vec<Option<&str>> = batch.iter().map(|a| a.username).collect();
            let emails: Vec<&str> = batch.iter().map(|a| a.email.as_str()).collect();
            let names: Vec<Option<&str>> = batch.iter().map(|a| a.name).collect();
            let langs: Vec<&str> = batch.iter().map(|a| a.lang.as_str()).collect();
            let hashes: Vec<Option<&str>> = batch.iter().map(|a| a.password_hash).collect();
            let created: Vec<i64> = batch.iter().map(|a| a.now).collect();
            let changed: Vec<Option<i64>> = batch
                .iter()
                .map(|a| a.password_hash.map(|_| a.now))
                .collect();
            // The rows in their order (ids follow it); ON CONFLICT DO NOTHING
            // skips any row a unique rule refuses, as `insert_account` does.
            let inserted = self.rows(
                "INSERT INTO accounts (kind, nit, username, email, name, lang, password_hash, \
                 created_at, password_changed_at) \
                 SELECT k, n, u, e, m, l, h, c, p FROM UNNEST($1::TEXT[], $2::TEXT[], \
                 $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::BIGINT[], \
                 $9::BIGINT[]) WITH ORDINALITY AS r (k, n, u, e, m, l, h, c, p, i) ORDER BY i \
                 ON CONFLICT DO NOTHING RETURNING id, kind, nit",
                &[
                    &kinds, &nits, &usernames, &emails, &names, &langs, &hashes, &created, &changed,
                ],
            )?;
            let mut ids = std::collections::HashMap::with_capacity(inserted.len());
            for r in &inserted {
                let key: (String, String) = (get(r, 1)?, get(r, 2)?);
                ids.insert(key, get::<i64>(r, 0)?);
            }
            for a in batch {
                // A row the statement skipped (taken meanwhile, or twice in
                // the batch) gets the answer `insert_account` would give.
                match ids.remove(&(a.kind.as_str().to_string(), a.nit.as_str().to_string())) {
                    Some(id) => out.push(InsertAccount::Created(id)),
                    None => out.push(self.refusal(a)?),
                }
            }
        }
        Ok(out)
    }

    fn account(&mut self, id: i64) -> Result<Option<Account>> {
        Ok(self.accounts_where("id = $1", "id", &[&id])?.pop())
    }

    fn accounts_by_nit(&mut self, kind: Option<AccountType>, nit: &Nit) -> Result<Vec<Account>> {
        let kind = kind.map(|k| k.as_str());
        self.accounts_where(
            "nit = $1 AND ($2::TEXT IS NULL OR kind = $2)",
            "kind",
            &[&nit.as_str(), &kind],
        )
    }

    fn accounts_by_username(&mut self, username: &str) -> Result<Vec<Account>> {
        self.accounts_where(
            "lower(username) = lower($1) AND kind = 'proveedor'",
            "id",
            &[&username],
        )
    }

    fn accounts_by_email(
        &mut self,
        kind: Option<AccountType>,
        email: &Email,
    ) -> Result<Vec<Account>> {
        let kind = kind.map(|k| k.as_str());
        self.accounts_where(
            "lower(email) = lower($1) AND ($2::TEXT IS NULL OR kind = $2)",
            "id",
            &[&email.as_str(), &kind],
        )
    }

    fn for_each_account(&mut self, kind: Option<AccountType>, f: Each<'_, Account>) -> Result<()> {
        let kind = kind.map(|k| k.as_str());
        self.each_row(
            &format!(
                "SELECT {COLUMNS} FROM accounts WHERE ($1::TEXT IS NULL OR kind = $1) ORDER BY id"
            ),
            &[&kind],
            |r| f(from_row(r)?).map_err(Error::stopped),
        )
    }

    fn set_login_state(&mut self, id: i64, s: &LoginState) -> Result<()> {
        self.exec(
            "UPDATE accounts SET failed_logins = $2, login_locked_until = $3 WHERE id = $1",
            &[&id, &s.failures, &s.locked_until],
        )?;
        Ok(())
    }

    fn set_channel_state(&mut self, id: i64, s: &ChannelState) -> Result<()> {
        self.exec(
            "UPDATE accounts SET failed_confirms = $2, recovery_suspended_until = $3 WHERE id = $1",
            &[&id, &s.failures, &s.suspended_until],
        )?;
        Ok(())
    }

    fn set_request_log(&mut self, id: i64, log: &RequestLog) -> Result<()> {
        self.exec(
            "UPDATE accounts SET request_log = $2 WHERE id = $1",
            &[&id, &log.to_stored()],
        )?;
        Ok(())
    }

    fn set_password(&mut self, id: i64, hash: &str, now: i64) -> Result<()> {
        self.exec(
            "UPDATE accounts SET password_hash = $2, password_changed_at = $3 WHERE id = $1",
            &[&id, &hash, &now],
        )?;
        Ok(())
    }

    fn replace_password_hash(&mut self, id: i64, old: &str, new: &str) -> Result<bool> {
        let n = self.exec(
            "UPDATE accounts SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
            &[&id, &old, &new],
        )?;
        Ok(n == 1)
    }

    fn set_last_login(&mut self, id: i64, now: i64) -> Result<()> {
        self.exec(
            "UPDATE accounts SET last_login_at = $2 WHERE id = $1",
            &[&id, &now],
        )?;
        Ok(())
    }

    fn set_disabled(&mut self, id: i64, disabled: Option<(i64, Option<&str>)>) -> Result<()> {
        let (at, reason) = match disabled {
            Some((at, reason)) => (Some(at), reason),
            None => (None, None),
        };
        self.exec(
            "UPDATE accounts SET disabled_at = $2, disabled_reason = $3 WHERE id = $1",
            &[&id, &at, &reason],
        )?;
        Ok(())
    }

    fn update_profile(&mut self, id: i64, p: &Profile<'_>) -> Result<UpdateProfile> {
        if let Some(u) = p.username
            && self.username_taken(u, Some(id))?
        {
            return Ok(UpdateProfile::UsernameTaken);
        }
        self.exec(
            "UPDATE accounts SET email = $2, username = $3, name = $4, lang = $5 WHERE id = $1",
            &[
                &id,
                &p.email.as_str(),
                &p.username,
                &p.name,
                &p.lang.as_str(),
            ],
        )?;
        Ok(UpdateProfile::Updated)
    }

    fn delete_account(&mut self, id: i64) -> Result<Vec<String>> {
        let mut to = std::collections::BTreeSet::new();
        for sql in [
            "DELETE FROM codes WHERE account_id = $1 RETURNING recipient",
            "DELETE FROM notices WHERE account_id = $1 RETURNING recipient",
        ] {
            for r in self.rows(sql, &[&id])? {
                to.insert(r.get::<_, String>(0));
            }
        }
        self.exec("DELETE FROM accounts WHERE id = $1", &[&id])?;
        Ok(to.into_iter().collect())
    }
}

/// For `db copy`: an account row as `COPY` text fields.
pub(super) fn copy_fields(a: &Account) -> Vec<Option<String>> {
    vec![
        Some(a.id.to_string()),
        Some(a.kind.as_str().to_string()),
        Some(a.nit.as_str().to_string()),
        a.username.clone(),
        Some(a.email.as_str().to_string()),
        a.name.clone(),
        Some(a.lang.as_str().to_string()),
        a.password_hash.clone(),
        Some(a.created_at.to_string()),
        a.password_changed_at.map(|v| v.to_string()),
        a.last_login_at.map(|v| v.to_string()),
        Some(a.login.failures.to_string()),
        a.login.locked_until.map(|v| v.to_string()),
        Some(a.channel.failures.to_string()),
        a.channel.suspended_until.map(|v| v.to_string()),
        Some(a.request_log.to_stored()),
        a.live_code_id.map(|v| v.to_string()),
        a.disabled.as_ref().map(|d| d.at.to_string()),
        a.disabled.as_ref().and_then(|d| d.reason.clone()),
    ]
}
