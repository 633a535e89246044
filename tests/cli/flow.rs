//! The manual's flow over the real binary, on both engines: a real SQLite
//! file and a real PostgreSQL server.

use crate::engines;
use crate::util::*;

engines!(
    whole_flow_from_registration_to_login,
    old_password_refused_after_reset_and_code_single_use,
    expired_code_refused_without_sleeping,
    code_valid_until_just_before_expiry,
    five_wrong_submissions_kill_a_code,
    four_wrong_submissions_leave_the_code_alive,
    a_new_request_kills_the_old_code,
    purge_removes_expired_and_used_codes_once,
    request_answer_is_identical_whatever_the_account,
    nit_check_digit_vectors_through_the_binary,
    missing_value_without_terminal_is_a_usage_error_and_never_waits,
    database_holds_no_code_or_password_in_clear,
    global_flags_before_or_after_the_command,
    proveedor_by_nit_username_or_email,
    same_nit_as_cliente_and_proveedor_is_resolved_by_the_code,
    account_already_exists_is_bad_data,
    json_documents_parse,
    the_code_can_come_from_the_environment_instead_of_argv,
    demo_runs_the_manual_and_ends_logged_in,
    data_lands_in_the_engine_named_by_db_status,
);

fn whole_flow_from_registration_to_login(env: &mut Env) {
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

fn old_password_refused_after_reset_and_code_single_use(env: &mut Env) {
    env.cli([
        "user",
        "add",
        "--nit",
        NIT,
        "--email",
        EMAIL,
        "--password-stdin",
    ])
    .stdin(&format!("{STRONG}\n"))
    .run()
    .ok();
    env.login("cliente", NIT, STRONG).ok();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.confirm(NIT, &code, STRONG2).ok();
    env.login_refused("cliente", NIT, STRONG);
    env.login("cliente", NIT, STRONG2).ok();
    // The same code a second time.
    env.confirm_refused(NIT, &code, "otra frase larga distinta del todo")
        .stderr_has("el código no es válido");
    env.login("cliente", NIT, STRONG2).ok();
}

fn expired_code_refused_without_sleeping(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.advance(12 * 3600); // exactly at expiry: no longer valid
    env.confirm_refused(NIT, &code, STRONG);
    assert_eq!(env.codes_in("expired"), 1, "expired before any purge");
    // A fresh code works (the refused attempts are below every limit).
    env.request(NIT, EMAIL).ok();
    env.confirm(NIT, &env.last_code(), STRONG).ok();
}

fn code_valid_until_just_before_expiry(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.advance(12 * 3600 - 1);
    env.confirm(NIT, &code, STRONG).ok();
}

fn five_wrong_submissions_kill_a_code(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let wrong = if code == "zzzzz" { "yyyyy" } else { "zzzzz" };
    for i in 0..5 {
        env.confirm_refused(NIT, wrong, STRONG);
        assert_eq!(env.codes()[0]["attempts"], i + 1);
    }
    env.confirm_refused(NIT, &code, STRONG);
    assert_eq!(env.codes_in("exhausted"), 1);
    assert_eq!(env.codes()[0]["attempts"], 5, "a dead code counts no more");
}

fn four_wrong_submissions_leave_the_code_alive(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let wrong = if code == "zzzzz" { "yyyyy" } else { "zzzzz" };
    for _ in 0..4 {
        env.confirm_refused(NIT, wrong, STRONG);
    }
    assert_eq!(env.codes_in("pending"), 1);
    env.confirm(NIT, &code, STRONG).ok();
    assert_eq!(env.codes_in("used"), 1);
}

fn a_new_request_kills_the_old_code(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let first = env.last_code();
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    let second = env.last_code();
    assert_eq!(env.mails().len(), 2);
    assert_ne!(first, second);
    assert_eq!(env.codes_in("replaced"), 1);
    env.confirm_refused(NIT, &first, STRONG);
    env.confirm(NIT, &second, STRONG).ok();
}

fn purge_removes_expired_and_used_codes_once(env: &mut Env) {
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
    let states: Vec<String> = env.codes().iter().map(|c| c["state"].to_string()).collect();
    assert_eq!(states, ["\"pending\"", "\"expired\"", "\"used\""]);

    let dry = env.cli(["--json", "codes", "purge", "--dry-run"]).ok();
    assert_eq!(dry.json()["codes"], 2);
    assert_eq!(env.codes().len(), 3, "dry run changes nothing");

    let v = env.cli(["codes", "purge", "--json"]).ok().json();
    assert_eq!(v["codes"], 2);
    assert_eq!(v["dry_run"], false);
    assert_eq!(env.codes().len(), 1);
    assert_eq!(env.codes_in("pending"), 1);
    let again = env.cli(["--json", "codes", "purge"]).ok();
    assert_eq!(again.json()["codes"], 0);
    assert_eq!(env.audit_count("codes.purge", Some("ok")), 2);
}

fn request_answer_is_identical_whatever_the_account(env: &mut Env) {
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
    // Text answers: the real account first, then every miss.
    let mut answers = Vec::new();
    for args in &cases {
        let r = env.run(args, None);
        answers.push((r.code, r.stdout.clone(), r.stderr.clone()));
    }
    // The masked email differs only when the typed email differs.
    let normalise = |s: &str| {
        s.replace("[a****@example.com.co]", "[a****@example.co]")
            .replace("a****@example.com.co", "a****@example.co")
    };
    for a in &answers[1..] {
        assert_eq!(
            (a.0, normalise(&a.1), &a.2),
            (answers[0].0, answers[0].1.clone(), &answers[0].2)
        );
    }
    assert_eq!(answers[0].0, 0);
    assert_eq!(
        env.mails().len(),
        1,
        "only the real request mailed anything"
    );
    // JSON answers, a real hit (past the 60 s throttle, so a code is
    // really issued) against every miss.
    env.advance(61);
    let mut json_answers = Vec::new();
    for args in &cases[..4] {
        let j = env.cli(args.iter()).json().run();
        json_answers.push((j.code, normalise(&j.stdout), j.stderr.clone()));
    }
    assert_eq!(env.mails().len(), 2, "the JSON hit was a real hit");
    for a in &json_answers[1..] {
        assert_eq!(a, &json_answers[0]);
    }
    let details: Vec<String> = env
        .audit(&["--event", "reset.request"])
        .iter()
        .map(|e| e["detail"].as_str().unwrap_or_default().to_string())
        .collect();
    for d in ["issued", "unknown_account", "wrong_email", "throttled"] {
        assert!(
            details.iter().any(|x| x == d),
            "{d} not audited: {details:?}"
        );
    }
}

fn nit_check_digit_vectors_through_the_binary(env: &mut Env) {
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
        let r = env
            .cli([
                "--json",
                "user",
                "add",
                "--nit",
                nit,
                "--email",
                &email,
                "--no-password",
            ])
            .run();
        let v = r.ok().json();
        assert_eq!(v["account"]["nit_display"], *nit);
        assert_eq!(
            v["account"]["nit"],
            nit.replace(['.', '-'], "")[..nit.replace(['.', '-'], "").len() - 1]
        );
    }
    let r = env
        .cli([
            "user",
            "add",
            "--nit",
            "800.003.122-7",
            "--email",
            "x@example.co",
            "--no-password",
        ])
        .run();
    r.code(65)
        .stderr_has("El dígito verificador de 800003122 es 6, no 7");
}

