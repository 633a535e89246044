//! Abuse limits, lockouts, audit, re-hashing, pepper, hostile input.

use crate::util::*;
use serde_json::Value;

fn show(env: &Env, ident: &str) -> Value {
    env.run(&["--json", "user", "show", ident], None)
        .ok()
        .json()
}

fn add_with_password(env: &Env, kind: &str, nit: &str, email: &str, pw: &str) {
    env.run(
        &[
            "user",
            "add",
            "--type",
            kind,
            "--nit",
            nit,
            "--email",
            email,
            "--password-stdin",
        ],
        Some(&format!("{pw}\n")),
    )
    .ok();
}

// ------------------------------------------------------------ request limits

#[test]
fn requests_are_limited_per_minute_and_per_day_silently() {
    let mut env = Env::new();
    env.add_cliente();
    let first = env.request(NIT, EMAIL);
    first.ok();
    assert_eq!(env.mails().len(), 1);

    env.advance(30);
    let throttled = env.request(NIT, EMAIL);
    assert_eq!(
        (throttled.code, &throttled.stdout, &throttled.stderr),
        (0, &first.stdout, &first.stderr)
    );
    assert_eq!(env.mails().len(), 1, "no mail within 60 s");

    for n in 2..=5 {
        env.advance(61);
        env.request(NIT, EMAIL).ok();
        assert_eq!(env.mails().len(), n);
    }
    // Sixth within 24 h: same answer, no mail; a purge does not reset it.
    env.advance(61);
    env.run(&["codes", "purge"], None).ok();
    let sixth = env.request(NIT, EMAIL);
    assert_eq!((sixth.code, &sixth.stdout), (0, &first.stdout));
    assert_eq!(env.mails().len(), 5);

    // 24 h after the first request, one slot frees up.
    env.now = T0 + 24 * 3600 + 1;
    env.request(NIT, EMAIL).ok();
    assert_eq!(env.mails().len(), 6);
}

// ------------------------------------------------------- confirm failures

#[test]
fn twenty_failed_confirmations_disable_recovery_until_unlock() {
    let mut env = Env::new();
    env.add_cliente();
    let mut failures = 0;
    // New codes and purges along the way do not reset the count.
    for round in 0..4 {
        env.request(NIT, EMAIL).ok();
        assert_eq!(env.mails().len(), round + 1);
        for _ in 0..5 {
            if failures == 19 {
                break;
            }
            env.confirm(NIT, "zzzzz", STRONG).code(1);
            failures += 1;
        }
        env.run(&["codes", "purge"], None).ok();
        env.advance(61);
    }
    assert_eq!(failures, 19);
    assert_eq!(show(&env, NIT)["failed_confirmations"], 19);
    // A fresh, valid code; then the 20th failure.
    env.request(NIT, EMAIL).ok();
    let good = env.last_code();
    env.confirm(NIT, "zzzzz", STRONG).code(1);
    let v = show(&env, NIT);
    assert_eq!(v["recovery_enabled"], false);

    // Disabled: the right code is refused with the same message, and new
    // requests mail nothing.
    let r = env.confirm(NIT, &good, STRONG);
    r.code(1).stderr_has("el código no es válido");
    env.advance(61);
    let mails = env.mails().len();
    env.request(NIT, EMAIL).ok();
    assert_eq!(env.mails().len(), mails);

    env.run(&["user", "unlock", NIT], None)
        .ok()
        .stdout_has("desbloqueada");
    assert_eq!(show(&env, NIT)["recovery_enabled"], true);
    env.confirm(NIT, &good, STRONG).ok();
}

#[test]
fn a_success_clears_the_confirmation_failures() {
    let mut env = Env::new();
    env.add_cliente();
    for _ in 0..3 {
        env.confirm(NIT, "zzzzz", STRONG).code(1);
    }
    env.request(NIT, EMAIL).ok();
    for _ in 0..4 {
        env.confirm(NIT, "zzzzz", STRONG).code(1);
    }
    assert_eq!(show(&env, NIT)["failed_confirmations"], 7);
    env.confirm(NIT, &env.last_code(), STRONG).ok();
    assert_eq!(show(&env, NIT)["failed_confirmations"], 0);
    env.advance(61);
}

