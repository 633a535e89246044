//! Password recovery: `request` (manual steps 01–04) and `confirm` (05–06).
//!
//! Invariants:
//! - `request` has one outcome for the outside world whether the account
//!   exists, the email or type is wrong, the account is disabled, the
//!   channel suspended, the request throttled or delivery failed; it always
//!   costs one argon2 hash (the new code's), hit or miss, and never answers
//!   before `request_min` (100 ms by default), which covers the extra work
//!   of a hit.
//! - `confirm` gives one refusal for a wrong, expired, used or dead code, an
//!   identifier that does not match, a disabled account or a suspended
//!   channel; every refusal costs one argon2 evaluation (the code's check,
//!   or the same work burnt on a miss), and runs the statements of a wrong
//!   code against a live one (a miss against `NO_ROW`). The new password's
//!   hash starts on another thread, in memory of its own, as soon as the
//!   typed-only checks pass, for every confirmation alike, when a CPU is
//!   free (on a busy machine it is made after the code's check); it is
//!   used only once the code verified and the account's policy accepted
//!   the password, and otherwise stopped when the code's check ends (its
//!   work thrown away, never counted). A success waits about one hash's
//!   time, not two; a refusal answers once its own hash is done (sharing
//!   the memory bus meanwhile: BENCHMARKS.md, item 21).
//! - Only a confirmation against a live code counts, on the code (5 tries)
//!   and on the account (20 in a row suspend the channel for 24 h and mail
//!   the owner): an account with no live code has nothing to guess, and a
//!   NIT alone must never be enough to switch someone's recovery off.
//! - Checks on the new password that need only what was typed run before
//!   the code is touched; checks that need the account run only after the
//!   code verified, and a refusal then neither spends the code nor counts.
//! - A successful confirm, in one transaction: the code is used, the
//!   account's other codes die, the failure counters and any suspension
//!   clear, the "password changed" notice is queued.

use super::{NO_ROW, find_accounts};
use crate::app::App;
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::code;
use crate::domain::email::Email;
use crate::domain::limits::{ChannelState, ConfirmGate, LoginState};
use crate::domain::password::{Password, PolicyError};
use crate::error::Result;
use crate::mail::queue::{self, new_claim};
use crate::store::{AuditEntry, CodeState, LiveCode, MailKind, NewCode, NewNotice};
use zeroize::Zeroizing;

/// What really happened (for the audit log and tests). Never shown: the
/// printed answer is the same for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// A code was issued and its message handed to delivery (which may
    /// still fail; the message then stays queued).
    Sent,
    /// A code was issued; its message could not be built and stays queued.
    Queued,
    UnknownAccount,
    WrongEmail,
    Throttled,
    Suspended,
    Disabled,
    Ambiguous,
}

impl RequestResult {
    pub fn detail(self) -> &'static str {
        match self {
            RequestResult::Sent => "sent",
            RequestResult::Queued => "issued",
            RequestResult::UnknownAccount => "unknown_account",
            RequestResult::WrongEmail => "wrong_email",
            RequestResult::Throttled => "throttled",
            RequestResult::Suspended => "channel_suspended",
            RequestResult::Disabled => "disabled",
            RequestResult::Ambiguous => "ambiguous",
        }
    }
}

pub struct RequestOutcome {
    /// The typed email, masked: what the answer shows.
    pub masked_email: String,
    pub result: RequestResult,
}

