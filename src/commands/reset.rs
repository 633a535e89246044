//! `recupera reset request | confirm` (manual steps 01–06).
//!
//! Invariants:
//! - `request` answers the same (text, JSON, exit code) whether the account
//!   exists, the email or type is wrong, the request was throttled, the
//!   channel is disabled or delivery failed; it always costs one argon2
//!   hash (the new code's), hit or miss, and never answers before
//!   `request_min` (100 ms by default), which covers the extra work of a hit.
//! - `confirm` gives one refusal for a wrong, expired, used or dead code, an
//!   identifier that does not match, or a disabled channel; and it always
//!   costs two argon2 evaluations (the code's check and the new password's
//!   hash, run in parallel), hit or miss.
//! - Checks on the new password that need only what was typed run before
//!   the code is touched; checks that need the account run only after the
//!   code verified, and a refusal then neither spends the code nor counts.
//! - A successful confirm, in one transaction: the code is used, the
//!   account's other codes die, the failure counters clear, the "password
//!   changed" notice is queued.

use super::mail::{Claim, dispatch};
use super::{PasswordSource, find_accounts, parse_ident, password_source};
use crate::app::App;
use crate::cli::{ConfirmArgs, RequestArgs, ResetCommand};
use crate::domain::account::{Account, AccountType, Ident};
use crate::domain::code;
use crate::domain::email::Email;
use crate::domain::password::{Password, PolicyError};
use crate::error::{Error, Result, policy_message};
use crate::i18n::{M, t, tf};
use crate::mail::ResetMail;
use crate::store::{AuditEntry, ConfirmGate, LiveCode, MailKind};
use crate::ui::Ui;
use serde_json::json;
use zeroize::Zeroizing;

pub fn run(app: &mut App, ui: &Ui, cmd: &ResetCommand) -> Result<()> {
    match cmd {
        ResetCommand::Request(a) => run_request(app, ui, a),
        ResetCommand::Confirm(a) => run_confirm(app, ui, a),
    }
}

// ---------------------------------------------------------------- request

/// What really happened (for the audit log and tests). Never shown: the
/// printed answer is the same for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestResult {
    /// A code was issued and its message handed to delivery (which may
    /// still fail; the message then stays queued).
    Sent,
    /// A code was issued; its message is being built.
    Queued,
    UnknownAccount,
    WrongEmail,
    Throttled,
    ChannelDisabled,
    Ambiguous,
}

