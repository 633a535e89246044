//! Abuse resistance, on both engines: request limits, the recovery
//! channel's suspension, login locks, uniform answers, audit, pepper,
//! settings, hostile input. Re-hashing and damaged, foreign or newer SQLite
//! files need raw SQL or file access: those tests are SQLite-only.

use crate::engines;
use crate::util::*;
use recupera::clock::rfc3339;

engines!(
    requests_are_limited_per_minute_and_per_day_silently,
    a_confirmation_without_a_live_code_counts_toward_nothing,
    twenty_wrong_confirmations_suspend_recovery_for_a_day,
    a_suspension_kills_the_live_code_and_unlock_ends_it_at_once,
    unlock_clears_the_request_quota,
    a_success_clears_the_confirmation_failures,
    a_policy_refusal_after_the_code_neither_spends_it_nor_counts,
    a_typed_only_policy_refusal_happens_before_the_code_is_touched,
    five_failed_logins_lock_for_15_minutes_then_doubling_capped_at_24h,
    a_successful_login_clears_the_failure_count,
    login_lock_never_blocks_recovery_and_a_reset_clears_it,
    unlock_clears_a_login_lock,
    login_refusal_is_the_same_for_every_kind_of_miss,
    audit_records_every_change_and_attempt_without_secrets,
    pepper_file_is_needed_to_verify_once_used,
    hostile_nits,
    hostile_emails,
    hostile_passwords,
    non_utf8_argument,
    bad_configuration_is_exit_78_before_the_database,
    code_ttl_setting_sets_how_long_a_code_lives,
    min_password_length_setting_moves_the_policy,
    request_never_answers_before_its_floor,
    an_unknown_recupera_lang_is_bad_configuration,
    a_bad_variable_is_configuration_named_as_the_variable,
    the_agent_falls_back_to_logname_then_the_system_account,
    login_from_stdin_checks_a_second_line_and_refuses_a_third,
    a_password_typed_as_the_identifier_is_not_echoed,
    an_email_shared_by_two_proveedores_is_refused_like_an_unknown_one,
);

const DAY: i64 = 24 * 3600;
const WRONG_PASSWORD: &str = "otra frase equivocada";

// ------------------------------------------------------------- helpers

/// `user add` with `pw` as the password.
fn add_with_password(env: &Env, kind: &str, nit: &str, email: &str, pw: &str) -> Run {
    env.cli([
        "user",
        "add",
        "--type",
        kind,
        "--nit",
        nit,
        "--email",
        email,
        "--password-stdin",
    ])
    .stdin(&format!("{pw}\n"))
    .run()
}

/// A well-formed code that is not `code`.
fn wrong_for(code: &str) -> &'static str {
    if code == "ZZZZZ" { "YYYYY" } else { "ZZZZZ" }
}

/// Step 02 for the cliente: true when it mailed a code. The answer is the
/// same either way (that is the point), so only the outbox tells.
fn request_mails_a_code(env: &Env) -> bool {
    let before = env.mails().len();
    env.request(NIT, EMAIL)
        .ok()
        .stdout_has("Se envió un código de confirmación");
    let mails = env.mails();
    match mails.len() - before {
        0 => false,
        1 => {
            assert!(mails.last().unwrap().code.is_some(), "not a reset mail");
            true
        }
        n => panic!("{n} mails for one request"),
    }
}

/// `n` wrong confirmations against the cliente's newest code.
fn wrong_confirmations(env: &Env, n: usize) {
    let wrong = wrong_for(&env.last_code());
    for _ in 0..n {
        env.confirm_refused(NIT, wrong, STRONG);
    }
}

/// `n` failed logins of the cliente.
fn failed_logins(env: &Env, n: usize) {
    for _ in 0..n {
        env.login_refused("cliente", NIT, WRONG_PASSWORD);
    }
}