/// Issues a code and mails it, if the account, email and limits allow.
pub fn request(
    app: &mut App,
    kind: AccountType,
    ident: &Ident,
    email: &Email,
) -> Result<RequestOutcome> {
    let started = std::time::Instant::now();
    // The code and its hash are made first, always: a miss costs what a hit
    // costs.
    let code = Zeroizing::new(code::generate(&mut rand::rng()));
    let hash = app.hasher.hash(code.as_bytes())?;
    let now = app.now();
    let expires_at = now + app.code_ttl_secs;
    let limits = app.limits;
    let agent = app.agent.name().to_string();
    let claim = new_claim(now);

    let (result, issued) = app.store.write(|tx| {
        let mut found = find_accounts(tx, Some(kind), ident)?;
        let (result, acc) = if found.len() > 1 {
            (RequestResult::Ambiguous, None)
        } else if let Some(acc) = found.pop() {
            let r = if !acc.email.matches(email) {
                RequestResult::WrongEmail
            } else if acc.is_disabled() {
                RequestResult::Disabled
            } else if acc.channel.suspended(now) {
                RequestResult::Suspended
            } else if !limits.request_allowed(&acc.request_log, now) {
                RequestResult::Throttled
            } else {
                RequestResult::Queued
            };
            (r, Some(acc))
        } else {
            (RequestResult::UnknownAccount, None)
        };
        let account_id = acc.as_ref().map(|a| a.id);
        let subject = ident.audit_label(acc.as_ref());
        let issued = match (result, acc) {
            (RequestResult::Queued, Some(acc)) => {
                // The stored address, never the typed one.
                let code_id = tx.insert_code(&NewCode {
                    account_id: acc.id,
                    hash: Some(&hash),
                    now,
                    expires_at,
                    recipient: &acc.email,
                    claim: Some(&claim),
                })?;
                tx.set_request_log(acc.id, &limits.record_request(&acc.request_log, now))?;
                Some((acc, code_id))
            }
            _ => None,
        };
        tx.audit(
            &AuditEntry::new(
                &agent,
                "reset.request",
                if issued.is_some() { "ok" } else { "refused" },
            )
            .account(account_id)
            .subject(subject)
            .detail(result.detail()),
            now,
        )?;
        Ok((result, issued))
    })?;

    let mut result = result;
    if let Some((acc, code_id)) = issued {
        let msg = app.mailer.reset_message(&crate::mail::ResetMail {
            to: &acc.email,
            lang: acc.lang,
            nit: &acc.nit,
            code: &code,
            requested_at: now,
            expires_at,
            now,
        });
        // Delivery problems never change the answer; the message stays
        // queued for `mail retry`.
        if let Ok(msg) = msg {
            queue::dispatch(app, code_id, &claim, &msg);
            result = RequestResult::Sent;
        }
    }
    // A hit does more than a miss (rows, the message, its delivery): the
    // answer waits until the floor so its timing says nothing either.
    if let Some(rest) = app.request_min.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    Ok(RequestOutcome {
        masked_email: email.masked(),
        result,
    })
}

#[derive(Debug)]
pub enum ConfirmOutcome {
    Updated(Box<Account>),
    /// The one refusal (wrong/expired/used/dead code, no match, disabled,
    /// suspended).
    Refused,
    /// The code was right but the account's data refuses the password; the
    /// code is still usable.
    Policy(PolicyError),
}

/// What a verified code leads to.
enum Verdict {
    /// The code was wrong, or there was none to check.
    Refuse,
    /// The code was right; the account's data refuses the password.
    Policy(PolicyError),
    /// The code was right and the password accepted: its new hash.
    Accept(String),
}

struct Plan {
    /// The account with the live code the confirmation is checked against.
    target: Option<(Account, LiveCode)>,
    /// An account named but without a live code (for the audit only).
    named: Option<Account>,
    gate: Option<ConfirmGate>,
    ambiguous: bool,
}

impl Plan {
    /// Why a refused confirmation was refused (the audit's detail): a
    /// target's code was wrong unless its gate refused first.
    fn refusal(&self) -> &'static str {
        match (&self.target, self.gate) {
            (None, _) if self.ambiguous => "ambiguous",
            (None, _) if self.named.as_ref().is_some_and(Account::is_disabled) => "disabled",
            (None, _) if self.named.is_some() => "no_code",
            (None, _) => "no_match",
            (Some(_), Some(ConfirmGate::Suspended)) => "channel_suspended",
            (Some(_), Some(ConfirmGate::CodeDead)) => "code_dead",
            (Some(_), _) => "wrong_code",
        }
    }
}