#[test]
fn a_policy_refusal_after_the_code_neither_spends_it_nor_counts() {
    let env = Env::new();
    env.add_user("cliente", NIT, EMAIL, &["--name", "Ana Gómez"])
        .ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    // Built from the account's email: known only once the code verified.
    let r = env.confirm(NIT, &code, "ana.gomez luz mesa trombón");
    r.code(65).stderr_has("el email de la cuenta");
    let r = env.confirm(NIT, &code, "Gómez luz mesa trombón verde");
    r.code(65).stderr_has("el nombre de la cuenta");
    assert_eq!(env.count("SELECT attempts FROM codes"), 0);
    assert_eq!(show(&env, NIT)["failed_confirmations"], 0);
    env.confirm(NIT, &code, STRONG).ok();
}

#[test]
fn a_typed_only_policy_refusal_happens_before_the_code_is_touched() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    // Too short, common, the identifier typed: refused without counting,
    // even with a wrong code (so it says nothing about the account).
    env.confirm(NIT, "zzzzz", "corta")
        .code(65)
        .stderr_has("muy corta");
    env.confirm(NIT, "zzzzz", "passwordpassword123")
        .code(65)
        .stderr_has("común");
    env.confirm(NIT, "zzzzz", "clave 900102030 segura")
        .code(65)
        .stderr_has("NIT, usuario o email escrito");
    // An unknown NIT gets the same policy messages.
    env.confirm("830015428", "zzzzz", "corta")
        .code(65)
        .stderr_has("muy corta");
    assert_eq!(env.count("SELECT attempts FROM codes"), 0);
    assert_eq!(show(&env, NIT)["failed_confirmations"], 0);
}

// ----------------------------------------------------------------- login

#[test]
fn five_failed_logins_lock_for_15_minutes_then_doubling_capped_at_24h() {
    let mut env = Env::new();
    add_with_password(&env, "cliente", NIT, EMAIL, STRONG);
    for _ in 0..5 {
        env.login("cliente", NIT, "otra frase equivocada").code(1);
    }
    // Locked: even the right password gets the one refusal.
    let r = env.login("cliente", NIT, STRONG);
    r.code(1).stderr_has("Usuario o contraseña incorrectos.");
    let v = show(&env, NIT);
    assert!(v["login_locked_until"].is_string(), "{v}");
    env.advance(15 * 60 - 1);
    env.login("cliente", NIT, STRONG).code(1);
    env.advance(1);
    env.login("cliente", NIT, STRONG).ok();
    assert_eq!(show(&env, NIT)["failed_logins"], 0);

    // Again to 5 failures, then one more after the lock: 30 minutes.
    for _ in 0..5 {
        env.login("cliente", NIT, "otra frase equivocada").code(1);
    }
    env.advance(15 * 60);
    env.login("cliente", NIT, "otra frase equivocada").code(1);
    env.advance(15 * 60);
    env.login("cliente", NIT, STRONG).code(1);
    env.advance(15 * 60);
    env.login("cliente", NIT, STRONG).ok();

    // Many failures: never more than 24 h.
    for i in 0..12 {
        env.login("cliente", NIT, "otra frase equivocada").code(1);
        if i >= 4 {
            let until: i64 = env.count("SELECT login_locked_until FROM accounts");
            assert!(until - env.now <= 24 * 3600, "lock {} s", until - env.now);
            if i < 11 {
                env.advance(until - env.now);
            }
        }
    }
    let until: i64 = env.count("SELECT login_locked_until FROM accounts");
    assert_eq!(until - env.now, 24 * 3600);
}

#[test]
fn login_lock_never_blocks_recovery_and_a_reset_clears_it() {
    let env = Env::new();
    add_with_password(&env, "cliente", NIT, EMAIL, STRONG);
    for _ in 0..5 {
        env.login("cliente", NIT, "otra frase equivocada").code(1);
    }
    env.login("cliente", NIT, STRONG).code(1);
    env.request(NIT, EMAIL).ok();
    env.confirm(NIT, &env.last_code(), STRONG2).ok();
    let v = show(&env, NIT);
    assert_eq!(v["failed_logins"], 0);
    assert!(v["login_locked_until"].is_null());
    env.login("cliente", NIT, STRONG2).ok();
}

#[test]
fn unlock_clears_a_login_lock() {
    let env = Env::new();
    add_with_password(&env, "cliente", NIT, EMAIL, STRONG);
    for _ in 0..5 {
        env.login("cliente", NIT, "otra frase equivocada").code(1);
    }
    env.login("cliente", NIT, STRONG).code(1);
    env.run(&["--json", "user", "unlock", NIT], None).ok();
    env.login("cliente", NIT, STRONG).ok();
}