/// The `detail` of the newest audit event `event`.
fn last_detail(env: &Env, event: &str) -> String {
    env.audit(&["--event", event])[0]["detail"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// A command's (exit code, stdout, stderr), for "same answer" checks.
fn answer(r: &Run) -> (i32, String, String) {
    (r.code, r.stdout.clone(), r.stderr.clone())
}

// ------------------------------------------------------------ request limits

fn requests_are_limited_per_minute_and_per_day_silently(env: &mut Env) {
    env.add_cliente();
    let first = env.request(NIT, EMAIL);
    first.ok();
    assert_eq!(env.mails().len(), 1);
    let v = env.account(NIT);
    assert_eq!(v["requests_last_24h"], 1);
    assert_eq!(v["next_request_at"], rfc3339(T0 + 60));

    // Within the minute: the same answer, no mail.
    env.advance(30);
    let throttled = env.request(NIT, EMAIL);
    assert_eq!(answer(&throttled), answer(&first));
    assert_eq!(env.mails().len(), 1, "no mail within 60 s");
    assert_eq!(last_detail(env, "reset.request"), "throttled");
    assert_eq!(env.account(NIT)["requests_last_24h"], 1, "not counted");

    env.advance(30);
    assert!(env.account(NIT)["next_request_at"].is_null());
    for n in 2..=5 {
        assert!(request_mails_a_code(env), "request {n}");
        env.advance(61);
    }
    let v = env.account(NIT);
    assert_eq!(v["requests_last_24h"], 5);
    assert_eq!(v["next_request_at"], rfc3339(T0 + DAY));

    // Sixth within 24 h: same answer, no mail; a purge does not reset it.
    env.cli(["codes", "purge"]).ok();
    let sixth = env.request(NIT, EMAIL);
    assert_eq!(answer(&sixth), answer(&first));
    assert_eq!(env.mails().len(), 5);
    env.now = T0 + DAY - 1;
    assert!(!request_mails_a_code(env), "one second too early");

    // When the first request leaves the window, one slot frees up, as
    // `user show` said.
    env.now = T0 + DAY;
    assert!(request_mails_a_code(env));
    assert_eq!(env.account(NIT)["requests_last_24h"], 5);
}

// ------------------------------------------------------- confirm failures

fn a_confirmation_without_a_live_code_counts_toward_nothing(env: &mut Env) {
    env.add_cliente();
    // Knowing the NIT is not enough to switch the owner's recovery off.
    let first = env.confirm_refused(NIT, "ZZZZZ", STRONG);
    for _ in 0..24 {
        let r = env.confirm_refused(NIT, "ZZZZZ", STRONG);
        assert_eq!(answer(&r), answer(&first));
    }
    let v = env.account(NIT);
    assert_eq!(v["recovery_enabled"], true);
    assert_eq!(v["recovery_suspended_until"], serde_json::Value::Null);
    assert_eq!(v["failed_confirmations"], 0);
    assert_eq!(env.audit_count("recovery.suspend", None), 0);
    assert_eq!(last_detail(env, "reset.confirm"), "no_code");
    // The answer is the one refusal, the same as for an unknown NIT.
    let unknown = env.confirm_refused("830015428", "ZZZZZ", STRONG);
    assert_eq!(answer(&unknown), answer(&first));

    assert!(request_mails_a_code(env), "recovery still works");
    // A wrong code against a live one does count, with the same answer.
    let code = env.last_code();
    let wrong = env.confirm_refused(NIT, wrong_for(&code), STRONG);
    assert_eq!(answer(&wrong), answer(&first));
    assert_eq!(env.account(NIT)["failed_confirmations"], 1);

    // An expired code is no live code either.
    env.advance(12 * 3600);
    for _ in 0..25 {
        env.confirm_refused(NIT, "ZZZZZ", STRONG);
    }
    let v = env.account(NIT);
    assert_eq!(v["recovery_enabled"], true);
    assert_eq!(v["failed_confirmations"], 1);
    assert!(request_mails_a_code(env));
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

fn twenty_wrong_confirmations_suspend_recovery_for_a_day(env: &mut Env) {
    env.add_cliente_with_password();
    // 4 codes (a code dies after 5 wrong tries); new codes and purges along
    // the way do not reset the account's count.
    for round in 1..=4 {
        assert!(request_mails_a_code(env), "code {round}");
        wrong_confirmations(env, if round < 4 { 5 } else { 4 });
        env.cli(["codes", "purge"]).ok();
        env.advance(61);
    }
    let v = env.account(NIT);
    assert_eq!(v["failed_confirmations"], 19);
    assert_eq!(v["recovery_enabled"], true, "19 are not enough");
    assert_eq!(env.codes_in("pending"), 1);

    // The 20th.
    wrong_confirmations(env, 1);
    let suspended_at = env.now;
    let v = env.account(NIT);
    assert_eq!(v["recovery_enabled"], false);
    assert_eq!(v["recovery_suspended_until"], rfc3339(suspended_at + DAY));
    assert_eq!(env.codes_in("pending"), 0, "no live code left");
    assert_eq!(env.audit_count("recovery.suspend", Some("ok")), 1);

    // The owner is told.
    let notice = &env.queue()[0];
    assert_eq!(notice["kind"], "channel_suspended");
    assert_eq!(notice["recipient"], EMAIL);
    assert_eq!(notice["state"], "sent");
    let mails = env.mails();
    let mail = mails.last().unwrap();
    assert_eq!(mail.subject, "Recuperación de contraseña suspendida");
    assert_eq!(mail.to, vec![EMAIL.to_string()]);
    assert!(mail.code.is_none());

    // Suspended: requests answer as always and send nothing (the quota
    // would allow them: it is the suspension), confirmations count nothing.
    let mails = env.mails().len();
    env.advance(61);
    assert!(!request_mails_a_code(env));
    assert_eq!(last_detail(env, "reset.request"), "channel_suspended");
    env.confirm_refused(NIT, "ZZZZZ", STRONG2);
    assert_eq!(env.account(NIT)["failed_confirmations"], 0);
    // The suspension does not block login.
    env.login("cliente", NIT, STRONG).ok();

    env.now = suspended_at + DAY - 1;
    assert!(!request_mails_a_code(env), "one second before the end");
    assert_eq!(env.mails().len(), mails);

    // After 24 h it works again.
    env.now = suspended_at + DAY;
    let v = env.account(NIT);
    assert_eq!(v["recovery_enabled"], true);
    assert!(v["recovery_suspended_until"].is_null());
    assert!(request_mails_a_code(env));
    env.confirm(NIT, &env.last_code(), STRONG2).ok();
    env.login("cliente", NIT, STRONG2).ok();
}

fn a_suspension_kills_the_live_code_and_unlock_ends_it_at_once(env: &mut Env) {
    env.add_cliente();
    // 5 codes with 4 wrong tries each: the 20th failure leaves the 5th
    // code one try short of dying by itself.
    for round in 1..=5 {
        if round > 1 {
            env.advance(61);
        }
        assert!(request_mails_a_code(env), "code {round}");
        wrong_confirmations(env, 4);
    }
    let good = env.last_code();
    let v = env.account(NIT);
    assert_eq!(v["recovery_enabled"], false);
    assert_eq!(
        env.codes()[0]["state"],
        "replaced",
        "killed by the suspension"
    );
    assert_eq!(env.codes()[0]["attempts"], 4);
    env.confirm_refused(NIT, &good, STRONG);

    env.cli(["user", "unlock", NIT])
        .ok()
        .stdout_has("desbloqueada");
    let v = env.account(NIT);
    assert_eq!(v["recovery_enabled"], true);
    assert!(v["recovery_suspended_until"].is_null());
    assert_eq!(v["failed_confirmations"], 0);
    assert_eq!(env.audit_count("user.unlock", Some("ok")), 1);
    // At once: no waiting, and the killed code stays dead.
    env.confirm_refused(NIT, &good, STRONG);
    assert!(request_mails_a_code(env));
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

fn unlock_clears_the_request_quota(env: &mut Env) {
    env.add_cliente();
    for _ in 0..5 {
        assert!(request_mails_a_code(env));
        env.advance(61);
    }
    assert!(!request_mails_a_code(env), "sixth within a day");
    let v = env.account(NIT);
    assert_eq!(v["requests_last_24h"], 5);
    assert_eq!(v["next_request_at"], rfc3339(T0 + DAY));

    env.cli(["user", "unlock", NIT]).ok();
    let v = env.account(NIT);
    assert_eq!(v["requests_last_24h"], 0);
    assert!(v["next_request_at"].is_null());
    assert!(request_mails_a_code(env), "the quota starts again");
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

fn a_success_clears_the_confirmation_failures(env: &mut Env) {
    env.add_cliente();
    for _ in 0..3 {
        env.confirm_refused(NIT, "ZZZZZ", STRONG);
    }
    assert_eq!(env.account(NIT)["failed_confirmations"], 0, "no live code");
    env.request(NIT, EMAIL).ok();
    wrong_confirmations(env, 4);
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    wrong_confirmations(env, 4);
    assert_eq!(
        env.account(NIT)["failed_confirmations"],
        8,
        "a new code does not reset the count"
    );
    env.confirm(NIT, &env.last_code(), STRONG).ok();
    assert_eq!(env.account(NIT)["failed_confirmations"], 0);
}

fn a_policy_refusal_after_the_code_neither_spends_it_nor_counts(env: &mut Env) {
    env.add_user("cliente", NIT, EMAIL, &["--name", "Ana Gómez"])
        .ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    // Built from the account's email or name: known only once the code
    // verified.
    env.confirm(NIT, &code, "ana.gomez luz mesa trombón")
        .code(65)
        .stderr_has("el email de la cuenta");
    env.confirm(NIT, &code, "Gómez luz mesa trombón verde")
        .code(65)
        .stderr_has("el nombre de la cuenta");
    assert_eq!(last_detail(env, "reset.confirm"), "policy:built_from_name");
    assert_eq!(env.codes()[0]["attempts"], 0);
    assert_eq!(env.codes()[0]["state"], "pending");
    assert_eq!(env.account(NIT)["failed_confirmations"], 0);
    env.confirm(NIT, &code, STRONG).ok();
}

fn a_typed_only_policy_refusal_happens_before_the_code_is_touched(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let wrong = wrong_for(&env.last_code());
    // Too short, common, the identifier typed: refused without counting,
    // even with a wrong code (so it says nothing about the account).
    env.confirm(NIT, wrong, "corta")
        .code(65)
        .stderr_has("muy corta");
    env.confirm(NIT, wrong, "passwordpassword123")
        .code(65)
        .stderr_has("común");
    env.confirm(NIT, wrong, "clave 900102030 segura")
        .code(65)
        .stderr_has("NIT, usuario o email escrito");
    // An unknown NIT gets the same policy messages.
    env.confirm("830015428", wrong, "corta")
        .code(65)
        .stderr_has("muy corta");
    assert_eq!(env.codes()[0]["attempts"], 0);
    assert_eq!(env.account(NIT)["failed_confirmations"], 0);
}

// ----------------------------------------------------------------- login

fn five_failed_logins_lock_for_15_minutes_then_doubling_capped_at_24h(env: &mut Env) {
    env.add_cliente_with_password();
    failed_logins(env, 4);
    let v = env.account(NIT);
    assert_eq!(v["failed_logins"], 4);
    assert!(v["login_locked_until"].is_null(), "4 do not lock");
    let fifth = env.login_refused("cliente", NIT, WRONG_PASSWORD);
    let v = env.account(NIT);
    assert_eq!(v["failed_logins"], 5);
    assert_eq!(v["login_locked_until"], rfc3339(env.now + 15 * 60));

    // Locked: the right password gets the very same refusal, and counts
    // nothing (hammering cannot stretch the lock).
    let right = env.login_refused("cliente", NIT, STRONG);
    assert_eq!(answer(&right), answer(&fifth));
    assert_eq!(env.account(NIT), v);
    assert_eq!(last_detail(env, "login"), "locked");
    env.advance(15 * 60 - 1);
    env.login_refused("cliente", NIT, STRONG);
    env.advance(1);
    env.login("cliente", NIT, STRONG).ok();
    let v = env.account(NIT);
    assert_eq!(v["failed_logins"], 0);
    assert!(v["login_locked_until"].is_null());

    // Again to 5 failures, then one more after the lock: 30 minutes.
    failed_logins(env, 5);
    env.advance(15 * 60);
    failed_logins(env, 1);
    let v = env.account(NIT);
    assert_eq!(v["failed_logins"], 6);
    assert_eq!(v["login_locked_until"], rfc3339(env.now + 30 * 60));
    env.advance(30 * 60 - 1);
    env.login_refused("cliente", NIT, STRONG);
    env.advance(1);
    env.login("cliente", NIT, STRONG).ok();

    // Doubling per further failure, never more than 24 h.
    failed_logins(env, 5);
    let mut lock = 15 * 60;
    for expected in [30, 60, 120, 240, 480, 960, 1440, 1440] {
        env.advance(lock);
        failed_logins(env, 1);
        lock = expected * 60;
        assert_eq!(
            env.account(NIT)["login_locked_until"],
            rfc3339(env.now + lock),
            "expected {expected} min"
        );
    }
}

fn a_successful_login_clears_the_failure_count(env: &mut Env) {
    env.add_cliente_with_password();
    failed_logins(env, 4);
    env.login("cliente", NIT, STRONG).ok();
    assert_eq!(env.account(NIT)["failed_logins"], 0);
    // Four more do not lock: the count started again.
    failed_logins(env, 4);
    assert!(env.account(NIT)["login_locked_until"].is_null());
    env.login("cliente", NIT, STRONG).ok();
}

fn login_lock_never_blocks_recovery_and_a_reset_clears_it(env: &mut Env) {
    env.add_cliente_with_password();
    failed_logins(env, 5);
    env.login_refused("cliente", NIT, STRONG);
    assert!(request_mails_a_code(env), "locked, recovery still works");
    env.confirm(NIT, &env.last_code(), STRONG2).ok();
    let v = env.account(NIT);
    assert_eq!(v["failed_logins"], 0);
    assert!(v["login_locked_until"].is_null());
    env.login("cliente", NIT, STRONG2).ok();
}

fn unlock_clears_a_login_lock(env: &mut Env) {
    env.add_cliente_with_password();
    failed_logins(env, 5);
    env.login_refused("cliente", NIT, STRONG);
    let v = env.cli(["--json", "user", "unlock", NIT]).ok().json();
    assert_eq!(v["status"], "unlocked");
    let v = env.account(NIT);
    assert_eq!(v["failed_logins"], 0);
    assert!(v["login_locked_until"].is_null());
    env.login("cliente", NIT, STRONG).ok();
}

fn login_refusal_is_the_same_for_every_kind_of_miss(env: &mut Env) {
    env.add_cliente_with_password();
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok(); // no password
    add_with_password(env, "cliente", "830015428", "c@example.co", STRONG).ok();
    for _ in 0..5 {
        env.login_refused("cliente", "830015428", WRONG_PASSWORD);
    }
    let answers: Vec<(i32, String, String)> = [
        ("cliente", NIT, WRONG_PASSWORD), // wrong password
        ("cliente", "890900841", STRONG), // unknown account
        ("cliente", "800003122", STRONG), // no password
        ("cliente", "830015428", STRONG), // locked
        ("proveedor", NIT, STRONG),       // wrong type
    ]
    .iter()
    .map(|(k, u, p)| answer(&env.login_refused(k, u, p)))
    .collect();
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    let details: Vec<String> = env
        .audit(&["--event", "login", "--limit", "5"])
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    for d in ["wrong_password", "unknown_account", "no_password", "locked"] {
        assert!(
            details.iter().any(|x| x == d),
            "{d} not audited: {details:?}"
        );
    }
}

// ----------------------------------------------------------------- audit

fn audit_records_every_change_and_attempt_without_secrets(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let wrong = wrong_for(&code);
    env.confirm_refused(NIT, wrong, STRONG);
    env.confirm(NIT, &code, STRONG).ok();
    env.login_refused("cliente", NIT, "frase equivocada de verdad");
    env.login("cliente", NIT, STRONG).ok();
    env.login_refused("cliente", "830015428", STRONG);
    // A password typed into the user field of a miss is not recorded.
    env.login_refused("proveedor", "mi-clave-secreta", STRONG);
    env.advance(13 * 3600);
    env.cli(["codes", "purge", "--agent", "cron"]).ok();
    let mut c = env.command(&["user", "unlock", NIT]);
    c.env_remove("RECUPERA_AGENT").env("USER", "maria");
    run_command(c, None).ok();

    let rows = env.audit(&[]);
    let events: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Newest first.
    assert_eq!(events[0], ("user.unlock".into(), "ok".into()));
    assert_eq!(rows[0]["agent"], "maria");
    assert_eq!(events[1], ("codes.purge".into(), "ok".into()));
    assert_eq!(rows[1]["agent"], "cron");
    for expected in [
        ("user.add", "ok"),
        ("reset.request", "ok"),
        ("mail.deliver", "ok"),
        ("reset.confirm", "refused"),
        ("reset.confirm", "ok"),
        ("login", "refused"),
        ("login", "ok"),
    ] {
        assert!(
            events.contains(&(expected.0.into(), expected.1.into())),
            "{expected:?} missing from {events:?}"
        );
    }
    assert_eq!(
        events.iter().filter(|e| e.0 == "login").count(),
        4,
        "every login attempt, including the unknown account"
    );
    assert!(
        rows.iter()
            .all(|r| r["at"].as_str().unwrap().ends_with('Z'))
    );
    assert_eq!(rows.last().unwrap()["agent"], "test-agent");

    // Filter and limit.
    let two = env.audit(&["--user", NIT, "--limit", "2"]);
    assert_eq!(two.len(), 2);
    assert!(two.iter().all(|r| r["subject"] == NIT));
    // No secret anywhere: the JSON carries every column of the table, and
    // the CSV export is what leaves the building.
    let json = env.cli(["--json", "audit"]).ok().stdout.clone();
    let csv = env.cli(["audit", "--format", "csv"]).ok().stdout.clone();
    assert!(csv.contains("user.unlock"));
    for secret in [
        code.as_str(),
        STRONG,
        "mi-clave-secreta",
        "830015428",
        "frase equivocada",
        wrong,
        "$argon2",
    ] {
        assert!(!json.contains(secret), "{secret:?} in the audit");
        assert!(!csv.contains(secret), "{secret:?} in the CSV audit");
    }
}

// --------------------------------------------------------------- re-hash

#[test]
fn login_upgrades_a_hash_made_with_weaker_parameters() {
    let env = Env::sqlite();
    env.add_cliente();
    let old = recupera::domain::hash::Hasher::with_params(None, 4096, 1, 1)
        .hash(STRONG.as_bytes())
        .unwrap();
    assert!(old.contains("m=4096,t=1,p=1"));
    env.db()
        .execute("UPDATE accounts SET password_hash = ?1", [&old])
        .unwrap();
    let stored = || -> String {
        env.db()
            .query_row("SELECT password_hash FROM accounts", [], |r| r.get(0))
            .unwrap()
    };
    // A wrong password does not touch it.
    env.login_refused("cliente", NIT, "frase equivocada de verdad");
    assert_eq!(stored(), old);
    env.login("cliente", NIT, STRONG).ok();
    let new = stored();
    assert!(new.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{new}");
    assert_eq!(last_detail(&env, "login"), "rehashed");
    // Once only, and the new hash verifies.
    env.login("cliente", NIT, STRONG).ok();
    assert_eq!(stored(), new);
    assert_eq!(
        env.audit(&["--event", "login"])
            .iter()
            .filter(|r| r["detail"] == "rehashed")
            .count(),
        1
    );
}

// ---------------------------------------------------------------- pepper

fn pepper_file_is_needed_to_verify_once_used(env: &mut Env) {
    let pepper = env.root.join("pepper");
    std::fs::write(&pepper, b"0123456789abcdef0123456789abcdef").unwrap();
    let pepper_var = pepper.display().to_string();
    env.set_env("RECUPERA_PEPPER_FILE", &pepper_var);
    env.add_cliente_with_password();
    env.login("cliente", NIT, STRONG).ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();

    // Without the pepper, nothing verifies (fails closed)...
    env.extra.retain(|(k, _)| k != "RECUPERA_PEPPER_FILE");
    env.login_refused("cliente", NIT, STRONG);
    env.confirm_refused(NIT, &code, STRONG2);
    // ...but recovery issues new codes, so accounts can be recovered.
    env.advance(61);
    assert!(request_mails_a_code(env));
    env.confirm(NIT, &env.last_code(), STRONG2).ok();
    env.login("cliente", NIT, STRONG2).ok();

    // A configured but missing or short pepper is a configuration error,
    // found before the database is touched.
    let before = env.state();
    let login = |pepper: &str| {
        env.cli(["login", "--user", NIT, "--password-stdin"])
            .stdin(&format!("{STRONG2}\n"))
            .env("RECUPERA_PEPPER_FILE", pepper)
            .run()
    };
    let missing = env.root.join("nope").display().to_string();
    login(&missing)
        .code(78)
        .stderr_has("No se puede leer el pepper");
    std::fs::write(&pepper, b"short").unwrap();
    login(&pepper_var).code(78).stderr_has("16 bytes");
    assert_eq!(env.state(), before);
}

// --------------------------------------------------------- hostile input

/// A command refused with `code` and `msg`, and nothing changed.
fn refused(env: &Env, args: &[&str], stdin: Option<&str>, code: i32, msg: &str) {
    let before = env.state();
    let mut c = env.cli(args);
    if let Some(s) = stdin {
        c = c.stdin(s);
    }
    c.expect_exit(code).stderr_has(msg);
    assert_eq!(env.state(), before, "{args:?} changed something");
}

fn hostile_nits(env: &mut Env) {
    env.add_cliente();
    let forty = "9".repeat(40);
    for (nit, msg) in [
        (
            "900102030-5",
            "El dígito verificador de 900102030 es 4, no 5",
        ),
        ("9001O2030", "«O» no es válido"),
        (forty.as_str(), "demasiados dígitos"),
    ] {
        refused(
            env,
            &[
                "user",
                "add",
                "--nit",
                nit,
                "--email",
                "x@example.co",
                "--no-password",
            ],
            None,
            65,
            msg,
        );
        refused(
            env,
            &["reset", "request", "--nit", nit, "--email", EMAIL],
            None,
            65,
            msg,
        );
        refused(
            env,
            &["login", "--user", nit, "--password-stdin"],
            Some("x\n"),
            65,
            msg,
        );
    }
    // In English too.
    refused(
        env,
        &[
            "--lang",
            "en",
            "reset",
            "request",
            "--nit",
            "900102030-5",
            "--email",
            EMAIL,
        ],
        None,
        65,
        "The check digit of 900102030 is 4, not 5",
    );
}

fn hostile_emails(env: &mut Env) {
    env.add_cliente();
    let long_local = format!("{}@example.co", "a".repeat(10_000));
    for (email, msg) in [
        ("a@example.co,b@example.co", "no puede contener «,»"),
        ("a@example.co;b@example.co", "no puede contener «;»"),
        (
            "a@example.co\r\nBcc: b@example.co",
            "no puede contener «CR»",
        ),
        ("a@example.co\nb", "no puede contener «LF»"),
        ("sin-arroba.example.co", "le falta la @"),
        (long_local.as_str(), "antes de la @ es demasiado larga"),
    ] {
        refused(
            env,
            &[
                "user",
                "add",
                "--nit",
                "800003122",
                "--email",
                email,
                "--no-password",
            ],
            None,
            65,
            msg,
        );
        refused(
            env,
            &["reset", "request", "--nit", NIT, "--email", email],
            None,
            65,
            msg,
        );
    }
    assert_eq!(env.mails().len(), 0);
}

fn hostile_passwords(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let add = [
        "user",
        "add",
        "--nit",
        "800003122",
        "--email",
        "b@example.co",
        "--password-stdin",
    ];
    let confirm = [
        "reset",
        "confirm",
        "--user",
        NIT,
        "--code",
        code.as_str(),
        "--password-stdin",
    ];
    refused(env, &add, Some("\n"), 65, "vacía");
    refused(env, &add, Some(""), 65, "vacía");
    let huge = "x".repeat(10_000);
    refused(
        env,
        &confirm,
        Some(&format!("{huge}\n")),
        65,
        "demasiado larga",
    );
    refused(env, &add, Some(&huge), 65, "demasiado larga");
    refused(
        env,
        &["login", "--user", NIT, "--password-stdin"],
        Some(&huge),
        65,
        "demasiado larga",
    );
    // A mismatched confirmation line.
    refused(
        env,
        &confirm,
        Some(&format!("{STRONG}\n{STRONG2}\n")),
        65,
        "no coinciden",
    );
    // The code was never touched by any of this.
    assert_eq!(env.codes()[0]["attempts"], 0);
    env.confirm(NIT, &code, STRONG).ok();
}

fn non_utf8_argument(env: &mut Env) {
    use std::os::unix::ffi::OsStrExt;
    env.add_cliente();
    let before = env.state();
    let mut c = env.command(&["login", "--password-stdin", "--user"]);
    c.arg(std::ffi::OsStr::from_bytes(b"9001\xff2030"));
    let r = run_command(c, Some("x\n"));
    r.code(2).stderr_has("no es texto UTF-8");
    assert_eq!(env.state(), before);
}

// ---------------------------------------------------------- configuration

/// True while the program has created nothing in the database: no SQLite
/// file, no table on the PostgreSQL server.
fn database_untouched(env: &Env) -> bool {
    match env.engine {
        Engine::Sqlite => !env.db_path.exists(),
        Engine::Postgres => {
            let mut c = ::postgres::Client::connect(&env.db, ::postgres::NoTls).unwrap();
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'",
                    &[],
                )
                .unwrap()
                .get(0);
            n == 0
        }
    }
}

fn bad_configuration_is_exit_78_before_the_database(env: &mut Env) {
    for (k, v, msg) in [
        ("RECUPERA_CODE_TTL_HOURS", "25", "entre 1 y 24"),
        ("RECUPERA_CODE_TTL_HOURS", "0", "entre 1 y 24"),
        ("RECUPERA_CODE_TTL_HOURS", "doce", "entre 1 y 24"),
        ("RECUPERA_MIN_PASSWORD_LENGTH", "7", "entre 8 y 256"),
        ("RECUPERA_MIN_PASSWORD_LENGTH", "257", "entre 8 y 256"),
        (
            "RECUPERA_BUSY_TIMEOUT_MS",
            "99999999999",
            "(RECUPERA_BUSY_TIMEOUT_MS) debe ser un número",
        ),
        (
            "RECUPERA_BUSY_TIMEOUT_MS",
            "-1",
            "(RECUPERA_BUSY_TIMEOUT_MS) debe ser un número",
        ),
        (
            "RECUPERA_SMTP_TIMEOUT",
            "0",
            "(RECUPERA_SMTP_TIMEOUT) debe ser un número",
        ),
        (
            "RECUPERA_SMTP_URL",
            "smtp://mail.example.com:25",
            "solo se permite hacia la propia máquina",
        ),
        ("RECUPERA_MAIL_FROM", "a@b.co, c@d.co", "RECUPERA_MAIL_FROM"),
        // A device named by mistake is refused at once, not read until
        // memory runs out.
        (
            "RECUPERA_PEPPER_FILE",
            "/dev/zero",
            "no es un archivo normal",
        ),
    ] {
        env.cli(["user", "list"])
            .env(k, v)
            .expect_exit(78)
            .stderr_has(msg);
        assert!(database_untouched(env), "{k}={v} touched the database");
    }
    env.cli(["user", "list"])
        .env("RECUPERA_SMTP_URL", "smtps://127.0.0.1:2465")
        .env("RECUPERA_SMTP_CA_FILE", "/dev/zero")
        .expect_exit(78)
        .stderr_has("no es un archivo normal");
    assert!(database_untouched(env));
    env.cli([
        "--smtp-url",
        "smtps://u:secret@mail.example.com",
        "user",
        "list",
    ])
    .expect_exit(78)
    .stderr_has("RECUPERA_SMTP_URL");
    assert!(database_untouched(env));
    // With sane settings, on SQLite only a command that puts accounts in
    // makes the file (a mistyped --db stays a mistake); a PostgreSQL
    // database, made by its administrator, gets its tables at first use.
    if env.engine == Engine::Sqlite {
        env.cli(["user", "list"])
            .expect_exit(74)
            .stderr_has("No existe la base de datos")
            .stderr_has("la crean `user add` y `user import`");
        assert!(database_untouched(env));
        env.add_cliente();
    } else {
        env.cli(["user", "list"]).ok();
    }
    assert!(!database_untouched(env));
}

fn code_ttl_setting_sets_how_long_a_code_lives(env: &mut Env) {
    env.add_cliente();
    env.set_env("RECUPERA_CODE_TTL_HOURS", "2");
    env.request(NIT, EMAIL).ok();
    let mail = env.mails().pop().unwrap();
    // 18:46:38 UTC + 2 h is 15:46:38 in Bogotá.
    assert!(
        mail.text.contains(
            "Por seguridad este código caducará en 2Hrs (24-02-2026 15:46:38, hora de Colombia)."
        ),
        "{}",
        mail.text
    );
    assert_eq!(env.codes()[0]["expires_at"], rfc3339(T0 + 2 * 3600));
    let code = mail.code.unwrap();
    env.advance(2 * 3600);
    env.confirm_refused(NIT, &code, STRONG);
    assert_eq!(env.codes_in("expired"), 1, "refused after 2 h, not 12");

    // Such a code still works just before its end.
    assert!(request_mails_a_code(env));
    env.advance(2 * 3600 - 1);
    env.confirm(NIT, &env.last_code(), STRONG).ok();

    // Under two hours the mail counts minutes.
    env.set_env("RECUPERA_CODE_TTL_HOURS", "1");
    assert!(request_mails_a_code(env));
    let text = &env.mails().pop().unwrap().text;
    assert!(text.contains("caducará en 60 minutos"), "{text}");
}

fn min_password_length_setting_moves_the_policy(env: &mut Env) {
    const MIN: &str = "RECUPERA_MIN_PASSWORD_LENGTH";
    let sixteen = "tigre nube salsa"; // strong, 16 characters
    let ten = "Rk8#wQz!2v"; // strong, 10 characters
    assert_eq!((sixteen.chars().count(), ten.chars().count()), (16, 10));
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();

    // 20: a strong 16-character password is too short, at `user add` and
    // at `reset confirm` (before the code is touched).
    env.set_env(MIN, "20");
    add_with_password(env, "cliente", "800003122", "b@example.co", sixteen)
        .code(65)
        .stderr_has("tiene 16 caracteres y el mínimo es 20");
    env.confirm(NIT, &code, sixteen)
        .code(65)
        .stderr_has("el mínimo es 20");
    assert_eq!(env.codes()[0]["attempts"], 0);

    // The default (15) takes it, and refuses the 10-character one.
    env.extra.retain(|(k, _)| k != MIN);
    add_with_password(env, "cliente", "800003122", "b@example.co", sixteen).ok();
    env.login("cliente", "800003122", sixteen).ok();
    env.confirm(NIT, &code, ten)
        .code(65)
        .stderr_has("tiene 10 caracteres y el mínimo es 15");

    // 8: the 10-character one is accepted.
    env.set_env(MIN, "8");
    add_with_password(env, "cliente", "830015428", "c@example.co", ten).ok();
    env.login("cliente", "830015428", ten).ok();
    env.confirm(NIT, &code, ten).ok();
    env.login("cliente", NIT, ten).ok();
}

fn request_never_answers_before_its_floor(env: &mut Env) {
    env.add_cliente();
    env.set_env("RECUPERA_REQUEST_MIN_MS", "400");
    for (nit, email) in [(NIT, EMAIL), ("830015428", EMAIL)] {
        let start = std::time::Instant::now();
        env.request(nit, email).ok();
        assert!(
            start.elapsed() >= std::time::Duration::from_millis(400),
            "{nit}: {:?}",
            start.elapsed()
        );
    }
}

fn an_unknown_recupera_lang_is_bad_configuration(env: &mut Env) {
    env.add_cliente_with_password();
    // A language it does not speak is said (78), as --lang's is (2), in
    // the locale's language; --lang overrides it.
    env.cli(["user", "list"])
        .env("RECUPERA_LANG", "fr")
        .env("LANG", "en_US.UTF-8")
        .expect_exit(78)
        .stderr_has("The variable RECUPERA_LANG is «fr»; possible values: es, en.");
    env.cli(["--lang", "en", "user", "list"])
        .env("RECUPERA_LANG", "fr")
        .ok();
    // A locale's spelling names its language; empty is unset.
    env.cli(["user", "list"])
        .env("RECUPERA_LANG", "en_US.UTF-8")
        .ok()
        .stdout_has("Invoice client");
    env.cli(["user", "list"])
        .env("RECUPERA_LANG", "")
        .ok()
        .stdout_has("Cliente Factura");
}

/// A value clap refuses that came from a variable, not from the command
/// line: 78 naming the variable (a CI job's `RECUPERA_DB=${UNSET}`), not a
/// usage error about a flag nobody typed.
fn a_bad_variable_is_configuration_named_as_the_variable(env: &mut Env) {
    env.add_cliente();
    for k in ["RECUPERA_DB", "RECUPERA_OUTBOX"] {
        let r = env
            .cli(["--json", "user", "list"])
            .env(k, "")
            .expect_exit(78);
        r.stderr_has(&format!(
            "La variable {k} está vacía: dele un valor o quítela del entorno (unset {k})."
        ));
        assert_eq!(r.json()["error"], "config");
    }
    // Typed on the line, the same empty value is a usage error.
    env.cli(["user", "list", "--db", ""])
        .expect_exit(2)
        .stderr_has("Falta el valor de --db");
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let mut c = env.command(&["user", "list"]);
        c.env("RECUPERA_AGENT", std::ffi::OsStr::from_bytes(b"mesa\xff"));
        let r = run_command(c, None);
        assert_eq!(r.code, 78, "{}", r.stderr);
        assert!(
            r.stderr
                .contains("La variable RECUPERA_AGENT no es texto UTF-8 válido."),
            "{}",
            r.stderr
        );
        // A non-UTF-8 word typed is still the usage error it was.
        let mut c = env.command(&["user", "show"]);
        c.arg(std::ffi::OsStr::from_bytes(b"90010\xff"));
        assert_eq!(run_command(c, None).code, 2);
    }
    assert_eq!(env.status()["accounts"], 1, "nothing changed");
}

/// Cron, systemd and containers often set no $USER: the audit still says
/// who acted ($LOGNAME, else the process's own account), never "?".
fn the_agent_falls_back_to_logname_then_the_system_account(env: &mut Env) {
    env.add_cliente();
    let last_agent = |env: &Env| {
        let rows = env
            .cli(["--json", "audit", "--event", "user.unlock"])
            .ok()
            .json();
        let rows = rows.as_array().unwrap().clone();
        rows.iter().max_by_key(|r| r["id"].as_i64()).unwrap()["agent"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let mut c = env.command(&["user", "unlock", NIT]);
    c.env_remove("RECUPERA_AGENT")
        .env("LOGNAME", "cron-medellin");
    run_command(c, None).ok();
    assert_eq!(last_agent(env), "cron-medellin");

    let mut c = env.command(&["user", "unlock", NIT]);
    c.env("RECUPERA_AGENT", " ")
        .env("USER", "")
        .env_remove("LOGNAME");
    run_command(c, None).ok();
    let me = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let me = String::from_utf8(me.stdout).unwrap().trim().to_string();
    assert!(!me.is_empty());
    assert_eq!(
        last_agent(env),
        me,
        "blank settings fall through to the system"
    );
}

/// README: "a second line, if present, must match it"; a third is not
/// something the flag reads.
fn login_from_stdin_checks_a_second_line_and_refuses_a_third(env: &mut Env) {
    env.add_cliente_with_password();
    let login = |input: String| {
        env.cli(["login", "--user", NIT, "--password-stdin"])
            .stdin(&input)
            .run()
    };
    let r = login(format!("{STRONG}\n{STRONG2}\n"));
    assert_eq!(r.code, 65);
    assert!(
        r.stderr.contains("Las contraseñas no coinciden."),
        "{}",
        r.stderr
    );
    let r = login(format!("{STRONG}\n{STRONG}\n{STRONG}\n"));
    assert_eq!(r.code, 65);
    assert!(
        r.stderr.contains("lee dos líneas como mucho"),
        "{}",
        r.stderr
    );
    assert_eq!(
        env.account(NIT)["failed_logins"],
        0,
        "neither was an attempt"
    );
    login(format!("{STRONG}\r\n{STRONG}\r\n")).ok();
}

/// README: people now and then type the password where the identifier
/// goes. One with an @ that is no email is refused without repeating it
/// (the --json message may end up in a front end's logs).
fn a_password_typed_as_the_identifier_is_not_echoed(env: &mut Env) {
    env.add_cliente();
    let secret = "Tr0ub4dor&3@Secret!";
    for args in [
        vec![
            "--json",
            "login",
            "--type",
            "proveedor",
            "--user",
            secret,
            "--password-stdin",
        ],
        vec![
            "--json",
            "reset",
            "confirm",
            "--user",
            secret,
            "--code",
            "abcde",
            "--password-stdin",
        ],
        vec![
            "--json",
            "reset",
            "request",
            "--type",
            "proveedor",
            "--user",
            secret,
            "--email",
            EMAIL,
        ],
    ] {
        let r = env.cli(&args).stdin(&format!("{STRONG}\n")).expect_exit(65);
        r.stderr_has("no se repite aquí");
        assert!(
            !r.stdout.contains("Tr0ub4dor") && !r.stderr.contains("Tr0ub4dor"),
            "{args:?}: {} {}",
            r.stdout,
            r.stderr
        );
    }
}

fn an_email_shared_by_two_proveedores_is_refused_like_an_unknown_one(env: &mut Env) {
    for (nit, user) in [("800003122", "acme"), ("830015428", "acme-dos")] {
        env.cli([
            "user",
            "add",
            "--type",
            "proveedor",
            "--nit",
            nit,
            "--username",
            user,
            "--email",
            "compras@acme.co",
            "--password-stdin",
        ])
        .stdin(&format!("{STRONG}\n"))
        .ok();
    }
    let shared = env.login_refused("proveedor", "compras@acme.co", STRONG);
    shared.stderr_has("ingrese con el NIT o el usuario");
    let unknown = env.login_refused("proveedor", "nadie@acme.co", STRONG);
    assert_eq!(answer(&shared), answer(&unknown));
    // Every attempt is audited, the shared one too.
    let ambiguous = env
        .audit(&["--event", "login"])
        .iter()
        .filter(|r| r["detail"] == "ambiguous")
        .count();
    assert_eq!(ambiguous, 1);
    env.login("proveedor", "acme-dos", STRONG).ok();
}

// ------------------------------------------------ SQLite files (raw access)

#[test]
fn db_path_is_a_folder() {
    let env = Env::sqlite();
    let dir = env.root.join("folder");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.display().to_string();
    env.cli(["--db", &d, "user", "list"])
        .expect_exit(74)
        .stderr_has("es una carpeta");
}

#[test]
fn db_of_random_bytes_is_refused_untouched() {
    let env = Env::sqlite();
    std::fs::create_dir_all(env.db_path.parent().unwrap()).unwrap();
    let junk: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&env.db_path, &junk).unwrap();
    env.add_user("cliente", NIT, EMAIL, &[])
        .code(74)
        .stderr_has("no es una base de datos de recupera");
    assert_eq!(std::fs::read(&env.db_path).unwrap(), junk);
}

#[test]
fn newer_database_is_refused_untouched() {
    let env = Env::sqlite();
    env.add_cliente();
    env.db()
        .execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;")
        .unwrap();
    let before_bytes = std::fs::read(&env.db_path).unwrap();
    let before = env.snapshot();
    for args in [
        &["user", "list"][..],
        &["reset", "request", "--nit", NIT, "--email", EMAIL][..],
        &["codes", "purge"][..],
    ] {
        env.cli(args)
            .expect_exit(74)
            .stderr_has("versión más nueva");
    }
    assert_eq!(std::fs::read(&env.db_path).unwrap(), before_bytes);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn read_only_database_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite();
    env.add_cliente();
    let before = env.snapshot();
    std::fs::set_permissions(&env.db_path, std::fs::Permissions::from_mode(0o400)).unwrap();
    let r = env.request(NIT, EMAIL);
    std::fs::set_permissions(&env.db_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    r.code(74).stderr_has("solo lectura");
    assert_eq!(env.snapshot(), before);
    assert!(env.mails().is_empty());
}

#[test]
fn another_programs_sqlite_file_is_refused_untouched() {
    let env = Env::sqlite();
    std::fs::create_dir_all(env.db_path.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&env.db_path).unwrap();
        c.execute_batch("CREATE TABLE accounts (x); INSERT INTO accounts VALUES (1);")
            .unwrap();
    }
    let before = std::fs::read(&env.db_path).unwrap();
    env.cli(["user", "list"])
        .expect_exit(74)
        .stderr_has("no es una base de datos de recupera");
    assert_eq!(std::fs::read(&env.db_path).unwrap(), before);
}

/// SPEC: paths shown to people have control and bidi characters made
/// visible; `db status` names the file it opened.
#[test]
fn db_status_shows_a_hostile_path_escaped() {
    let env = Env::sqlite();
    let dir = env.root.join("d\u{1b}[31m\u{202e}x");
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("r.db");
    let db = db.to_str().unwrap();
    env.add_cliente_in(db).ok();
    let r = env.cli(["--db", db, "db", "status"]).ok();
    assert!(
        !r.stdout.contains('\u{1b}') && !r.stdout.contains('\u{202e}'),
        "{}",
        r.stdout
    );
    r.stdout_has("d\\u{1b}[31m\\u{202e}x");
}

/// A file someone else made (`touch` in a shared folder) is not taken
/// over as the database or a copy's target: recupera would write accounts
/// and hashes into a file its maker can read. An empty file of one's own
/// that others could read is made private before SQLite puts its `-wal`
/// and `-shm` (which take the file's mode) beside it.
#[test]
fn an_empty_or_open_file_of_another_user_is_not_taken_over() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let env = Env::sqlite();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    let mine = env.root.join("mia.db");
    std::fs::write(&mine, b"").unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o666)).unwrap();
    let db = mine.to_str().unwrap();
    env.add_cliente_in(db).ok();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{db}{suffix}"));
        if p.exists() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    // Another user's: root can make one (CI and this machine run as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: the other-user half of this test needs chown");
        return;
    }
    for (len, m) in [(0usize, 0o600), (0, 0o666), (4096, 0o666)] {
        let theirs = env.root.join(format!("ajena-{len}-{m:o}.db"));
        std::fs::write(&theirs, vec![0u8; len]).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(m)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let path = theirs.to_str().unwrap();
        env.add_cliente_in(path)
            .expect_exit(74)
            .stderr_has("es de otro usuario (uid 65534");
        env.cli(["--db", db, "db", "copy", "--to", path])
            .expect_exit(74)
            .stderr_has("es de otro usuario");
        assert_eq!(std::fs::metadata(&theirs).unwrap().len(), len as u64);
        assert!(!std::path::PathBuf::from(format!("{path}-wal")).exists());
    }
}