fn missing_value_without_terminal_is_a_usage_error_and_never_waits(env: &mut Env) {
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

fn database_holds_no_code_or_password_in_clear(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    env.confirm(NIT, &code, STRONG).ok();
    env.request(NIT, EMAIL).ok(); // throttled, still: nothing in clear
    env.advance(120);
    env.request(NIT, EMAIL).ok();
    let pending = env.last_code();
    env.login("cliente", NIT, STRONG).ok();
    let hay = env.dump();
    assert!(hay.len() > 1000);
    for secret in [code.as_str(), pending.as_str(), STRONG, "caballo"] {
        assert!(!hay.contains(secret), "{secret:?} found in the database");
    }
    // Hashes are there instead.
    assert!(hay.contains("$argon2id$v=19$m=19456,t=2,p=1$"));
}

#[cfg(unix)]
#[test]
fn database_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite();
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let mode = std::fs::metadata(&env.db_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "db mode {mode:o}");
    let dir_mode = std::fs::metadata(env.db_path.parent().unwrap())
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
    let env = Env::sqlite();
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
    // The outbox sits beside the database.
    let mut c = env.command(&["reset", "request", "--nit", NIT, "--email", EMAIL]);
    c.env_remove("RECUPERA_DB").env_remove("RECUPERA_OUTBOX");
    run_command(c, None).ok();
    assert_eq!(
        read_mails(&env.root.join(".local/share/recupera/outbox")).len(),
        1
    );
    // XDG_DATA_HOME, when set, is the data folder.
    let xdg = env.root.join("xdg");
    let mut c = env.command(&[
        "user",
        "add",
        "--nit",
        NIT,
        "--email",
        EMAIL,
        "--no-password",
    ]);
    c.env_remove("RECUPERA_DB").env("XDG_DATA_HOME", &xdg);
    run_command(c, None).ok();
    assert!(xdg.join("recupera/recupera.db").is_file());
}

fn global_flags_before_or_after_the_command(env: &mut Env) {
    env.add_cliente();
    let a = env.cli(["--json", "user", "show", NIT]).run();
    let b = env.cli(["user", "show", NIT, "--json"]).run();
    assert_eq!(a.ok().json(), b.ok().json());
    let db = env.db.clone();
    let mut c = env.command(&["user", "show", NIT, "--db", &db, "--json"]);
    c.env_remove("RECUPERA_DB");
    assert_eq!(run_command(c, None).ok().json(), a.json());
}