#[test]
fn login_refusal_is_the_same_for_every_kind_of_miss() {
    let env = Env::new();
    add_with_password(&env, "cliente", NIT, EMAIL, STRONG);
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok(); // no password
    add_with_password(&env, "cliente", "830015428", "c@example.co", STRONG);
    for _ in 0..5 {
        env.login("cliente", "830015428", "otra frase equivocada")
            .code(1);
    }
    let answers: Vec<(i32, String, String)> = [
        ("cliente", NIT, "otra frase equivocada"), // wrong password
        ("cliente", "890900841", STRONG),          // unknown account
        ("cliente", "800003122", STRONG),          // no password
        ("cliente", "830015428", STRONG),          // locked
        ("proveedor", NIT, STRONG),                // wrong type
    ]
    .iter()
    .map(|(k, u, p)| {
        let r = env.login(k, u, p);
        (r.code, r.stdout, r.stderr)
    })
    .collect();
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    assert_eq!(answers[0].0, 1);
}

// ----------------------------------------------------------------- audit

#[test]
fn audit_records_every_change_and_attempt_without_secrets() {
    let mut env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.confirm(NIT, "zzzzz", STRONG).code(1);
    env.confirm(NIT, &code, STRONG).ok();
    env.login("cliente", NIT, "frase equivocada de verdad")
        .code(1);
    env.login("cliente", NIT, STRONG).ok();
    env.login("cliente", "830015428", STRONG).code(1);
    // A password typed into the user field of a miss is not recorded.
    env.login("proveedor", "mi-clave-secreta", STRONG).code(1);
    env.advance(13 * 3600);
    env.run(&["codes", "purge", "--agent", "cron"], None).ok();
    let mut c = env.command(&["user", "unlock", NIT]);
    c.env_remove("RECUPERA_AGENT").env("USER", "maria");
    run_command(c, None).ok();

    let all = env.run(&["--json", "audit"], None).ok().json();
    let rows = all.as_array().unwrap();
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
    let two = env
        .run(&["--json", "audit", "--user", NIT, "--limit", "2"], None)
        .ok()
        .json();
    assert_eq!(two.as_array().unwrap().len(), 2);
    // No secret anywhere in the table.
    let dump = env.snapshot();
    let audit = &dump[dump.find("## audit").unwrap()..dump.find("## codes").unwrap()];
    for secret in [
        code.as_str(),
        STRONG,
        "mi-clave-secreta",
        "830015428",
        "frase equivocada",
        "zzzzz",
        "$argon2",
    ] {
        assert!(!audit.contains(secret), "{secret:?} in the audit table");
    }
}

// --------------------------------------------------------------- re-hash

#[test]
fn login_upgrades_a_hash_made_with_weaker_parameters() {
    let env = Env::new();
    env.add_cliente();
    let old = recupera::domain::hash::Hasher::with_params(None, 4096, 1, 1)
        .hash(STRONG.as_bytes())
        .unwrap();
    assert!(old.contains("m=4096,t=1,p=1"));
    env.db()
        .execute("UPDATE accounts SET password_hash = ?1", [&old])
        .unwrap();
    // A wrong password does not touch it.
    env.login("cliente", NIT, "frase equivocada de verdad")
        .code(1);
    let stored: String = env
        .db()
        .query_row("SELECT password_hash FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, old);
    env.login("cliente", NIT, STRONG).ok();
    let stored: String = env
        .db()
        .query_row("SELECT password_hash FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{stored}"
    );
    env.login("cliente", NIT, STRONG).ok();
    let audit = env.run(&["--json", "audit"], None).ok().json();
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["detail"] == "rehashed")
    );
}

// ---------------------------------------------------------------- pepper

#[test]
fn pepper_file_is_needed_to_verify_once_used() {
    let mut env = Env::new();
    let pepper = env.root.join("pepper");
    std::fs::write(&pepper, b"0123456789abcdef0123456789abcdef").unwrap();
    env.extra
        .push(("RECUPERA_PEPPER_FILE".into(), pepper.display().to_string()));
    add_with_password(&env, "cliente", NIT, EMAIL, STRONG);
    env.login("cliente", NIT, STRONG).ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();

    // Without the pepper, nothing verifies (fails closed)...
    env.extra.clear();
    env.login("cliente", NIT, STRONG).code(1);
    env.confirm(NIT, &code, STRONG2).code(1);
    // ...but recovery issues new codes, so accounts can be recovered.
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    env.confirm(NIT, &env.last_code(), STRONG2).ok();
    env.login("cliente", NIT, STRONG2).ok();

    // A configured but missing or short pepper is a configuration error.
    env.extra.push((
        "RECUPERA_PEPPER_FILE".into(),
        env.root.join("nope").display().to_string(),
    ));
    let before = env.snapshot();
    env.login("cliente", NIT, STRONG2)
        .code(78)
        .stderr_has("No se puede leer el pepper");
    std::fs::write(&pepper, b"short").unwrap();
    env.extra[0].1 = pepper.display().to_string();
    env.login("cliente", NIT, STRONG2)
        .code(78)
        .stderr_has("16 bytes");
    assert_eq!(env.snapshot(), before);
}

