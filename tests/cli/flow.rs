//! The manual's flow over the real binary and a real SQLite file.

use crate::util::*;

#[test]
fn whole_flow_from_registration_to_login() {
    let env = Env::new();
    let r = env.add_user("cliente", "900.102.030-4", EMAIL, &["--name", "Ana Gómez"]);
    r.ok().stdout_has("900.102.030-4");

    let r = env.request(NIT, EMAIL);
    r.ok().stdout_has(
        "Se envió un código de confirmación al email asignado a su cuenta [a****@example.co]",
    );

    let mails = env.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.to, vec![EMAIL.to_string()]);
    assert_eq!(m.subject, "Confirmación de cambio de contraseña");
    assert!(m.text.contains("caducará en 12Hrs"), "{}", m.text);
    assert!(m.text.contains("NIT: 900102030"));
    // 18:46:38 UTC is 13:46:38 in Bogotá.
    assert!(
        m.text
            .contains("Fecha de la solicitud: 24-02-2026 13:46:38"),
        "{}",
        m.text
    );
    assert!(m.text.contains("haga caso omiso"));
    let code = m.code.clone().unwrap();
    assert!(m.html.contains(&code), "HTML part carries the code");

    env.confirm(NIT, &code, STRONG)
        .ok()
        .stdout_has("Su contraseña ha sido actualizada.");
    env.login("cliente", NIT, STRONG)
        .ok()
        .stdout_has("Sesión iniciada");

    // The notice is mailed, without secrets.
    let mails = env.mails();
    assert_eq!(mails.len(), 2);
    let notice = &mails[1];
    assert_eq!(notice.subject, "Su contraseña ha sido actualizada");
    assert!(!notice.text.contains(&code));
    assert!(!notice.text.contains(STRONG));
}

#[test]
fn old_password_refused_after_reset_and_code_single_use() {
    let env = Env::new();
    env.run(
        &[
            "user",
            "add",
            "--nit",
            NIT,
            "--email",
            EMAIL,
            "--password-stdin",
        ],
        Some(&format!("{STRONG}\n")),
    )
    .ok();
    env.login("cliente", NIT, STRONG).ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.confirm(NIT, &code, STRONG2).ok();
    env.login("cliente", NIT, STRONG)
        .code(1)
        .stderr_has("Usuario o contraseña incorrectos.");
    env.login("cliente", NIT, STRONG2).ok();
    // The same code a second time.
    env.confirm(NIT, &code, "otra frase larga distinta del todo")
        .code(1)
        .stderr_has("el código no es válido");
    env.login("cliente", NIT, STRONG2).ok();
}

#[test]
fn expired_code_refused_without_sleeping() {
    let mut env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.advance(12 * 3600); // exactly at expiry: no longer valid
    env.confirm(NIT, &code, STRONG).code(1);
    // A fresh code works (the refused attempts are below every limit).
    env.request(NIT, EMAIL).ok();
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

#[test]
fn code_valid_until_just_before_expiry() {
    let mut env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.advance(12 * 3600 - 1);
    env.confirm(NIT, &code, STRONG).ok();
}

#[test]
fn five_wrong_submissions_kill_a_code() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let wrong = if code == "zzzzz" { "yyyyy" } else { "zzzzz" };
    for _ in 0..5 {
        env.confirm(NIT, wrong, STRONG).code(1);
    }
    env.confirm(NIT, &code, STRONG).code(1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM codes WHERE state = 'exhausted'"),
        1
    );
}

#[test]
fn four_wrong_submissions_leave_the_code_alive() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    for _ in 0..4 {
        env.confirm(NIT, "zzzzz", STRONG).code(1);
    }
    env.confirm(NIT, &code, STRONG).ok();
}

#[test]
fn a_new_request_kills_the_old_code() {
    let mut env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let first = env.last_code();
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    let second = env.last_code();
    assert_eq!(env.mails().len(), 2);
    env.confirm(NIT, &first, STRONG).code(1);
    env.confirm(NIT, &second, STRONG).ok();
}