/// Sets a new password with a code.
pub fn confirm(
    app: &mut App,
    kind: Option<AccountType>,
    ident: &Ident,
    raw_ident: &str,
    code_typed: &str,
    password: &Password,
) -> Result<ConfirmOutcome> {
    // A code that cannot be one, or a password the typed-only policy
    // refuses: refused before the code is touched (no account is looked
    // up), and audited as an attempt like every other.
    let early = |app: &mut App, detail: String| -> Result<()> {
        let (now, agent) = (app.now(), app.agent.name().to_string());
        app.store.write(|tx| {
            tx.audit(
                &AuditEntry::new(&agent, "reset.confirm", "refused")
                    .subject(ident.audit_label(None))
                    .detail(detail.clone()),
                now,
            )?;
            Ok(())
        })
    };
    if let Err(e) = code::check_form(code_typed) {
        early(app, "code_form".into())?;
        return Err(e.into());
    }
    let typed = match app.policy.check_typed(password, Some(raw_ident)) {
        Ok(typed) => typed,
        Err(pe) => {
            early(app, format!("policy:{}", policy_tag(&pe)))?;
            return Err(pe.into());
        }
    };

    // The new password's hash, made beside the code's check for every
    // confirmation alike (uniform; when a CPU is free), used only after a
    // success.
    let ahead = app.hasher.hash_ahead(password.as_bytes());

    let now = app.now();
    let limits = app.limits;
    let agent = app.agent.name().to_string();
    let claim = new_claim(now);

    // 1. Find the account with a live code and count the attempt.
    let plan = app.store.write(|tx| {
        let candidates = find_accounts(tx, kind, ident)?;
        if candidates.is_empty() {
            // The look-up a known account gets, against no row (NO_ROW).
            tx.live_code(NO_ROW, now)?;
        }
        let mut live = Vec::new();
        for acc in &candidates {
            if acc.is_disabled() {
                continue;
            }
            if let Some(c) = tx.live_code(acc.id, now)? {
                live.push((acc.clone(), c));
            }
        }
        // Several accounts with a live code (a cliente and a proveedor with
        // the same NIT, or proveedores sharing an email) name no one
        // account: refused like no match, nothing counted (no guess was
        // checked), and the refusal's hint depends only on what was typed.
        let target = if live.len() == 1 { live.pop() } else { None };
        let ambiguous = !live.is_empty();
        let named = match (&target, candidates.len()) {
            (None, 1) => candidates.into_iter().next(),
            _ => None,
        };
        let gate = match &target {
            Some((acc, code)) => {
                let g = limits.confirm_gate(acc.channel, code.attempts, now);
                if let ConfirmGate::Verify { counted } = &g {
                    tx.set_channel_state(acc.id, counted)?;
                    tx.count_code_attempt(code.id)?;
                } else {
                    count_nothing(tx)?;
                }
                Some(g)
            }
            None => {
                count_nothing(tx)?;
                None
            }
        };
        Ok(Plan {
            target,
            named,
            gate,
            ambiguous,
        })
    })?;

    // 2. Check the code: one argon2 evaluation, hit or miss (a miss burns
    // the same work).
    let hasher = &app.hasher;
    let verified = match (&plan.target, plan.gate) {
        (Some((_, c)), Some(ConfirmGate::Verify { .. })) => match &c.hash {
            Some(h) => hasher.verify(code_typed.as_bytes(), h),
            None => {
                hasher.burn(code_typed.as_bytes());
                false
            }
        },
        _ => {
            hasher.burn(code_typed.as_bytes());
            false
        }
    };

    // 3. Only once the code is known right: the account-dependent policy,
    // then the new password's hash, waited for. Otherwise it is stopped
    // now: a refusal (every guess) counts one evaluation, the same for
    // every kind of miss.
    let verdict = match (&plan.target, verified) {
        (Some((acc, _)), true) => match app.policy.check_account(&typed, &acc.policy_words()) {
            Err(pe) => {
                drop(ahead);
                Verdict::Policy(pe)
            }
            Ok(()) => Verdict::Accept(ahead.take()?),
        },
        _ => {
            drop(ahead);
            Verdict::Refuse
        }
    };

    let outcome = app.store.write(|tx| {
        let named = plan.target.as_ref().map(|(a, _)| a).or(plan.named.as_ref());
        let account_id = named.map(|a| a.id);
        let subject = ident.audit_label(named);
        let entry = |outcome, detail: String| {
            AuditEntry::new(&agent, "reset.confirm", outcome)
                .account(account_id)
                .subject(subject.clone())
                .detail(detail)
        };
        match (&plan.target, &verdict) {
            (Some((acc, c)), Verdict::Policy(pe)) => {
                // The password is refused, not the code: the attempt is
                // given back on the code and the account.
                tx.refund_code_attempt(c.id)?;
                if let Some(cur) = tx.account(acc.id)? {
                    let back = ChannelState {
                        failures: (cur.channel.failures - 1).max(0),
                        ..cur.channel
                    };
                    tx.set_channel_state(acc.id, &back)?;
                }
                tx.audit(&entry("refused", format!("policy:{}", policy_tag(pe))), now)?;
                Ok((ConfirmOutcome::Policy(pe.clone()), None))
            }
            (Some((acc, c)), Verdict::Accept(new_hash)) => {
                if !tx.end_code(c.id, CodeState::Used, now)? {
                    tx.audit(&entry("refused", "code_spent_meanwhile".into()), now)?;
                    return Ok((ConfirmOutcome::Refused, None));
                }
                tx.kill_codes(acc.id, now)?;
                tx.set_password(acc.id, new_hash, now)?;
                tx.set_channel_state(acc.id, &ChannelState::default())?;
                tx.set_login_state(acc.id, &LoginState::default())?;
                let mail_id = tx.enqueue_notice(&NewNotice {
                    account_id: acc.id,
                    kind: MailKind::PasswordChanged,
                    recipient: &acc.email,
                    detail: None,
                    now,
                    claim: Some(&claim),
                })?;
                tx.audit(&entry("ok", "password_changed".into()), now)?;
                Ok((
                    ConfirmOutcome::Updated(Box::new(acc.clone())),
                    Some(mail_id),
                ))
            }
            (target, _) => {
                let mut notice = None;
                if let (Some((acc, c)), Some(ConfirmGate::Verify { .. })) = (target, plan.gate) {
                    // A wrong code against a live one: it counted at the
                    // gate; now the code may die and the channel suspend.
                    if let Some(cur) = tx.code(c.id)?
                        && limits.code_exhausted(cur.attempts)
                    {
                        tx.end_code(c.id, CodeState::Exhausted, now)?;
                    }
                    if let Some(cur) = tx.account(acc.id)? {
                        let (next, suspended) = limits.confirm_failed(cur.channel, now);
                        if suspended {
                            tx.set_channel_state(acc.id, &next)?;
                            tx.kill_codes(acc.id, now)?;
                            notice = Some(tx.enqueue_notice(&NewNotice {
                                account_id: acc.id,
                                kind: MailKind::ChannelSuspended,
                                recipient: &acc.email,
                                detail: None,
                                now,
                                claim: Some(&claim),
                            })?);
                            tx.audit(
                                &AuditEntry::new(&agent, "recovery.suspend", "ok")
                                    .account(Some(acc.id))
                                    .subject(acc.nit.as_str())
                                    .detail(format!("until={}", now + limits.suspension_secs)),
                                now,
                            )?;
                        }
                    }
                }
                if !matches!(plan.gate, Some(ConfirmGate::Verify { .. })) {
                    // The two reads of a wrong code against a live one.
                    tx.code(NO_ROW)?;
                    tx.account(NO_ROW)?;
                }
                tx.audit(&entry("refused", plan.refusal().to_string()), now)?;
                Ok((ConfirmOutcome::Refused, notice))
            }
        }
    })?;

    let (outcome, mail_id) = outcome;
    if let Some(mail_id) = mail_id {
        let built = match (&outcome, &plan.target) {
            (ConfirmOutcome::Updated(acc), _) => {
                app.mailer.changed_message(&crate::mail::ChangedMail {
                    to: &acc.email,
                    lang: acc.lang,
                    kind: acc.kind,
                    nit: &acc.nit,
                    changed_at: now,
                })
            }
            // A refusal queues a notice only when it suspended the channel.
            (ConfirmOutcome::Refused, Some((acc, _))) => {
                app.mailer.suspended_message(&crate::mail::SuspendedMail {
                    to: &acc.email,
                    lang: acc.lang,
                    kind: acc.kind,
                    nit: &acc.nit,
                    at: now,
                    until: now + limits.suspension_secs,
                })
            }
            _ => Err(crate::internal!("no message for mail {mail_id}")),
        };
        // A notice that fails stays queued; the outcome is what it is.
        if let Ok(msg) = built {
            queue::dispatch(app, mail_id, &claim, &msg);
        }
    }
    Ok(outcome)
}

