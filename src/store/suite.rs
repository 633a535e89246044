//! The store's own tests: one suite, run against every engine (taskchampion's
//! `storage/test.rs` pattern). `cargo test` lists each test twice, under
//! `store::suite::sqlite::` and `store::suite::postgres::`.

use super::*;
use crate::domain::account::AccountType;
use crate::domain::email::Email;
use crate::domain::lang::Lang;
use crate::domain::limits::{ChannelState, Limits, LoginState, RequestLog};
use crate::domain::nit::Nit;

type R = crate::error::Result<()>;

fn sqlite_store() -> Store {
    Store::in_memory().unwrap()
}

/// A store on a fresh database of the test server; `None` without one
/// (see `testing::fresh_pg_url`). Other modules' tests use it too.
pub(crate) fn pg_store() -> Option<Store> {
    let url = crate::testing::fresh_pg_url()?;
    let loc = Location::parse(std::ffi::OsStr::new(&url), false, None).unwrap();
    Some(Store::open(&loc, DEFAULT_BUSY_TIMEOUT).unwrap())
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(&mut super::sqlite_store()).unwrap() } )*
        }
        mod postgres {
            $( #[test] fn $name() {
                if let Some(mut s) = super::pg_store() { super::$name(&mut s).unwrap() }
            } )*
        }
    };
}

suite!(
    accounts_are_unique_per_type_and_nit,
    usernames_are_unique_without_case,
    a_batch_of_accounts_answers_row_by_row,
    invitations_in_a_batch_do_what_insert_code_does,
    lookups_by_nit_username_and_email,
    counters_round_trip,
    profile_and_disable,
    a_new_code_kills_the_old_one,
    code_attempts_end_and_rekey,
    purge_walks_codes_in_id_order,
    mail_ids_are_shared_and_claims_exclusive,
    mail_lists_newest_first_across_tables,
    audit_filters,
    delete_leaves_a_pseudonym,
    rollback_when_dropped,
    counts_and_copy_between_engines,
    schema_is_at_the_latest_version,
);