// --------------------------------------------------------- hostile input

fn refused(env: &Env, args: &[&str], stdin: Option<&str>, code: i32, msg: &str) {
    let before = env.snapshot();
    let r = env.run(args, stdin);
    r.code(code).stderr_has(msg);
    assert_eq!(env.snapshot(), before, "{args:?} changed the database");
}

#[test]
fn hostile_nits() {
    let env = Env::new();
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
            &env,
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
            &env,
            &["reset", "request", "--nit", nit, "--email", EMAIL],
            None,
            65,
            msg,
        );
        refused(
            &env,
            &["login", "--user", nit, "--password-stdin"],
            Some("x\n"),
            65,
            msg,
        );
    }
    // In English too.
    refused(
        &env,
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

#[test]
fn hostile_emails() {
    let env = Env::new();
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
            &env,
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
            &env,
            &["reset", "request", "--nit", NIT, "--email", email],
            None,
            65,
            msg,
        );
    }
    assert_eq!(env.mails().len(), 0);
}

#[test]
fn hostile_passwords() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    refused(
        &env,
        &[
            "user",
            "add",
            "--nit",
            "800003122",
            "--email",
            "b@example.co",
            "--password-stdin",
        ],
        Some("\n"),
        65,
        "vacía",
    );
    refused(
        &env,
        &[
            "user",
            "add",
            "--nit",
            "800003122",
            "--email",
            "b@example.co",
            "--password-stdin",
        ],
        Some(""),
        65,
        "vacía",
    );
    let huge = "x".repeat(10_000);
    refused(
        &env,
        &[
            "reset",
            "confirm",
            "--user",
            NIT,
            "--code",
            &code,
            "--password-stdin",
        ],
        Some(&format!("{huge}\n")),
        65,
        "demasiado larga",
    );
    refused(
        &env,
        &[
            "user",
            "add",
            "--nit",
            "800003122",
            "--email",
            "b@example.co",
            "--password-stdin",
        ],
        Some(&huge),
        65,
        "demasiado larga",
    );
    refused(
        &env,
        &["login", "--user", NIT, "--password-stdin"],
        Some(&huge),
        65,
        "demasiado larga",
    );
    // A mismatched confirmation line.
    refused(
        &env,
        &[
            "reset",
            "confirm",
            "--user",
            NIT,
            "--code",
            &code,
            "--password-stdin",
        ],
        Some(&format!("{STRONG}\n{STRONG2}\n")),
        65,
        "no coinciden",
    );
    // The code was never touched by any of this.
    env.confirm(NIT, &code, STRONG).ok();
}

#[cfg(unix)]
#[test]
fn non_utf8_argument() {
    use std::os::unix::ffi::OsStrExt;
    let env = Env::new();
    env.add_cliente();
    let before = env.snapshot();
    let mut c = env.command(&["login", "--password-stdin", "--user"]);
    c.arg(std::ffi::OsStr::from_bytes(b"9001\xff2030"));
    let r = run_command(c, Some("x\n"));
    r.code(2).stderr_has("UTF-8");
    assert!(r.stderr.contains("no es texto UTF-8"), "{}", r.stderr);
    assert_eq!(env.snapshot(), before);
}

#[test]
fn db_path_is_a_folder() {
    let env = Env::new();
    let dir = env.root.join("folder");
    std::fs::create_dir(&dir).unwrap();
    let d = dir.display().to_string();
    let r = env.run(&["--db", &d, "user", "list"], None);
    r.code(74).stderr_has("es una carpeta");
}

#[test]
fn db_of_random_bytes_is_refused_untouched() {
    let env = Env::new();
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    let junk: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&env.db, &junk).unwrap();
    let r = env.run(
        &[
            "user",
            "add",
            "--nit",
            NIT,
            "--email",
            EMAIL,
            "--no-password",
        ],
        None,
    );
    r.code(74).stderr_has("no es una base de datos de recupera");
    assert_eq!(std::fs::read(&env.db).unwrap(), junk);
}