/// The two writes of an attempt counted against a live code, changing no
/// row: for a confirmation that counts nothing (no live code, a dead code,
/// a suspended channel), so that it runs the same statements.
fn count_nothing(tx: &mut dyn crate::store::Txn) -> Result<()> {
    tx.set_channel_state(NO_ROW, &ChannelState::default())?;
    tx.count_code_attempt(NO_ROW)?;
    Ok(())
}

/// The audit tag of a policy refusal (`policy:too_short`, …).
pub fn policy_tag(e: &PolicyError) -> String {
    match e {
        PolicyError::Empty => "empty".into(),
        PolicyError::TooShort { .. } => "too_short".into(),
        PolicyError::TooLong => "too_long".into(),
        PolicyError::Guessable => "guessable".into(),
        PolicyError::BuiltFrom(c) => format!("built_from_{}", c.tag()),
        PolicyError::Mismatch => "mismatch".into(),
    }
}

/// The rules above, at this level (the CLI tests check them again through
/// the binary, on both engines).
#[cfg(test)]
mod tests {
    use super::super::kit::{
        audit, audit_rows, cliente, disable, last_code, mails, nit, proveedor, quick_app, stored,
        wrong,
    };
    use super::{ConfirmOutcome, RequestResult, confirm, request};
    use crate::app::App;
    use crate::domain::account::{AccountType, Ident};
    use crate::domain::email::Email;
    use crate::domain::password::{Context, Password, PolicyError};

