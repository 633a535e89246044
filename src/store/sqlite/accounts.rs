//! Accounts on SQLite.

use super::{SqliteTxn, is_constraint};
use crate::domain::account::{Account, AccountType, Disabled};
use crate::domain::email::Email;
use crate::domain::lang::Lang;
use crate::domain::limits::{ChannelState, LoginState, RequestLog};
use crate::domain::nit::Nit;
use crate::store::{
    Accounts, Each, Error, InsertAccount, NewAccount, Profile, Result, UpdateProfile, bad_value,
};
use rusqlite::params;

pub(super) const COLUMNS: &str = "id, kind, nit, username, email, name, lang, password_hash, \
     created_at, password_changed_at, last_login_at, failed_logins, login_locked_until, \
     failed_confirms, recovery_suspended_until, request_log, live_code_id, disabled_at, \
     disabled_reason";

pub(super) fn from_row(r: &rusqlite::Row<'_>) -> Result<Account> {
    let kind: String = r.get(1)?;
    let kind = AccountType::from_stored(&kind).ok_or_else(|| bad_value("accounts.kind", &kind))?;
    let lang: String = r.get(6)?;
    let log: String = r.get(15)?;
    let disabled_at: Option<i64> = r.get(17)?;
    let reason: Option<String> = r.get(18)?;
    Ok(Account {
        id: r.get(0)?,
        kind,
        nit: Nit::from_stored(r.get(2)?),
        username: r.get(3)?,
        email: Email::from_stored(r.get(4)?),
        name: r.get(5)?,
        lang: Lang::from_stored(&lang),
        password_hash: r.get(7)?,
        created_at: r.get(8)?,
        password_changed_at: r.get(9)?,
        last_login_at: r.get(10)?,
        login: LoginState {
            failures: r.get(11)?,
            locked_until: r.get(12)?,
        },
        channel: ChannelState {
            failures: r.get(13)?,
            suspended_until: r.get(14)?,
        },
        request_log: RequestLog::parse(&log),
        live_code_id: r.get(16)?,
        disabled: disabled_at.map(|at| Disabled { at, reason }),
    })
}

impl SqliteTxn<'_> {
    fn accounts_where(&self, cond: &str, args: impl rusqlite::Params) -> Result<Vec<Account>> {
        let mut stmt = self
            .tx
            .prepare_cached(&format!("SELECT {COLUMNS} FROM accounts WHERE {cond}"))?;
        let mut rows = stmt.query(args)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(from_row(r)?);
        }
        Ok(out)
    }

    fn username_taken(&self, username: &str, except: Option<i64>) -> Result<bool> {
        Ok(self.tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE username = ?1 COLLATE NOCASE \
             AND (?2 IS NULL OR id <> ?2))",
            params![username, except],
            |r| r.get(0),
        )?)
    }
}