#[test]
fn purge_removes_expired_and_used_codes_once() {
    let mut env = Env::new();
    env.add_cliente();
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    env.add_user("cliente", "830015428", "c@example.co", &[])
        .ok();
    // One used, one expired, one still pending.
    env.request(NIT, EMAIL).ok();
    env.confirm(NIT, &env.last_code(), STRONG).ok();
    env.request("800003122", "b@example.co").ok();
    env.advance(11 * 3600);
    env.request("830015428", "c@example.co").ok();
    env.advance(2 * 3600);
    assert_eq!(env.count("SELECT COUNT(*) FROM codes"), 3);

    let dry = env.run(&["--json", "codes", "purge", "--dry-run"], None);
    assert_eq!(dry.ok().json()["codes"], 2);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM codes"),
        3,
        "dry run changes nothing"
    );

    let r = env.run(&["codes", "purge", "--json"], None);
    let v = r.ok().json();
    assert_eq!(v["codes"], 2);
    assert_eq!(v["dry_run"], false);
    assert_eq!(env.count("SELECT COUNT(*) FROM codes"), 1);
    assert_eq!(
        env.count("SELECT COUNT(*) FROM codes WHERE state = 'pending'"),
        1
    );
    let again = env.run(&["--json", "codes", "purge"], None);
    assert_eq!(again.ok().json()["codes"], 0);
}

#[test]
fn request_answer_is_identical_whatever_the_account() {
    let mut env = Env::new();
    env.add_cliente();
    env.add_user(
        "proveedor",
        "800003122",
        "ventas@acme.co",
        &["--username", "acme"],
    )
    .ok();
    let cases: Vec<Vec<&str>> = vec![
        // real account
        vec![
            "reset", "request", "--type", "cliente", "--nit", NIT, "--email", EMAIL,
        ],
        // unknown NIT
        vec![
            "reset",
            "request",
            "--type",
            "cliente",
            "--nit",
            "830015428",
            "--email",
            EMAIL,
        ],
        // wrong email
        vec![
            "reset",
            "request",
            "--type",
            "cliente",
            "--nit",
            NIT,
            "--email",
            "ana.gomez@example.com.co",
        ],
        // wrong type
        vec![
            "reset",
            "request",
            "--type",
            "proveedor",
            "--nit",
            NIT,
            "--email",
            EMAIL,
        ],
        // throttled (same as the first, within 60 s)
        vec![
            "reset", "request", "--type", "cliente", "--nit", NIT, "--email", EMAIL,
        ],
    ];
    let mut answers = Vec::new();
    let mut json_answers = Vec::new();
    for args in &cases {
        let r = env.run(args, None);
        answers.push((r.code, r.stdout.clone(), r.stderr.clone()));
        let mut json_args = vec!["--json"];
        json_args.extend_from_slice(args);
        env.advance(1);
        let j = env.run(&json_args, None);
        json_answers.push((j.code, j.stdout.clone(), j.stderr.clone()));
    }
    for a in &answers[1..] {
        // The masked email differs only when the typed email differs.
        let normalise = |s: &str| s.replace("[a****@example.com.co]", "[a****@example.co]");
        assert_eq!(
            (a.0, normalise(&a.1), &a.2),
            (answers[0].0, answers[0].1.clone(), &answers[0].2)
        );
    }
    for a in &json_answers[1..] {
        let normalise = |s: &str| s.replace("a****@example.com.co", "a****@example.co");
        assert_eq!(
            (a.0, normalise(&a.1)),
            (json_answers[0].0, json_answers[0].1.clone())
        );
    }
    assert_eq!(answers[0].0, 0);
    // Only the real request mailed anything.
    assert_eq!(env.mails().len(), 1);
}

#[test]
fn nit_check_digit_vectors_through_the_binary() {
    let env = Env::new();
    for (i, nit) in [
        "800.003.122-6",
        "830.015.428-5",
        "890.900.841-9",
        "900.206.480-2",
        "899.999.034-1",
        "17.343.020-1",
        "6.386.949-2",
    ]
    .iter()
    .enumerate()
    {
        let email = format!("c{i}@example.co");
        let r = env.run(
            &[
                "--json",
                "user",
                "add",
                "--nit",
                nit,
                "--email",
                &email,
                "--no-password",
            ],
            None,
        );
        let v = r.ok().json();
        assert_eq!(v["account"]["nit_display"], *nit);
        assert_eq!(
            v["account"]["nit"],
            nit.replace(['.', '-'], "")[..nit.replace(['.', '-'], "").len() - 1]
        );
    }
    let r = env.run(
        &[
            "user",
            "add",
            "--nit",
            "800.003.122-7",
            "--email",
            "x@example.co",
            "--no-password",
        ],
        None,
    );
    r.code(65)
        .stderr_has("El dígito verificador de 800003122 es 6, no 7");
}