    const CLIENTE: AccountType = AccountType::Cliente;
    const NEW_PW: &str = "vaca morada trompeta lluvia";

    fn ask(app: &mut App, kind: AccountType, who: &Ident, email: &str) -> RequestResult {
        request(app, kind, who, &Email::parse(email).unwrap())
            .unwrap()
            .result
    }

    fn answer(app: &mut App, kind: Option<AccountType>, raw: &str, code: &str) -> ConfirmOutcome {
        let pw = Password::new(NEW_PW).unwrap();
        confirm(app, kind, &nit(raw), raw, code, &pw).unwrap()
    }

    /// "outcome:detail" of every audit row of `event`, oldest first.
    fn trail(app: &mut App, event: &str) -> Vec<String> {
        audit(app, event)
            .into_iter()
            .map(|(o, d)| format!("{o}:{d}"))
            .collect()
    }

    #[test]
    fn each_request_outcome_answers_alike_and_is_audited_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        cliente(&mut app, "830015428", "eva@example.co", None);
        disable(&mut app, "830015428");
        let prov = AccountType::Proveedor;
        let shared = "compras@example.co";
        proveedor(&mut app, "900373587", shared, "norte");
        proveedor(&mut app, "860518862", shared, "sur");
        let shared_ident = Ident::Email(Email::parse(shared).unwrap());