impl Accounts for SqliteTxn<'_> {
    fn insert_account(&mut self, a: &NewAccount<'_>) -> Result<InsertAccount> {
        let exists: bool = self.tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM accounts WHERE kind = ?1 AND nit = ?2)",
            params![a.kind.as_str(), a.nit.as_str()],
            |r| r.get(0),
        )?;
        if exists {
            return Ok(InsertAccount::Exists);
        }
        if let Some(u) = a.username
            && self.username_taken(u, None)?
        {
            return Ok(InsertAccount::UsernameTaken);
        }
        let res = self
            .tx
            .prepare_cached(
                "INSERT INTO accounts (kind, nit, username, email, name, lang, password_hash, \
                 created_at, password_changed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                a.kind.as_str(),
                a.nit.as_str(),
                a.username,
                a.email.as_str(),
                a.name,
                a.lang.as_str(),
                a.password_hash,
                a.now,
                a.password_hash.map(|_| a.now),
            ]);
        match res {
            Ok(_) => Ok(InsertAccount::Created(self.tx.last_insert_rowid())),
            Err(e) if is_constraint(&e) => Ok(InsertAccount::Exists),
            Err(e) => Err(e.into()),
        }
    }

    fn account(&mut self, id: i64) -> Result<Option<Account>> {
        Ok(self.accounts_where("id = ?1", params![id])?.pop())
    }

    fn accounts_by_nit(&mut self, kind: Option<AccountType>, nit: &Nit) -> Result<Vec<Account>> {
        self.accounts_where(
            "nit = ?1 AND (?2 IS NULL OR kind = ?2) ORDER BY kind",
            params![nit.as_str(), kind.map(|k| k.as_str())],
        )
    }

    fn accounts_by_username(&mut self, username: &str) -> Result<Vec<Account>> {
        self.accounts_where(
            "username = ?1 COLLATE NOCASE AND kind = 'proveedor'",
            params![username],
        )
    }

    fn accounts_by_email(
        &mut self,
        kind: Option<AccountType>,
        email: &Email,
    ) -> Result<Vec<Account>> {
        self.accounts_where(
            "email = ?1 COLLATE NOCASE AND (?2 IS NULL OR kind = ?2) ORDER BY id",
            params![email.as_str(), kind.map(|k| k.as_str())],
        )
    }

    fn for_each_account(&mut self, kind: Option<AccountType>, f: Each<'_, Account>) -> Result<()> {
        let mut stmt = self.tx.prepare(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE (?1 IS NULL OR kind = ?1) ORDER BY id"
        ))?;
        let mut rows = stmt.query(params![kind.map(|k| k.as_str())])?;
        while let Some(row) = rows.next()? {
            f(from_row(row)?).map_err(Error::stopped)?;
        }
        Ok(())
    }

    fn set_login_state(&mut self, id: i64, s: &LoginState) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE accounts SET failed_logins = ?2, login_locked_until = ?3 WHERE id = ?1",
            )?
            .execute(params![id, s.failures, s.locked_until])?;
        Ok(())
    }

    fn set_channel_state(&mut self, id: i64, s: &ChannelState) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE accounts SET failed_confirms = ?2, recovery_suspended_until = ?3 \
                 WHERE id = ?1",
            )?
            .execute(params![id, s.failures, s.suspended_until])?;
        Ok(())
    }

    fn set_request_log(&mut self, id: i64, log: &RequestLog) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE accounts SET request_log = ?2 WHERE id = ?1")?
            .execute(params![id, log.to_stored()])?;
        Ok(())
    }

    fn set_password(&mut self, id: i64, hash: &str, now: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE accounts SET password_hash = ?2, password_changed_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id, hash, now])?;
        Ok(())
    }

    fn replace_password_hash(&mut self, id: i64, old: &str, new: &str) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "UPDATE accounts SET password_hash = ?3 WHERE id = ?1 AND password_hash = ?2",
            )?
            .execute(params![id, old, new])?;
        Ok(n == 1)
    }

    fn set_last_login(&mut self, id: i64, now: i64) -> Result<()> {
        self.tx
            .prepare_cached("UPDATE accounts SET last_login_at = ?2 WHERE id = ?1")?
            .execute(params![id, now])?;
        Ok(())
    }

    fn set_disabled(&mut self, id: i64, disabled: Option<(i64, Option<&str>)>) -> Result<()> {
        let (at, reason) = match disabled {
            Some((at, reason)) => (Some(at), reason),
            None => (None, None),
        };
        self.tx.execute(
            "UPDATE accounts SET disabled_at = ?2, disabled_reason = ?3 WHERE id = ?1",
            params![id, at, reason],
        )?;
        Ok(())
    }

    fn update_profile(&mut self, id: i64, p: &Profile<'_>) -> Result<UpdateProfile> {
        if let Some(u) = p.username
            && self.username_taken(u, Some(id))?
        {
            return Ok(UpdateProfile::UsernameTaken);
        }
        let res = self.tx.execute(
            "UPDATE accounts SET email = ?2, username = ?3, name = ?4, lang = ?5 WHERE id = ?1",
            params![id, p.email.as_str(), p.username, p.name, p.lang.as_str()],
        );
        match res {
            Ok(_) => Ok(UpdateProfile::Updated),
            Err(e) if is_constraint(&e) => Ok(UpdateProfile::UsernameTaken),
            Err(e) => Err(e.into()),
        }
    }

    fn delete_account(&mut self, id: i64) -> Result<Vec<String>> {
        // Overwrite what is deleted (habeas data): no copy of the rows
        // stays in free pages.
        self.tx.execute_batch("PRAGMA secure_delete = ON")?;
        let mut to = std::collections::BTreeSet::new();
        for sql in [
            "DELETE FROM codes WHERE account_id = ?1 RETURNING recipient",
            "DELETE FROM notices WHERE account_id = ?1 RETURNING recipient",
        ] {
            let mut st = self.tx.prepare(sql)?;
            let mut rows = st.query(params![id])?;
            while let Some(r) = rows.next()? {
                to.insert(r.get::<_, String>(0)?);
            }
        }
        self.tx
            .execute("DELETE FROM accounts WHERE id = ?1", params![id])?;
        Ok(to.into_iter().collect())
    }
}

/// For `Whole::load`: an account row as it was.
pub(super) fn load(tx: &rusqlite::Transaction<'_>, a: &Account) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO accounts ({COLUMNS}) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)"
    ))?
    .execute(params![
        a.id,
        a.kind.as_str(),
        a.nit.as_str(),
        a.username,
        a.email.as_str(),
        a.name,
        a.lang.as_str(),
        a.password_hash,
        a.created_at,
        a.password_changed_at,
        a.last_login_at,
        a.login.failures,
        a.login.locked_until,
        a.channel.failures,
        a.channel.suspended_until,
        a.request_log.to_stored(),
        a.live_code_id,
        a.disabled.as_ref().map(|d| d.at),
        a.disabled.as_ref().and_then(|d| d.reason.clone()),
    ])?;
    Ok(())
}