#[test]
fn newer_database_is_refused_untouched() {
    let env = Env::new();
    env.add_cliente();
    {
        let db = env.db();
        db.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 99;")
            .unwrap();
    }
    let before_bytes = std::fs::read(&env.db).unwrap();
    let before = env.snapshot();
    for args in [
        &["user", "list"][..],
        &["reset", "request", "--nit", NIT, "--email", EMAIL][..],
        &["codes", "purge"][..],
    ] {
        let r = env.run(args, None);
        r.code(74).stderr_has("versión más nueva");
    }
    assert_eq!(std::fs::read(&env.db).unwrap(), before_bytes);
    assert_eq!(env.snapshot(), before);
}

#[cfg(unix)]
#[test]
fn read_only_database_is_refused_untouched() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.add_cliente();
    let before = env.snapshot();
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o400)).unwrap();
    let r = env.request(NIT, EMAIL);
    r.code(74).stderr_has("solo lectura");
    std::fs::set_permissions(&env.db, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(env.snapshot(), before);
}

#[test]
fn bad_configuration_is_exit_78_before_the_database() {
    let mut env = Env::new();
    for (k, v, msg) in [
        ("RECUPERA_CODE_TTL_HOURS", "25", "entre 1 y 24"),
        ("RECUPERA_MIN_PASSWORD_LENGTH", "7", "entre 8 y 256"),
        ("RECUPERA_CODE_TTL_HOURS", "doce", "entre 1 y 24"),
        (
            "RECUPERA_BUSY_TIMEOUT_MS",
            "99999999999",
            "RECUPERA_BUSY_TIMEOUT_MS debe ser un número",
        ),
        (
            "RECUPERA_BUSY_TIMEOUT_MS",
            "-1",
            "RECUPERA_BUSY_TIMEOUT_MS debe ser un número",
        ),
        (
            "RECUPERA_SMTP_TIMEOUT",
            "0",
            "RECUPERA_SMTP_TIMEOUT debe ser un número",
        ),
        (
            "RECUPERA_SMTP_URL",
            "smtp://mail.example.com:25",
            "solo se permite hacia la propia máquina",
        ),
        ("RECUPERA_MAIL_FROM", "a@b.co, c@d.co", "RECUPERA_MAIL_FROM"),
    ] {
        env.extra = vec![(k.into(), v.into())];
        let r = env.run(&["user", "list"], None);
        r.code(78).stderr_has(msg);
        assert!(!env.db.exists());
    }
    env.extra.clear();
    let r = env.run(
        &[
            "--smtp-url",
            "smtps://u:secret@mail.example.com",
            "user",
            "list",
        ],
        None,
    );
    r.code(78).stderr_has("RECUPERA_SMTP_URL");
}

#[test]
fn another_programs_sqlite_file_is_refused_untouched() {
    let env = Env::new();
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    {
        let c = rusqlite::Connection::open(&env.db).unwrap();
        c.execute_batch("CREATE TABLE accounts (x); INSERT INTO accounts VALUES (1);")
            .unwrap();
    }
    let before = std::fs::read(&env.db).unwrap();
    let r = env.run(&["user", "list"], None);
    r.code(74).stderr_has("no es una base de datos de recupera");
    assert_eq!(std::fs::read(&env.db).unwrap(), before);
}

#[test]
fn request_never_answers_before_its_floor() {
    let mut env = Env::new();
    env.add_cliente();
    env.extra
        .push(("RECUPERA_REQUEST_MIN_MS".into(), "400".into()));
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

#[test]
fn an_unknown_recupera_lang_falls_back_instead_of_failing() {
    let mut env = Env::new();
    env.extra.push(("RECUPERA_LANG".into(), "fr".into()));
    env.run(&["user", "list"], None)
        .ok()
        .stdout_has("(ninguno)");
    env.extra[0].1 = "en".into();
    env.run(&["user", "list"], None).ok().stdout_has("(none)");
}

#[test]
fn an_email_shared_by_two_proveedores_is_refused_like_an_unknown_one() {
    let env = Env::new();
    for (nit, user) in [("800003122", "acme"), ("830015428", "acme-dos")] {
        env.run(
            &[
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
            ],
            Some(&format!("{STRONG}\n")),
        )
        .ok();
    }
    let shared = env.login("proveedor", "compras@acme.co", STRONG);
    shared.code(1).stderr_has("ingrese con el NIT o el usuario");
    let unknown = env.login("proveedor", "nadie@acme.co", STRONG);
    assert_eq!(
        (shared.code, &shared.stdout, &shared.stderr),
        (unknown.code, &unknown.stdout, &unknown.stderr)
    );
    // Every attempt is audited, the shared one too.
    assert_eq!(
        env.count("SELECT COUNT(*) FROM audit WHERE event = 'login' AND detail = 'ambiguous'"),
        1
    );
    env.login("proveedor", "acme-dos", STRONG).ok();
}