        let who = nit("900102030");
        assert_eq!(
            ask(&mut app, CLIENTE, &who, "ana@example.co"),
            RequestResult::Sent
        );
        assert_eq!(
            ask(&mut app, CLIENTE, &who, "ana@example.co"),
            RequestResult::Throttled
        );
        clock.advance(61);
        assert_eq!(
            ask(&mut app, CLIENTE, &who, "otra@example.co"),
            RequestResult::WrongEmail
        );
        let unknown = nit("899999034");
        assert_eq!(
            ask(&mut app, CLIENTE, &unknown, "ana@example.co"),
            RequestResult::UnknownAccount
        );
        let off = nit("830015428");
        assert_eq!(
            ask(&mut app, CLIENTE, &off, "eva@example.co"),
            RequestResult::Disabled
        );
        assert_eq!(
            ask(&mut app, prov, &shared_ident, shared),
            RequestResult::Ambiguous
        );
        assert_eq!(
            trail(&mut app, "reset.request"),
            [
                "ok:issued",
                "refused:throttled",
                "refused:wrong_email",
                "refused:unknown_account",
                "refused:disabled",
                "refused:ambiguous",
            ]
        );
        assert_eq!(mails(&dir.path().join("outbox")).len(), 1, "one code sent");
    }

    #[test]
    fn a_code_lives_its_twelve_hours_and_not_a_second_more() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        cliente(&mut app, "900102030", "ana@example.co", None);
        cliente(&mut app, "830015428", "eva@example.co", None);
        ask(&mut app, CLIENTE, &nit("900102030"), "ana@example.co");
        let first = last_code(&dir);
        ask(&mut app, CLIENTE, &nit("830015428"), "eva@example.co");
        let second = last_code(&dir);
        clock.advance(app.code_ttl_secs - 1);
        assert!(matches!(
            answer(&mut app, None, "900102030", &first),
            ConfirmOutcome::Updated(_)
        ));
        clock.advance(2);
        assert!(matches!(
            answer(&mut app, None, "830015428", &second),
            ConfirmOutcome::Refused
        ));
        assert_eq!(
            trail(&mut app, "reset.confirm"),
            ["ok:password_changed", "refused:no_code"]
        );
    }

    #[test]
    fn a_right_code_sets_the_password_once_clears_the_failures_and_mails_a_notice() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let id = cliente(&mut app, "900102030", "ana@example.co", None).id;
        ask(&mut app, CLIENTE, &nit("900102030"), "ana@example.co");
        let code = last_code(&dir);
        for _ in 0..2 {
            let out = answer(&mut app, None, "900102030", &wrong(&code));
            assert!(matches!(out, ConfirmOutcome::Refused));
        }
        assert_eq!(stored(&mut app, id).channel.failures, 2);
        assert!(matches!(
            answer(&mut app, None, "900102030", &code),
            ConfirmOutcome::Updated(_)
        ));
        let acc = stored(&mut app, id);
        assert_eq!(acc.channel.failures, 0, "a success clears the failures");
        assert!(acc.password_hash.is_some());
        assert!(matches!(
            super::super::login::login(&mut app, CLIENTE, &nit("900102030"), NEW_PW).unwrap(),
            super::super::login::LoginOutcome::Ok(_)
        ));
        assert!(matches!(
            answer(&mut app, None, "900102030", &code),
            ConfirmOutcome::Refused
        ));
        assert_eq!(
            trail(&mut app, "reset.confirm"),
            [
                "refused:wrong_code",
                "refused:wrong_code",
                "ok:password_changed",
                "refused:no_code",
            ]
        );
        let sent = mails(&dir.path().join("outbox"));
        assert_eq!(sent.len(), 2, "the code, then the notice");
        assert!(!sent[1].contains(&code), "the notice carries no code");
    }

    #[test]
    fn each_confirm_refusal_is_audited_with_its_reason_and_an_ambiguous_one_counts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        cliente(&mut app, "800003122", "luis@example.co", None);
        cliente(&mut app, "830015428", "eva@example.co", None);
        ask(&mut app, CLIENTE, &nit("830015428"), "eva@example.co");
        let disabled_code = last_code(&dir);
        disable(&mut app, "830015428");
        // A cliente and a proveedor with one NIT, each with a live code.
        let prov = AccountType::Proveedor;
        let c = cliente(&mut app, "900373587", "a@example.co", None).id;
        let p = proveedor(&mut app, "900373587", "b@example.co", "norte").id;
        ask(&mut app, CLIENTE, &nit("900373587"), "a@example.co");
        let cliente_code = last_code(&dir);
        ask(&mut app, prov, &nit("900373587"), "b@example.co");

        let refused = |app: &mut App, kind, raw: &str, code: &str| {
            assert!(matches!(
                answer(app, kind, raw, code),
                ConfirmOutcome::Refused
            ));
        };
        refused(&mut app, None, "899999034", "ZZZZZ");
        refused(&mut app, None, "800003122", "ZZZZZ");
        refused(&mut app, None, "830015428", &disabled_code);
        refused(&mut app, None, "900373587", &cliente_code);
        assert_eq!(
            trail(&mut app, "reset.confirm"),
            [
                "refused:no_match",
                "refused:no_code",
                "refused:disabled",
                "refused:ambiguous",
            ]
        );
        assert_eq!(stored(&mut app, c).channel.failures, 0, "nothing counted");
        assert_eq!(stored(&mut app, p).channel.failures, 0, "nothing counted");
        // The type names one account: its code still works.
        assert!(matches!(
            answer(&mut app, Some(CLIENTE), "900373587", &cliente_code),
            ConfirmOutcome::Updated(_)
        ));
    }

    /// A password built from the account's email is refused only after
    /// the code verified, and the refusal spends nothing.
    #[test]
    fn a_policy_refusal_after_a_right_code_gives_the_attempt_back() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let email = "mariana.restrepo@example.co";
        let id = cliente(&mut app, "900102030", email, None).id;
        ask(&mut app, CLIENTE, &nit("900102030"), email);
        let code = last_code(&dir);
        for _ in 0..2 {
            answer(&mut app, None, "900102030", &wrong(&code));
        }
        let built = Password::new("mariana.restrepo trompeta 2026").unwrap();
        let out = confirm(
            &mut app,
            None,
            &nit("900102030"),
            "900102030",
            &code,
            &built,
        )
        .unwrap();
        assert!(
            matches!(
                out,
                ConfirmOutcome::Policy(PolicyError::BuiltFrom(Context::Email))
            ),
            "{out:?}"
        );
        assert_eq!(
            stored(&mut app, id).channel.failures,
            2,
            "the attempt given back"
        );
        assert_eq!(
            trail(&mut app, "reset.confirm").last().map(String::as_str),
            Some("refused:policy:built_from_email")
        );
        // Two wrong tries and the refused one: the code takes two more
        // wrong ones and is still alive for the right one.
        for _ in 0..2 {
            answer(&mut app, None, "900102030", &wrong(&code));
        }
        assert!(matches!(
            answer(&mut app, None, "900102030", &code),
            ConfirmOutcome::Updated(_)
        ));
    }

    /// A code that cannot be one and a password the typed-only checks
    /// refuse are refused before the code is touched, and each attempt is
    /// in the audit (with no account and nothing typed).
    #[test]
    fn attempts_refused_before_the_code_is_touched_are_audited() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, _) = quick_app(&dir);
        let id = cliente(&mut app, "900102030", "ana@example.co", None).id;
        ask(&mut app, CLIENTE, &nit("900102030"), "ana@example.co");
        let code = last_code(&dir);
        let who = nit("900102030");
        let good = Password::new(NEW_PW).unwrap();
        assert!(confirm(&mut app, None, &who, "900102030", "ab0de", &good).is_err());
        let short = Password::new("corta").unwrap();
        assert!(confirm(&mut app, None, &who, "900102030", &code, &short).is_err());
        let common = Password::new("passwordpassword").unwrap();
        assert!(confirm(&mut app, None, &who, "900102030", &code, &common).is_err());
        assert_eq!(
            trail(&mut app, "reset.confirm"),
            [
                "refused:code_form",
                "refused:policy:too_short",
                "refused:policy:guessable"
            ]
        );
        let rows = audit_rows(&mut app, "reset.confirm");
        assert!(
            rows.iter()
                .all(|(acc, subject)| acc.is_none() && subject == "nit?"),
            "{rows:?}"
        );
        assert_eq!(stored(&mut app, id).channel.failures, 0, "nothing counted");
        assert!(matches!(
            answer(&mut app, None, "900102030", &code),
            ConfirmOutcome::Updated(_)
        ));
    }

    #[test]
    fn twenty_failures_suspend_the_channel_for_a_day_and_mail_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let (mut app, clock) = quick_app(&dir);
        let id = cliente(&mut app, "900102030", "ana@example.co", None).id;
        let who = nit("900102030");
        for round in 0..4 {
            clock.advance(61);
            assert_eq!(
                ask(&mut app, CLIENTE, &who, "ana@example.co"),
                RequestResult::Sent
            );
            let code = last_code(&dir);
            for _ in 0..5 {
                answer(&mut app, None, "900102030", &wrong(&code));
            }
            let failures = stored(&mut app, id).channel.failures;
            if round < 3 {
                assert_eq!(failures, 5 * (round + 1));
                assert!(stored(&mut app, id).channel.suspended_until.is_none());
            }
        }
        let until = app.now() + app.limits.suspension_secs;
        assert_eq!(stored(&mut app, id).channel.suspended_until, Some(until));
        assert_eq!(
            trail(&mut app, "recovery.suspend"),
            [format!("ok:until={until}")]
        );
        let notice = mails(&dir.path().join("outbox")).pop().unwrap();
        assert!(
            notice.contains(&crate::clock::colombia(until)),
            "the notice says until when: {notice}"
        );
        clock.advance(61);
        assert_eq!(
            ask(&mut app, CLIENTE, &who, "ana@example.co"),
            RequestResult::Suspended
        );
    }
}