impl RequestResult {
    fn detail(self) -> &'static str {
        match self {
            RequestResult::Sent => "sent",
            RequestResult::Queued => "queued",
            RequestResult::UnknownAccount => "unknown_account",
            RequestResult::WrongEmail => "wrong_email",
            RequestResult::Throttled => "throttled",
            RequestResult::ChannelDisabled => "channel_disabled",
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
    let agent = app.agent.clone();
    let claim = Claim::new(now);

    let (result, issued) = app.store.write(|tx| {
        let mut found = find_accounts(tx, Some(kind), ident)?;
        let (result, issued) = if found.len() > 1 {
            (RequestResult::Ambiguous, None)
        } else if let Some(acc) = found.pop() {
            if !acc.email.matches(email) {
                (RequestResult::WrongEmail, Some(acc))
            } else if acc.failed_confirms >= limits.account_confirm_failures {
                (RequestResult::ChannelDisabled, Some(acc))
            } else {
                let (count, last) = tx.recent_requests(acc.id, now - 24 * 3600)?;
                let too_soon = last.is_some_and(|l| now - l < limits.request_min_interval_secs);
                if too_soon || count >= limits.requests_per_day {
                    (RequestResult::Throttled, Some(acc))
                } else {
                    (RequestResult::Queued, Some(acc))
                }
            }
        } else {
            (RequestResult::UnknownAccount, None)
        };
        let account_id = issued.as_ref().map(|a| a.id);
        let subject = ident.audit_label(issued.as_ref());
        let issued = if result == RequestResult::Queued {
            let acc = issued.ok_or_else(|| Error::Other(anyhow::anyhow!("no account")))?;
            let code_id = tx.insert_code(acc.id, &hash, now, expires_at)?;
            // The stored address, never the typed one.
            let mail_id = tx.enqueue_mail(
                acc.id,
                Some(code_id),
                MailKind::ResetCode,
                &acc.email,
                now,
                (&claim.token, claim.until),
            )?;
            Some((acc, mail_id))
        } else {
            None
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
    if let Some((acc, mail_id)) = issued {
        let msg = app.mailer.reset_message(&ResetMail {
            to: &acc.email,
            lang: acc.lang,
            nit: &acc.nit,
            code: &code,
            requested_at: now,
            ttl_hours: app.ttl_hours(),
        });
        // Delivery problems never change the answer; the message stays
        // queued for `mail retry`.
        if let Ok(msg) = msg {
            dispatch(app, mail_id, &claim, &msg);
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

fn request_answer(app: &App, ui: &Ui, masked: &str) -> Result<()> {
    let sent = tf(M::ReqSent, &[("email", &format!("[{masked}]"))]);
    let keep = tf(M::ReqKeepOpen, &[("hours", &app.ttl_hours())]);
    ui.result(
        json!({
            "status": "sent",
            "email_masked": masked,
            "expires_in_hours": app.ttl_hours(),
        }),
        &format!("{sent}\n{keep}"),
    )
}

pub fn run_request(app: &mut App, ui: &Ui, a: &RequestArgs) -> Result<()> {
    // In a terminal with nothing given, ask for the type as the form does.
    let kind = ui.account_type(a.kind, a.user.is_none() && a.email.is_none())?;
    let prompt = match kind {
        AccountType::Cliente => t(M::PromptNit),
        AccountType::Proveedor => t(M::PromptNitOrUser),
    };
    let (ident, raw) = ui.value_or_prompt(a.user.as_deref(), "--user", prompt, |s| {
        parse_ident(s, Some(kind)).map(|i| (i, s.to_string()))
    })?;
    let email = ui.value_or_prompt(
        a.email.as_deref(),
        "--email",
        t(M::PromptEmail),
        super::user::parse_email,
    )?;
    let outcome = request(app, kind, &ident, &email)?;
    request_answer(app, ui, &outcome.masked_email)?;
    // "No cierres esta pantalla": in a terminal, go straight on to step 05.
    if ui.interactive && !ui.json && !a.no_continue && ui.confirm(t(M::PromptContinue), true)? {
        let next = ConfirmArgs {
            user: Some(raw),
            code: None,
            kind: Some(kind),
            password_stdin: false,
            no_login: false,
        };
        return run_confirm(app, ui, &next);
    }
    Ok(())
}

// ---------------------------------------------------------------- confirm

#[derive(Debug)]
pub enum ConfirmOutcome {
    Updated(Box<Account>),
    /// The one refusal (wrong/expired/used/dead code, no match, disabled).
    Refused,
    /// The code was right but the account's data refuses the password; the
    /// code is still usable.
    Policy(PolicyError),
}

struct Plan {
    target: Option<(Account, Option<LiveCode>)>,
    gate: Option<ConfirmGate>,
    ambiguous: bool,
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
    code::check_form(code_typed)?;
    // Typed-only policy checks: before the code is touched.
    app.policy.check_typed(password, Some(raw_ident))?;

    let now = app.now();
    let limits = app.limits;
    let agent = app.agent.clone();
    let claim = Claim::new(now);

    // 1. Find the account with a live code and count the attempt.
    let plan = app.store.write(|tx| {
        let candidates = find_accounts(tx, kind, ident)?;
        let mut live = Vec::new();
        for acc in &candidates {
            if let Some(c) = tx.live_code(acc.id, now)? {
                live.push((acc.clone(), Some(c)));
            }
        }
        // Several accounts with a live code (a cliente and a proveedor with
        // the same NIT, or proveedores sharing an email) name no one
        // account: refused like no match, nothing counted (no guess was
        // checked), and the refusal's hint depends only on what was typed.
        let ambiguous = live.len() > 1;
        let target = match (live.len(), candidates.len()) {
            (1, _) => live.pop(),
            (0, 1) => candidates.into_iter().next().map(|a| (a, None)),
            _ => None,
        };
        let gate = match &target {
            Some((acc, code)) => {
                Some(tx.confirm_gate(acc.id, code.as_ref().map(|c| c.id), &limits)?)
            }
            None => None,
        };
        Ok(Plan {
            target,
            gate,
            ambiguous,
        })
    })?;

    // 2. Check the code (one argon2 evaluation, hit or miss) while the new
    // password's hash (made hit or miss too, for a uniform cost) is computed
    // on another core: two hashes' work in about one hash's wall time.
    let hasher = &app.hasher;
    let (verified, new_hash) = std::thread::scope(|s| {
        let hashing = s.spawn(|| hasher.hash(password.as_bytes()));
        let verified = match (&plan.target, plan.gate) {
            (Some((_, Some(c))), Some(ConfirmGate::Verify)) => {
                hasher.verify(code_typed.as_bytes(), &c.hash)
            }
            _ => {
                hasher.burn(code_typed.as_bytes());
                false
            }
        };
        (verified, hashing.join())
    });
    let new_hash =
        new_hash.map_err(|_| Error::Other(anyhow::anyhow!("hashing thread panicked")))??;

    // 3. Account-dependent policy, only once the code is known right.
    let policy = match (&plan.target, verified) {
        (Some((acc, _)), true) => app
            .policy
            .check_account(password, &acc.policy_words())
            .err(),
        _ => None,
    };

    let detail = match (&plan.target, plan.gate) {
        (None, _) if plan.ambiguous => "ambiguous",
        (None, _) => "no_match",
        (Some(_), Some(ConfirmGate::ChannelDisabled)) => "channel_disabled",
        (Some(_), Some(ConfirmGate::CodeDead)) => "code_dead",
        (Some((_, None)), _) => "no_code",
        (Some(_), _) if verified => "ok",
        (Some(_), _) => "wrong_code",
    };

    let outcome = app.store.write(|tx| {
        let account_id = plan.target.as_ref().map(|(a, _)| a.id);
        let subject = ident.audit_label(plan.target.as_ref().map(|(a, _)| a));
        let entry = |outcome, detail: String| {
            AuditEntry::new(&agent, "reset.confirm", outcome)
                .account(account_id)
                .subject(subject.clone())
                .detail(detail)
        };
        match (&plan.target, verified, &policy) {
            (Some((acc, Some(c))), true, Some(pe)) => {
                tx.confirm_refund(acc.id, c.id)?;
                tx.audit(&entry("refused", format!("policy:{}", policy_tag(pe))), now)?;
                Ok((ConfirmOutcome::Policy(pe.clone()), None))
            }
            (Some((acc, Some(c))), true, None) => {
                if tx.confirm_success(acc.id, c.id, &new_hash, now)? {
                    let mail_id = tx.enqueue_mail(
                        acc.id,
                        None,
                        MailKind::PasswordChanged,
                        &acc.email,
                        now,
                        (&claim.token, claim.until),
                    )?;
                    tx.audit(&entry("ok", "password_changed".into()), now)?;
                    Ok((
                        ConfirmOutcome::Updated(Box::new(acc.clone())),
                        Some(mail_id),
                    ))
                } else {
                    tx.audit(&entry("refused", "code_spent_meanwhile".into()), now)?;
                    Ok((ConfirmOutcome::Refused, None))
                }
            }
            (target, _, _) => {
                if let (Some((_, Some(c))), Some(ConfirmGate::Verify)) = (target, plan.gate) {
                    tx.confirm_failed(c.id, now, &limits)?;
                }
                tx.audit(&entry("refused", detail.to_string()), now)?;
                Ok((ConfirmOutcome::Refused, None))
            }
        }
    })?;

    let (outcome, mail_id) = outcome;
    if let (ConfirmOutcome::Updated(acc), Some(mail_id)) = (&outcome, mail_id) {
        let msg = app.mailer.changed_message(&crate::mail::ChangedMail {
            to: &acc.email,
            lang: acc.lang,
            kind: acc.kind,
            nit: &acc.nit,
            changed_at: now,
        });
        if let Ok(msg) = msg {
            // A notice that fails stays queued; the reset itself is done.
            dispatch(app, mail_id, &claim, &msg);
        }
    }
    Ok(outcome)
}

fn policy_tag(e: &PolicyError) -> String {
    match e {
        PolicyError::BuiltFrom(c) => format!("built_from_{c:?}").to_lowercase(),
        other => format!("{other:?}").to_lowercase(),
    }
}

pub fn run_confirm(app: &mut App, ui: &Ui, a: &ConfirmArgs) -> Result<()> {
    // Decide every source before reading stdin.
    if !ui.interactive {
        if a.user.is_none() {
            return Err(Error::missing_flag("--user"));
        }
        if a.code.is_none() {
            return Err(Error::missing_flag("--code"));
        }
    }
    let source = password_source(ui, a.password_stdin)?;
    let code = ui.value_or_prompt(a.code.as_deref(), "--code", t(M::PromptCode), |s| {
        let s = s.trim();
        code::check_form(s)?;
        Ok(Zeroizing::new(s.to_string()))
    })?;
    let (ident, raw) = match &a.user {
        Some(u) => (parse_ident(u, a.kind)?, u.clone()),
        None => ui.value_or_prompt(None, "--user", t(M::PromptIdentConfirm), |s| {
            parse_ident(s, a.kind).map(|i| (i, s.to_string()))
        })?,
    };
    let policy = app.policy;
    let password = match source {
        PasswordSource::Stdin => super::new_password_from_stdin()?,
        PasswordSource::Prompt => {
            let raw_pw = ui.password_prompt(
                t(M::PromptNewPassword),
                Some(t(M::PromptConfirmPassword)),
                |s| {
                    Password::new(s)
                        .and_then(|pw| policy.check_typed(&pw, Some(&raw)))
                        .map_err(|e| policy_message(&e))
                },
            )?;
            Password::new(&raw_pw)?
        }
    };
    match confirm(app, a.kind, &ident, &raw, &code, &password)? {
        ConfirmOutcome::Updated(acc) => {
            ui.result(
                json!({
                    "status": "updated",
                    "account": {
                        "id": acc.id,
                        "type": acc.kind,
                        "nit": acc.nit.as_str(),
                        "nit_display": acc.nit.display(),
                    }
                }),
                t(M::ConfirmOk),
            )?;
            // Step 06: "Iniciar sesión". No automatic login: offer it.
            if ui.interactive
                && !ui.json
                && !a.no_login
                && ui.confirm(t(M::PromptLoginNow), true)?
            {
                let ident = Ident::Nit(acc.nit.clone());
                let pw = ui.password_prompt(t(M::PromptPassword), None, |_| Ok(()))?;
                return super::login::run_with(app, ui, acc.kind, &ident, &pw);
            }
            Ok(())
        }
        ConfirmOutcome::Refused => {
            // A NIT without --type, or an email, may name several accounts:
            // say how to be precise, whatever the database holds.
            let imprecise = matches!(
                (&ident, a.kind),
                (Ident::Email(_), _) | (Ident::Nit(_), None)
            );
            Err(Error::Refused(if imprecise {
                format!("{} {}", t(M::ConfirmRefused), t(M::HintIdentShared))
            } else {
                t(M::ConfirmRefused).to_string()
            }))
        }
        ConfirmOutcome::Policy(e) => Err(Error::Data(policy_message(&e))),
    }
}