fn proveedor_by_nit_username_or_email(env: &mut Env) {
    env.cli([
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
    ])
    .stdin(&format!("{STRONG}\n"))
    .run()
    .ok();
    for user in ["800003122", "acme", "ACME", "ventas@acme.co"] {
        env.login("proveedor", user, STRONG).ok();
    }
    // A cliente login with the proveedor's NIT finds nothing.
    env.login_refused("cliente", "800003122", STRONG);
    // Request by username, confirm by email.
    env.cli([
        "reset",
        "request",
        "--type",
        "proveedor",
        "--user",
        "acme",
        "--email",
        "ventas@acme.co",
    ])
    .run()
    .ok();
    env.confirm("ventas@acme.co", &env.last_code(), STRONG2)
        .ok();
    env.login("proveedor", "acme", STRONG2).ok();
}

fn same_nit_as_cliente_and_proveedor_is_resolved_by_the_code(env: &mut Env) {
    env.add_cliente();
    env.add_user("proveedor", NIT, "compras@example.co", &[])
        .ok();
    env.request_as("proveedor", NIT, "compras@example.co").ok();
    let code = env.last_code();
    env.confirm(NIT, &code, STRONG).ok();
    env.login("proveedor", NIT, STRONG).ok();
    env.login_refused("cliente", NIT, STRONG);
    // With live codes on both, the NIT alone is ambiguous: --type settles it.
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    let c1 = env.last_code();
    env.request_as("proveedor", NIT, "compras@example.co").ok();
    // Refused like no match (exit 1, nothing counted), with a hint that
    // depends only on what was typed.
    let r = env.confirm(NIT, &c1, STRONG2);
    r.code(1).stderr_has("indique --type");
    let unknown = env.confirm("830015428", &c1, STRONG2);
    assert_eq!(unknown.stderr, r.stderr);
    for kind in ["cliente", "proveedor"] {
        assert_eq!(env.account_of(kind, NIT)["failed_confirmations"], 0);
    }
    let pending: Vec<_> = env
        .codes()
        .into_iter()
        .filter(|c| c["state"] == "pending")
        .collect();
    assert_eq!(pending.len(), 2);
    assert!(
        pending.iter().all(|c| c["attempts"] == 0),
        "nothing counted"
    );
    env.cli([
        "reset",
        "confirm",
        "--type",
        "cliente",
        "--user",
        NIT,
        "--code",
        &c1,
        "--password-stdin",
    ])
    .stdin(&format!("{STRONG2}\n"))
    .run()
    .ok();
}

fn account_already_exists_is_bad_data(env: &mut Env) {
    env.add_cliente();
    env.add_user("cliente", "900.102.030-4", "otra@example.co", &[])
        .code(65)
        .stderr_has("Ya existe una cuenta");
    assert_eq!(env.status()["accounts"], 1);
}

fn json_documents_parse(env: &mut Env) {
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
    let r = env
        .cli(["--json", "login", "--user", NIT, "--password-stdin"])
        .stdin("nope nope nope nope\n")
        .run();
    let v = r.code(1).json();
    assert_eq!(v["status"], "error");
    assert_eq!(v["exit_code"], 1);
}

fn the_code_can_come_from_the_environment_instead_of_argv(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let mut c = env.command(&["reset", "confirm", "--user", NIT, "--password-stdin"]);
    c.env("RECUPERA_CODE", env.last_code());
    run_command(c, Some(&format!("{STRONG}\n"))).ok();
    env.login("cliente", NIT, STRONG).ok();
}

fn demo_runs_the_manual_and_ends_logged_in(env: &mut Env) {
    let r = env.cli(["demo"]).run();
    r.ok();
    for step in ["01.", "02.", "03.", "04.", "05.", "06.", "07."] {
        assert!(r.stdout.contains(step), "missing step {step}: {}", r.stdout);
    }
    assert!(r.stdout.contains("Sesión iniciada"));
    // The demo never touches the real database: on SQLite it does not
    // even make the file.
    match env.engine {
        Engine::Sqlite => assert!(!env.db_path.exists()),
        Engine::Postgres => assert_eq!(env.status()["accounts"], 0),
    }
}

fn data_lands_in_the_engine_named_by_db_status(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let s = env.status();
    let engine = match env.engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    assert_eq!(s["engine"], engine);
    assert_eq!(s["schema_version"], 5);
    assert_eq!(
        (s["accounts"].as_i64(), s["codes_pending"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["mail_queued"], 0, "the outbox delivered it");
    assert_eq!(s["audit"], 3, "user.add, reset.request, mail.deliver");
    // And it is really there, read without recupera.
    match env.engine {
        Engine::Sqlite => assert_eq!(env.count("SELECT COUNT(*) FROM accounts"), 1),
        Engine::Postgres => {
            let mut c = ::postgres::Client::connect(&env.db, ::postgres::NoTls).unwrap();
            let row = c.query_one("SELECT nit, email FROM accounts", &[]).unwrap();
            assert_eq!(row.get::<_, String>(0), NIT);
            assert_eq!(row.get::<_, String>(1), EMAIL);
            assert!(!env.db_path.exists(), "no SQLite file was made");
        }
    }
}