fn nit(s: &str) -> Nit {
    Nit::parse(s).unwrap()
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn add(s: &mut Store, kind: AccountType, n: &str, e: &str, user: Option<&str>) -> i64 {
    let n = nit(n);
    let e = email(e);
    s.write(|tx| {
        match tx.insert_account(&NewAccount {
            kind,
            nit: &n,
            username: user,
            email: &e,
            name: Some("Ana Gómez"),
            lang: Lang::Es,
            password_hash: None,
            now: 1000,
        })? {
            InsertAccount::Created(id) => Ok(id),
            other => panic!("{other:?}"),
        }
    })
    .unwrap()
}

fn code(s: &mut Store, account: i64, hash: &str, now: i64, expires: i64) -> i64 {
    let e = email("ana@example.co");
    s.write(|tx| {
        Ok(tx.insert_code(&NewCode {
            account_id: account,
            hash: Some(hash),
            now,
            expires_at: expires,
            recipient: &e,
            claim: None,
        })?)
    })
    .unwrap()
}

fn accounts_are_unique_per_type_and_nit(s: &mut Store) -> R {
    add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    add(s, AccountType::Proveedor, "900102030", "b@example.co", None);
    let n = nit("900102030");
    let e = email("x@example.co");
    let again = s.write(|tx| {
        Ok(tx.insert_account(&NewAccount {
            kind: AccountType::Cliente,
            nit: &n,
            username: None,
            email: &e,
            name: None,
            lang: Lang::Es,
            password_hash: None,
            now: 0,
        })?)
    })?;
    assert_eq!(again, InsertAccount::Exists);
    // The refused insert left the transaction usable and wrote nothing.
    let both = s.read(|tx| Ok(tx.accounts_by_nit(None, &n)?))?;
    assert_eq!(both.len(), 2);
    assert_eq!(both[0].kind, AccountType::Cliente, "cliente first");
    Ok(())
}

fn usernames_are_unique_without_case(s: &mut Store) -> R {
    add(
        s,
        AccountType::Proveedor,
        "800003122",
        "v@acme.co",
        Some("Acme"),
    );
    let n = nit("830015428");
    let e = email("w@acme.co");
    let r = s.write(|tx| {
        Ok(tx.insert_account(&NewAccount {
            kind: AccountType::Proveedor,
            nit: &n,
            username: Some("ACME"),
            email: &e,
            name: None,
            lang: Lang::Es,
            password_hash: None,
            now: 0,
        })?)
    })?;
    assert_eq!(r, InsertAccount::UsernameTaken);
    Ok(())
}

/// `insert_accounts` (PostgreSQL: one statement per batch) answers each
/// row as `insert_account` would, in order: created rows get ids in the
/// order given, with every field stored; a taken type and NIT, a taken
/// username and a row repeated within the batch are refused, and the
/// rest still go in.
fn a_batch_of_accounts_answers_row_by_row(s: &mut Store) -> R {
    add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    add(
        s,
        AccountType::Proveedor,
        "800003122",
        "v@acme.co",
        Some("Acme"),
    );
    let nits: Vec<Nit> = [
        "830015428",
        "900102030",
        "860518862",
        "830015428",
        "899999034",
    ]
    .iter()
    .map(|n| nit(n))
    .collect();
    let e = email("nuevo@example.co");
    let rows: Vec<NewAccount<'_>> = nits
        .iter()
        .enumerate()
        .map(|(i, n)| NewAccount {
            kind: if i == 2 {
                AccountType::Proveedor
            } else {
                AccountType::Cliente
            },
            nit: n,
            username: (i == 2).then_some("ACME"),
            email: &e,
            name: (i == 4).then_some("Ana Gómez"),
            lang: if i == 4 { Lang::En } else { Lang::Es },
            password_hash: (i == 4)
                .then_some("$2y$10$abcdefghijklmnopqrstuu5Zc1wJ1i6mR0Q0ph6b8ZzKUR4E5jS6"),
            now: 77,
        })
        .collect();
    let answers = s.write(|tx| Ok(tx.insert_accounts(&rows)?))?;
    let (first, last) = match (answers[0], answers[4]) {
        (InsertAccount::Created(a), InsertAccount::Created(b)) => (a, b),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        answers[1..4],
        [
            InsertAccount::Exists,
            InsertAccount::UsernameTaken,
            InsertAccount::Exists,
        ]
    );
    assert!(first < last, "ids in the order given");
    let acc = s.read(|tx| Ok(tx.account(last)?))?.unwrap();
    assert_eq!(acc.nit, nits[4]);
    assert_eq!(acc.email, e);
    assert_eq!(acc.name.as_deref(), Some("Ana Gómez"));
    assert_eq!(acc.lang, Lang::En);
    assert!(acc.password_hash.is_some());
    assert_eq!((acc.created_at, acc.password_changed_at), (77, Some(77)));
    let first = s.read(|tx| Ok(tx.account(first)?))?.unwrap();
    assert_eq!((first.username, first.password_changed_at), (None, None));
    let mut n = 0;
    s.read(|tx| {
        Ok(tx.for_each_account(None, &mut |_| {
            n += 1;
            Ok(())
        })?)
    })?;
    assert_eq!(n, 4, "two before, two created");
    Ok(())
}

/// `insert_invitations` (PostgreSQL: three statements per batch): each
/// account gets a live code without a hash and its queued message, in
/// the order given; a live code it had dies; the request quota is set.
fn invitations_in_a_batch_do_what_insert_code_does(s: &mut Store) -> R {
    let a = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let b = add(s, AccountType::Cliente, "830015428", "b@example.co", None);
    let old = code(s, b, "h", 1000, 5000);
    let (ea, eb) = (email("a@example.co"), email("b@example.co"));
    let invite = |account_id, recipient| NewCode {
        account_id,
        hash: None,
        now: 2000,
        expires_at: 9000,
        recipient,
        claim: None,
    };
    let log = RequestLog::parse("2000");
    s.write(|tx| Ok(tx.insert_invitations(&[invite(a, &ea), invite(b, &eb)], &log)?))?;
    s.write(|tx| Ok(tx.insert_invitations(&[], &log)?))?;
    let (la, lb) = s.read(|tx| Ok((tx.live_code(a, 2000)?, tx.live_code(b, 2000)?)))?;
    let (la, lb) = (la.unwrap(), lb.unwrap());
    assert!(
        old < la.id && la.id < lb.id,
        "new codes, in the order given"
    );
    assert_eq!((la.hash, la.created_at, la.expires_at), (None, 2000, 9000));
    let replaced = s.read(|tx| Ok(tx.code(old)?))?.unwrap();
    assert_eq!(replaced.state, CodeState::Replaced);
    assert_eq!(replaced.ends_at, 2000, "the old code ends now");
    let queued = s.read(|tx| Ok(tx.queued_mail_ids()?))?;
    assert!(queued.ends_with(&[la.id, lb.id]), "{queued:?}");
    let row = s.read(|tx| Ok(tx.mail(lb.id)?))?.unwrap();
    assert_eq!(row.mail.recipient, "b@example.co");
    for id in [a, b] {
        let acc = s.read(|tx| Ok(tx.account(id)?))?.unwrap();
        assert_eq!(acc.request_log, log);
    }
    // An account twice in one batch: its second code kills its first.
    s.write(|tx| Ok(tx.insert_invitations(&[invite(a, &ea), invite(a, &ea)], &log)?))?;
    let live = s.read(|tx| Ok(tx.live_code(a, 2000)?))?.unwrap();
    let first = s.read(|tx| Ok(tx.code(live.id - 1)?))?.unwrap();
    assert_eq!((first.account_id, first.state), (a, CodeState::Replaced));
    Ok(())
}

fn lookups_by_nit_username_and_email(s: &mut Store) -> R {
    let p1 = add(
        s,
        AccountType::Proveedor,
        "800003122",
        "ventas@acme.co",
        Some("acme"),
    );
    let p2 = add(
        s,
        AccountType::Proveedor,
        "830015428",
        "VENTAS@acme.co",
        None,
    );
    let c = add(s, AccountType::Cliente, "800003122", "ventas@acme.co", None);
    s.read(|tx| {
        let by_user = tx.accounts_by_username("ACME")?;
        assert_eq!(by_user.iter().map(|a| a.id).collect::<Vec<_>>(), vec![p1]);
        let by_mail =
            tx.accounts_by_email(Some(AccountType::Proveedor), &email("Ventas@ACME.co"))?;
        assert_eq!(
            by_mail.iter().map(|a| a.id).collect::<Vec<_>>(),
            vec![p1, p2]
        );
        let any = tx.accounts_by_email(None, &email("ventas@acme.co"))?;
        assert_eq!(any.len(), 3);
        let clientes = tx.accounts_by_nit(Some(AccountType::Cliente), &nit("800003122"))?;
        assert_eq!(clientes.iter().map(|a| a.id).collect::<Vec<_>>(), vec![c]);
        let mut seen = Vec::new();
        tx.for_each_account(Some(AccountType::Proveedor), &mut |a| {
            seen.push(a.id);
            Ok(())
        })?;
        assert_eq!(seen, vec![p1, p2]);
        Ok(())
    })
}

fn counters_round_trip(s: &mut Store) -> R {
    let id = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let login = LoginState {
        failures: 6,
        locked_until: Some(5000),
    };
    let channel = ChannelState {
        failures: 3,
        suspended_until: Some(9000),
    };
    let log = Limits::default().record_request(&RequestLog::default(), 1234);
    s.write(|tx| {
        tx.set_login_state(id, &login)?;
        tx.set_channel_state(id, &channel)?;
        tx.set_request_log(id, &log)?;
        tx.set_password(id, "$argon2id$h1", 77)?;
        tx.set_last_login(id, 88)?;
        Ok(())
    })?;
    let a = s.read(|tx| Ok(tx.account(id)?))?.unwrap();
    assert_eq!((a.login, a.channel), (login, channel));
    assert_eq!(a.request_log, log);
    assert_eq!(a.password_hash.as_deref(), Some("$argon2id$h1"));
    assert_eq!(
        (a.password_changed_at, a.last_login_at),
        (Some(77), Some(88))
    );
    // A re-hash applies only over the hash it replaces.
    assert!(!s.write(|tx| Ok(tx.replace_password_hash(id, "$other", "$new")?))?);
    assert!(s.write(|tx| Ok(tx.replace_password_hash(id, "$argon2id$h1", "$new")?))?);
    let a = s.read(|tx| Ok(tx.account(id)?))?.unwrap();
    assert_eq!(a.password_hash.as_deref(), Some("$new"));
    Ok(())
}

fn profile_and_disable(s: &mut Store) -> R {
    let id = add(
        s,
        AccountType::Proveedor,
        "800003122",
        "a@example.co",
        Some("uno"),
    );
    add(
        s,
        AccountType::Proveedor,
        "830015428",
        "b@example.co",
        Some("dos"),
    );
    let e = email("nueva@example.co");
    let taken = s.write(|tx| {
        Ok(tx.update_profile(
            id,
            &Profile {
                email: &e,
                username: Some("DOS"),
                name: None,
                lang: Lang::En,
            },
        )?)
    })?;
    assert_eq!(taken, UpdateProfile::UsernameTaken);
    let ok = s.write(|tx| {
        Ok(tx.update_profile(
            id,
            &Profile {
                email: &e,
                username: Some("UNO"),
                name: Some("Acme SAS"),
                lang: Lang::En,
            },
        )?)
    })?;
    assert_eq!(
        ok,
        UpdateProfile::Updated,
        "its own username, recased, is fine"
    );
    s.write(|tx| Ok(tx.set_disabled(id, Some((50, Some("ticket 7"))))?))?;
    let a = s.read(|tx| Ok(tx.account(id)?))?.unwrap();
    assert_eq!(a.email.as_str(), "nueva@example.co");
    assert_eq!(a.username.as_deref(), Some("UNO"));
    assert_eq!(a.lang, Lang::En);
    let d = a.disabled.unwrap();
    assert_eq!((d.at, d.reason.as_deref()), (50, Some("ticket 7")));
    s.write(|tx| Ok(tx.set_disabled(id, None)?))?;
    assert!(
        s.read(|tx| Ok(tx.account(id)?))?
            .unwrap()
            .disabled
            .is_none()
    );
    Ok(())
}

fn a_new_code_kills_the_old_one(s: &mut Store) -> R {
    let id = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let c1 = code(s, id, "h1", 100, 200);
    let c2 = code(s, id, "h2", 150, 250);
    let live = s.read(|tx| Ok(tx.live_code(id, 160)?))?.unwrap();
    assert_eq!(live.id, c2);
    let old = s.read(|tx| Ok(tx.code(c1)?))?.unwrap();
    assert_eq!((old.state, old.ends_at), (CodeState::Replaced, 150));
    // At its expiry the live code is no longer live, purge or not.
    assert!(s.read(|tx| Ok(tx.live_code(id, 250)?))?.is_none());
    // Killing codes ends the live one.
    assert_eq!(s.write(|tx| Ok(tx.kill_codes(id, 170)?))?, 1);
    assert!(s.read(|tx| Ok(tx.live_code(id, 171)?))?.is_none());
    assert_eq!(s.write(|tx| Ok(tx.kill_codes(id, 172)?))?, 0);
    Ok(())
}

fn code_attempts_end_and_rekey(s: &mut Store) -> R {
    let id = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let c = code(s, id, "h1", 100, 1000);
    for _ in 0..3 {
        assert!(s.write(|tx| Ok(tx.count_code_attempt(c)?))?);
    }
    s.write(|tx| Ok(tx.refund_code_attempt(c)?))?;
    assert_eq!(s.read(|tx| Ok(tx.code(c)?))?.unwrap().attempts, 2);
    assert!(s.write(|tx| Ok(tx.rekey_code(c, "h2", 200)?))?);
    assert_eq!(
        s.read(|tx| Ok(tx.live_code(id, 200)?))?
            .unwrap()
            .hash
            .as_deref(),
        Some("h2")
    );
    // Used only while unexpired, and only once.
    assert!(!s.write(|tx| Ok(tx.end_code(c, CodeState::Used, 1000)?))?);
    assert!(s.write(|tx| Ok(tx.end_code(c, CodeState::Used, 300)?))?);
    assert!(!s.write(|tx| Ok(tx.end_code(c, CodeState::Used, 301)?))?);
    assert!(!s.write(|tx| Ok(tx.count_code_attempt(c)?))?, "not pending");
    assert!(!s.write(|tx| Ok(tx.rekey_code(c, "h3", 302)?))?);
    let used = s.read(|tx| Ok(tx.code(c)?))?.unwrap();
    assert_eq!((used.state, used.ends_at), (CodeState::Used, 300));
    let mut states = Vec::new();
    s.read(|tx| {
        tx.for_each_code(&mut |r| {
            states.push((r.kind, r.nit.as_str().to_string(), r.code.state));
            Ok(())
        })?;
        Ok(())
    })?;
    assert_eq!(
        states,
        vec![(
            AccountType::Cliente,
            "900102030".to_string(),
            CodeState::Used
        )]
    );
    Ok(())
}

fn purge_walks_codes_in_id_order(s: &mut Store) -> R {
    let ids: Vec<i64> = (0..12)
        .map(|i| {
            let n = format!("9001020{i:02}");
            add(s, AccountType::Cliente, &n, "a@example.co", None)
        })
        .collect();
    // Twelve codes of twelve accounts, finished (expired by 1000) and live
    // ones in turn, as when many accounts' codes share the table's pages.
    let mut finished = Vec::new();
    let mut live = Vec::new();
    for i in 0..12_i64 {
        let ends = if i % 2 == 0 { 100 + i } else { 5000 };
        let id = code(s, ids[i as usize], "h", i, ends);
        if i % 2 == 0 {
            finished.push(id);
        } else {
            live.push(id);
        }
    }
    let e = email("a@example.co");
    let notice = s.write(|tx| {
        Ok(tx.enqueue_notice(&NewNotice {
            account_id: ids[0],
            kind: MailKind::PasswordChanged,
            recipient: &e,
            detail: None,
            now: 5,
            claim: None,
        })?)
    })?;
    s.write(|tx| Ok(tx.mail_dropped(notice, "x", 50)?))?;
    let total = s.read(|tx| Ok(tx.purge_counts(1000)?))?;
    assert_eq!((total.codes, total.mails), (6, 7));
    // The ids are consecutive here (the notice took the next one).
    assert_eq!(live[5] - finished[0], 11);
    // From the start: no code in the first window, on to the first code.
    let b = s.write(|tx| Ok(tx.purge_batch(1000, i64::MIN, 4, 10)?))?;
    assert_eq!((b.codes, b.notices, b.next), (0, 1, Some(finished[0] - 1)));
    // A window of four ids holds two finished codes.
    let b = s.write(|tx| Ok(tx.purge_batch(1000, finished[0] - 1, 4, 10)?))?;
    assert_eq!((b.codes, b.notices, b.next), (2, 0, Some(live[1])));
    // At its limit a step stops after the last code it deleted.
    let b = s.write(|tx| Ok(tx.purge_batch(1000, live[1], 100, 3)?))?;
    assert_eq!((b.codes, b.next), (3, Some(finished[4])));
    // At its limit on the last finished code: one more step sees the end.
    let b = s.write(|tx| Ok(tx.purge_batch(1000, finished[4], 100, 1)?))?;
    assert_eq!((b.codes, b.next), (1, Some(finished[5])));
    let b = s.write(|tx| Ok(tx.purge_batch(1000, finished[5], 100, 1)?))?;
    assert_eq!((b.codes, b.notices, b.next), (0, 0, None));
    let left = s.read(|tx| Ok(tx.purge_counts(1000)?))?;
    assert_eq!((left.codes, left.mails), (0, 0));
    s.read(|tx| {
        for id in &finished {
            assert!(tx.code(*id)?.is_none(), "finished code {id} purged");
        }
        // Live codes are never purged.
        for id in &live {
            assert!(tx.code(*id)?.is_some(), "live code {id} kept");
        }
        Ok(())
    })?;
    // Past the last id nothing is looked at.
    let b = s.write(|tx| Ok(tx.purge_batch(6000, i64::MAX, 100, 100)?))?;
    assert_eq!((b.codes, b.next), (0, None));
    Ok(())
}

fn mail_ids_are_shared_and_claims_exclusive(s: &mut Store) -> R {
    let id = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let c = code(s, id, "h", 10, 1000);
    let e = email("a@example.co");
    let n = s.write(|tx| {
        Ok(tx.enqueue_notice(&NewNotice {
            account_id: id,
            kind: MailKind::EmailChangedOld,
            recipient: &e,
            detail: Some("n****@x.co"),
            now: 11,
            claim: None,
        })?)
    })?;
    assert_ne!(c, n, "one id space for codes and notices");
    assert_eq!(s.read(|tx| Ok(tx.queued_mail_ids()?))?, vec![c, n]);
    let m = s.read(|tx| Ok(tx.mail(n)?))?.unwrap();
    assert_eq!(
        (m.kind, m.detail.as_deref()),
        (MailKind::EmailChangedOld, Some("n****@x.co"))
    );
    assert_eq!(s.read(|tx| Ok(tx.mail(c)?))?.unwrap().code_id, Some(c));
    for id in [c, n] {
        let a = Claim {
            token: "a".into(),
            until: 20,
        };
        let b = Claim {
            token: "b".into(),
            until: 40,
        };
        assert!(s.write(|tx| Ok(tx.claim_mail(id, &a, 10)?))?);
        assert!(!s.write(|tx| Ok(tx.claim_mail(id, &b, 15)?))?, "held");
        assert!(!s.write(|tx| Ok(tx.mail_sent(id, "b", 15)?))?, "not b's");
        assert!(s.write(|tx| Ok(tx.claim_mail(id, &b, 20)?))?, "lapsed");
        assert!(!s.write(|tx| Ok(tx.renew_claim(id, &a)?))?);
        assert!(
            s.write(|tx| Ok(tx.renew_claim(id, &b)?))?,
            "the holder renews"
        );
        assert!(s.write(|tx| Ok(tx.mail_failed(id, "b", "boom")?))?);
        assert!(
            s.write(|tx| Ok(tx.claim_mail(id, &a, 21)?))?,
            "free after a failure"
        );
        assert!(s.write(|tx| Ok(tx.mail_sent(id, "a", 22)?))?);
        let m = s.read(|tx| Ok(tx.mail(id)?))?.unwrap();
        assert_eq!(m.mail.state, MailState::Sent);
        assert_eq!(m.mail.attempts, 2);
        assert_eq!(m.mail.last_error, None);
        assert_eq!(m.mail.finished_at, Some(22));
        assert!(
            !s.write(|tx| Ok(tx.claim_mail(id, &b, 100)?))?,
            "sent is final"
        );
    }
    assert!(s.read(|tx| Ok(tx.queued_mail_ids()?))?.is_empty());
    Ok(())
}

fn mail_lists_newest_first_across_tables(s: &mut Store) -> R {
    let id = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let e = email("a@example.co");
    let mut expected = Vec::new();
    for i in 0..5 {
        if i % 2 == 0 {
            expected.push(code(s, id, "h", i, i + 100));
        } else {
            expected.push(s.write(|tx| {
                Ok(tx.enqueue_notice(&NewNotice {
                    account_id: id,
                    kind: MailKind::PasswordChanged,
                    recipient: &e,
                    detail: None,
                    now: i,
                    claim: None,
                })?)
            })?);
        }
    }
    expected.reverse();
    let mut seen = Vec::new();
    s.read(|tx| {
        tx.for_each_mail(&mut |m| {
            seen.push((m.id, m.kind));
            Ok(())
        })?;
        Ok(())
    })?;
    assert_eq!(seen.iter().map(|x| x.0).collect::<Vec<_>>(), expected);
    assert_eq!(seen[0].1, MailKind::ResetCode);
    assert_eq!(seen[1].1, MailKind::PasswordChanged);
    Ok(())
}

fn audit_filters(s: &mut Store) -> R {
    let a = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let b = add(s, AccountType::Cliente, "800003122", "b@example.co", None);
    let rows = [
        (100, "ana", Some(a), "login", "ok"),
        (200, "ana", Some(b), "login", "refused"),
        (300, "luis", Some(a), "reset.request", "ok"),
        (400, "luis", Some(a), "reset.confirm", "ok"),
        (500, "ana", None, "codes.purge", "ok"),
        (600, "ana", Some(a), "resetx", "ok"),
    ];
    s.write(|tx| {
        for (at, agent, acc, event, outcome) in rows {
            tx.audit(&AuditEntry::new(agent, event, outcome).account(acc), at)?;
        }
        Ok(())
    })?;
    let ats = |s: &mut Store, f: AuditFilter| -> Vec<i64> {
        let mut v = Vec::new();
        s.read(|tx| {
            tx.for_each_audit(&f, &mut |r| {
                v.push(r.at);
                Ok(())
            })?;
            Ok(())
        })
        .unwrap();
        v
    };
    assert_eq!(
        ats(s, AuditFilter::default()),
        vec![600, 500, 400, 300, 200, 100]
    );
    let of_a = AuditFilter {
        account_id: Some(a),
        ..Default::default()
    };
    assert_eq!(ats(s, of_a.clone()), vec![600, 400, 300, 100]);
    assert_eq!(
        ats(
            s,
            AuditFilter {
                limit: Some(2),
                ..of_a
            }
        ),
        vec![600, 400],
        "the limit applies after the filter"
    );
    assert_eq!(
        ats(
            s,
            AuditFilter {
                since: Some(200),
                until: Some(400),
                ..Default::default()
            }
        ),
        vec![300, 200]
    );
    assert_eq!(
        ats(
            s,
            AuditFilter {
                event: Some("reset".into()),
                ..Default::default()
            }
        ),
        vec![400, 300],
        "a group is a prefix up to a dot"
    );
    assert_eq!(
        ats(
            s,
            AuditFilter {
                event: Some("login".into()),
                agent: Some("ana".into()),
                ..Default::default()
            }
        ),
        vec![200, 100]
    );
    Ok(())
}

fn delete_leaves_a_pseudonym(s: &mut Store) -> R {
    let a = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let keep = add(s, AccountType::Cliente, "800003122", "b@example.co", None);
    code(s, a, "h", 10, 1000);
    code(s, a, "h2", 11, 1000);
    code(s, keep, "h3", 12, 1000);
    let e = email("vieja@example.co");
    s.write(|tx| {
        tx.enqueue_notice(&NewNotice {
            account_id: a,
            kind: MailKind::PasswordChanged,
            recipient: &e,
            detail: None,
            now: 1,
            claim: None,
        })?;
        tx.audit(
            &AuditEntry::new("ag", "user.add", "ok")
                .account(Some(a))
                .subject("900102030"),
            1,
        )?;
        tx.audit(
            &AuditEntry::new("ag", "user.edit", "ok")
                .account(Some(a))
                .subject("900102030")
                .detail("email: a@example.co -> z@example.co"),
            2,
        )?;
        tx.audit(
            &AuditEntry::new("ag", "login", "refused")
                .account(Some(a))
                .subject("900102030")
                .detail("wrong_password"),
            3,
        )?;
        tx.audit(
            &AuditEntry::new("ag", "login", "ok")
                .account(Some(keep))
                .subject("800003122"),
            4,
        )?;
        Ok(())
    })?;
    let (n, mailed) = s.write(|tx| {
        let n = tx.pseudonymize_audit(a, "borrado-1")?;
        let mailed = tx.delete_account(a)?;
        Ok((n, mailed))
    })?;
    assert_eq!(n, 3);
    // Where its codes and notices went, each address once: the other
    // account's code (to the same address) is not what says so.
    assert_eq!(mailed, ["ana@example.co", "vieja@example.co"]);
    let mut rows = Vec::new();
    s.read(|tx| {
        assert!(tx.account(a)?.is_none());
        tx.for_each_audit(&AuditFilter::default(), &mut |r| {
            rows.push(r);
            Ok(())
        })?;
        Ok(())
    })?;
    for r in rows.iter().filter(|r| r.account_id == Some(a)) {
        assert_eq!(r.subject.as_deref(), Some("borrado-1"));
        let d = r.detail.clone().unwrap_or_default();
        assert!(!d.contains("example.co"), "{d}");
    }
    let wrong = rows.iter().find(|r| r.at == 3).unwrap();
    assert_eq!(wrong.detail.as_deref(), Some("wrong_password"), "tags stay");
    assert_eq!(
        rows.iter().find(|r| r.at == 4).unwrap().subject.as_deref(),
        Some("800003122")
    );
    // Left: the other account, its code and that code's message.
    let c = s.read(|tx| Ok(tx.row_counts()?))?;
    assert_eq!((c.accounts, c.codes, c.mail), (1, 1, 1));
    Ok(())
}

fn rollback_when_dropped(s: &mut Store) -> R {
    let id = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let r: crate::error::Result<()> = s.write(|tx| {
        tx.set_login_state(
            id,
            &LoginState {
                failures: 3,
                locked_until: None,
            },
        )?;
        Err(crate::error::Error::Refused("stop".into()))
    });
    assert!(r.is_err());
    assert_eq!(s.read(|tx| Ok(tx.account(id)?))?.unwrap().login.failures, 0);
    {
        let mut tx = s.storage().begin(Mode::Write)?;
        tx.set_login_state(
            id,
            &LoginState {
                failures: 4,
                locked_until: None,
            },
        )?;
        // Dropped without commit.
    }
    assert_eq!(s.read(|tx| Ok(tx.account(id)?))?.unwrap().login.failures, 0);
    Ok(())
}

/// Fills a store with a bit of everything.
fn fill(s: &mut Store) {
    let a = add(s, AccountType::Cliente, "900102030", "a@example.co", None);
    let p = add(
        s,
        AccountType::Proveedor,
        "800003122",
        "p@example.co",
        Some("acme"),
    );
    code(s, a, "h1", 10, 100);
    code(s, a, "h2\\with\nodd", 20, 10_000);
    let e = email("a@example.co");
    s.write(|tx| {
        tx.enqueue_notice(&NewNotice {
            account_id: p,
            kind: MailKind::ChannelSuspended,
            recipient: &e,
            detail: None,
            now: 30,
            claim: None,
        })?;
        tx.set_disabled(p, Some((40, Some("línea 1\nlínea 2"))))?;
        tx.set_request_log(a, &RequestLog::parse("10 20"))?;
        tx.audit(
            &AuditEntry::new("ag", "user.add", "ok")
                .account(Some(a))
                .subject("900102030"),
            1,
        )?;
        tx.audit(
            &AuditEntry::new("ag", "codes.purge", "ok").detail("codes=0"),
            2,
        )?;
        Ok(())
    })
    .unwrap();
}

fn records(s: &mut Store) -> Vec<String> {
    let mut v = Vec::new();
    s.read(|tx| {
        tx.dump(&mut |r| {
            v.push(format!("{r:?}"));
            Ok(())
        })?;
        Ok(())
    })
    .unwrap();
    v
}

fn counts_and_copy_between_engines(s: &mut Store) -> R {
    fill(s);
    let c = s.read(|tx| Ok(tx.counts(50)?))?;
    assert_eq!(
        c,
        Counts {
            accounts: 2,
            codes_pending: 1,
            mail_queued: 3,
            audit: 2
        }
    );
    // Into a store of each engine, and back: every row the same.
    let mut targets = vec![sqlite_store()];
    targets.extend(pg_store());
    for mut t in targets {
        let rows = crate::ops::db::copy(s, &mut t, |_, _| {})?;
        assert_eq!(rows, s.read(|tx| Ok(tx.row_counts()?))?);
        assert_eq!(records(&mut t), records(s));
        // New ids continue after the copied ones.
        let id = add(
            &mut t,
            AccountType::Cliente,
            "899999034",
            "z@example.co",
            None,
        );
        assert!(id > 2);
        let next = code(&mut t, id, "h", 60, 70);
        assert!(next > 3);
        // A second copy into a non-empty target is refused and changes nothing.
        let before = records(&mut t);
        assert!(crate::ops::db::copy(s, &mut t, |_, _| {}).is_err());
        assert_eq!(records(&mut t), before);
    }
    Ok(())
}

fn schema_is_at_the_latest_version(s: &mut Store) -> R {
    let v = s.schema_version()?;
    let latest = match s.engine() {
        Engine::Sqlite => crate::store::sqlite::migrations::latest(),
        Engine::Postgres => crate::store::postgres::migrations::latest(),
    };
    assert_eq!(v, latest);
    assert_eq!(
        crate::store::sqlite::migrations::latest(),
        crate::store::postgres::migrations::latest()
    );
    Ok(())
}

/// Rows written at schema 3 for the upgrade tests of both engines: an
/// account whose live code (10, two attempts spent) is pending and whose
/// older code (9) was replaced.
pub(crate) const UPGRADE_3_ROWS: &str = "
    INSERT INTO accounts (id, kind, nit, email, created_at, live_code_id)
        VALUES (1, 'cliente', '900102030', 'a@example.co', 1750000000, 10);
    INSERT INTO codes (id, account_id, code_hash, created_at, expires_at, ends_at, attempts,
                       state, recipient, mail_state)
        VALUES (9, 1, 'old', 1749990000, 1749990900, 1749990500, 0, 'replaced',
                'a@example.co', 'sent'),
               (10, 1, 'live-hash', 1749999940, 1750000840, 1750000840, 2, 'pending',
                'a@example.co', 'queued');
    INSERT INTO audit (id, at, agent, account_id, subject, event, outcome)
        VALUES (1, 1749000000, 'ana', 2, 'borrado-2', 'user.add', 'ok'),
               (2, 1749000001, 'ana', 2, 'borrado-2', 'user.delete', 'ok'),
               (3, 1750000000, 'ana', 1, '900102030', 'user.add', 'ok');
";

/// After an upgrade from `UPGRADE_3_ROWS`: the pending code is still live
/// with its hash and attempts, its message still queued, and a purge takes
/// the replaced code only (schema 4); a deleted account's audit rows keep
/// no account id, so that a new account given id 2 does not inherit them,
/// and are found by the pseudonym (schema 5).
pub(crate) fn after_upgrade_to_4(s: &mut Store) {
    let now = 1_750_000_000;
    s.read(|tx| {
        let ids = |tx: &mut dyn Txn, f: AuditFilter| -> Result<Vec<i64>> {
            let mut v = Vec::new();
            tx.for_each_audit(&f, &mut |r| {
                v.push(r.id);
                Ok(())
            })?;
            Ok(v)
        };
        let by = |account_id| AuditFilter {
            account_id: Some(account_id),
            ..AuditFilter::default()
        };
        assert_eq!(ids(tx, by(2))?, Vec::<i64>::new());
        assert_eq!(ids(tx, by(1))?, vec![3]);
        let named = AuditFilter {
            subject: Some("borrado-2".into()),
            ..AuditFilter::default()
        };
        assert_eq!(ids(tx, named)?, vec![2, 1]);
        Ok(())
    })
    .unwrap();
    s.read(|tx| {
        let live = tx
            .live_code(1, now)?
            .expect("the pending code is still live");
        assert_eq!((live.id, live.attempts), (10, 2));
        assert_eq!(live.hash.as_deref(), Some("live-hash"));
        assert_eq!(tx.queued_mail_ids()?, vec![10]);
        Ok(())
    })
    .unwrap();
    // Over a gap in the ids (a window of 4 from 0), then the two codes.
    let b = s.write(|tx| Ok(tx.purge_batch(now, 0, 4, 100)?)).unwrap();
    assert_eq!((b.codes, b.next), (0, Some(8)));
    let b = s.write(|tx| Ok(tx.purge_batch(now, 8, 4, 100)?)).unwrap();
    assert_eq!((b.codes, b.next), (1, None));
    s.read(|tx| {
        assert!(tx.code(9)?.is_none());
        assert!(tx.live_code(1, now)?.is_some());
        Ok(())
    })
    .unwrap();
}