#[test]
fn missing_value_without_terminal_is_a_usage_error_and_never_waits() {
    let env = Env::new();
    env.add_cliente();
    let cases: &[(&[&str], &str)] = &[
        (&["reset", "request", "--email", EMAIL], "--user"),
        (&["reset", "request", "--nit", NIT], "--email"),
        (&["reset", "confirm", "--code", "abcde"], "--user"),
        (&["reset", "confirm", "--user", NIT], "--code"),
        (
            &["reset", "confirm", "--user", NIT, "--code", "abcde"],
            "--password-stdin",
        ),
        (&["login", "--user", NIT], "--password-stdin"),
        (&["login"], "--user"),
        (&["user", "add", "--email", EMAIL, "--no-password"], "--nit"),
        (
            &["user", "add", "--nit", "800003122", "--email", EMAIL],
            "--password-stdin",
        ),
    ];
    for (args, flag) in cases {
        // stdin is a pipe that stays open: a read would block forever.
        let mut c = env.command(args);
        c.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        let _keep_open = child.stdin.take();
        let out = wait_with_deadline(child, std::time::Duration::from_secs(20));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?} should name {flag}: {stderr}"
        );
    }
}

#[test]
fn database_holds_no_code_or_password_in_clear() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.confirm(NIT, &code, STRONG).ok();
    env.request(NIT, EMAIL).ok(); // throttled, still: nothing in clear
    let mut env2 = env;
    env2.advance(120);
    env2.request(NIT, EMAIL).ok();
    let pending = env2.last_code();
    env2.login("cliente", NIT, STRONG).ok();
    let mut bytes = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let p = format!("{}{suffix}", env2.db.display());
        if let Ok(b) = std::fs::read(&p) {
            bytes.extend(b);
        }
    }
    assert!(bytes.len() > 4096);
    let hay = String::from_utf8_lossy(&bytes);
    for secret in [code.as_str(), pending.as_str(), STRONG, "caballo"] {
        assert!(
            !hay.contains(secret),
            "{secret:?} found in the database files"
        );
    }
    // Hashes are there instead.
    assert!(hay.contains("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[cfg(unix)]
#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let mode = std::fs::metadata(&env.db).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "db mode {mode:o}");
    let dir_mode = std::fs::metadata(env.db.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700, "db folder mode {dir_mode:o}");
    let outbox_mode = std::fs::metadata(&env.outbox).unwrap().permissions().mode() & 0o777;
    assert_eq!(outbox_mode, 0o700, "outbox mode {outbox_mode:o}");
    for m in env.mails() {
        let mode = std::fs::metadata(&m.file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "mail file {mode:o}");
    }
}

#[test]
fn default_database_is_in_the_users_data_folder() {
    let env = Env::new();
    let mut c = env.command(&[
        "user",
        "add",
        "--nit",
        NIT,
        "--email",
        EMAIL,
        "--no-password",
    ]);
    c.env_remove("RECUPERA_DB").env_remove("RECUPERA_OUTBOX");
    let r = run_command(c, None);
    r.ok();
    let expected = env.root.join(".local/share/recupera/recupera.db");
    assert!(expected.is_file(), "{} missing", expected.display());
}

#[test]
fn global_flags_before_or_after_the_command() {
    let env = Env::new();
    env.add_cliente();
    let a = env.run(&["--json", "user", "show", NIT], None);
    let b = env.run(&["user", "show", NIT, "--json"], None);
    assert_eq!(a.ok().json(), b.ok().json());
    let db = env.db.display().to_string();
    let mut c = env.command(&["user", "show", NIT, "--db", &db, "--json"]);
    c.env_remove("RECUPERA_DB");
    assert_eq!(run_command(c, None).ok().json(), a.json());
}

#[test]
fn proveedor_by_nit_username_or_email() {
    let env = Env::new();
    env.run(
        &[
            "user",
            "add",
            "--type",
            "proveedor",
            "--nit",
            "800003122",
            "--username",
            "acme",
            "--email",
            "ventas@acme.co",
            "--password-stdin",
        ],
        Some(&format!("{STRONG}\n")),
    )
    .ok();
    for user in ["800003122", "acme", "ACME", "ventas@acme.co"] {
        env.login("proveedor", user, STRONG).ok();
    }
    // A cliente login with the proveedor's NIT finds nothing.
    env.login("cliente", "800003122", STRONG).code(1);
    // Request by username, confirm by email.
    env.run(
        &[
            "reset",
            "request",
            "--type",
            "proveedor",
            "--user",
            "acme",
            "--email",
            "ventas@acme.co",
        ],
        None,
    )
    .ok();
    env.confirm("ventas@acme.co", &env.last_code(), STRONG2)
        .ok();
    env.login("proveedor", "acme", STRONG2).ok();
}

#[test]
fn same_nit_as_cliente_and_proveedor_is_resolved_by_the_code() {
    let mut env = Env::new();
    env.add_cliente();
    env.add_user("proveedor", NIT, "compras@example.co", &[])
        .ok();
    env.run(
        &[
            "reset",
            "request",
            "--type",
            "proveedor",
            "--nit",
            NIT,
            "--email",
            "compras@example.co",
        ],
        None,
    )
    .ok();
    let code = env.last_code();
    env.confirm(NIT, &code, STRONG).ok();
    env.login("proveedor", NIT, STRONG).ok();
    env.login("cliente", NIT, STRONG).code(1);
    // With live codes on both, the NIT alone is ambiguous: --type settles it.
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    let c1 = env.last_code();
    env.run(
        &[
            "reset",
            "request",
            "--type",
            "proveedor",
            "--nit",
            NIT,
            "--email",
            "compras@example.co",
        ],
        None,
    )
    .ok();
    // Refused like no match (exit 1, nothing counted), with a hint that
    // depends only on what was typed.
    let r = env.confirm(NIT, &c1, STRONG2);
    r.code(1).stderr_has("indique --type");
    let unknown = env.confirm("830015428", &c1, STRONG2);
    assert_eq!(unknown.stderr, r.stderr);
    assert_eq!(env.count("SELECT SUM(failed_confirms) FROM accounts"), 0);
    env.run(
        &[
            "reset",
            "confirm",
            "--type",
            "cliente",
            "--user",
            NIT,
            "--code",
            &c1,
            "--password-stdin",
        ],
        Some(&format!("{STRONG2}\n")),
    )
    .ok();
}

#[test]
fn account_already_exists_is_bad_data() {
    let env = Env::new();
    env.add_cliente();
    env.add_user("cliente", "900.102.030-4", "otra@example.co", &[])
        .code(65)
        .stderr_has("Ya existe una cuenta");
    assert_eq!(env.count("SELECT COUNT(*) FROM accounts"), 1);
}

#[test]
fn json_documents_parse() {
    let env = Env::new();
    let v = env
        .run(
            &[
                "--json",
                "user",
                "add",
                "--nit",
                NIT,
                "--email",
                EMAIL,
                "--no-password",
            ],
            None,
        )
        .ok()
        .json();
    assert_eq!(v["status"], "created");
    assert_eq!(v["account"]["has_password"], false);
    let v = env
        .run(
            &["--json", "reset", "request", "--nit", NIT, "--email", EMAIL],
            None,
        )
        .ok()
        .json();
    assert_eq!(v["status"], "sent");
    assert_eq!(v["email_masked"], "a****@example.co");
    let code = env.last_code();
    let v = env
        .run(
            &[
                "--json",
                "reset",
                "confirm",
                "--user",
                NIT,
                "--code",
                &code,
                "--password-stdin",
            ],
            Some(&format!("{STRONG}\n")),
        )
        .ok()
        .json();
    assert_eq!(v["status"], "updated");
    let v = env
        .run(
            &["--json", "login", "--user", NIT, "--password-stdin"],
            Some(&format!("{STRONG}\n")),
        )
        .ok()
        .json();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["account"]["nit"], NIT);
    // Errors are JSON too, with the exit code.
    let r = env.run(
        &["--json", "login", "--user", NIT, "--password-stdin"],
        Some("nope nope nope nope\n"),
    );
    let v = r.code(1).json();
    assert_eq!(v["status"], "error");
    assert_eq!(v["exit_code"], 1);
}

#[test]
fn the_code_can_come_from_the_environment_instead_of_argv() {
    let env = Env::new();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let mut c = env.command(&["reset", "confirm", "--user", NIT, "--password-stdin"]);
    c.env("RECUPERA_CODE", env.last_code());
    run_command(c, Some(&format!("{STRONG}\n"))).ok();
    env.login("cliente", NIT, STRONG).ok();
}

#[test]
fn demo_runs_the_manual_and_ends_logged_in() {
    let env = Env::new();
    let r = env.run(&["demo"], None);
    r.ok();
    for step in ["01.", "02.", "03.", "04.", "05.", "06.", "07."] {
        assert!(r.stdout.contains(step), "missing step {step}: {}", r.stdout);
    }
    assert!(r.stdout.contains("Sesión iniciada"));
    assert!(!env.db.exists(), "the demo never touches the real database");
}
