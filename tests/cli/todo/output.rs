//! What scripts parse (`--json`, one document per command) and what people
//! read (tables, two languages, stdout vs stderr).

use crate::util::*;
use serde_json::Value;

fn json(env: &Env, args: &[&str], stdin: Option<&str>) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let r = env.run(&a, stdin);
    assert!(
        r.stdout.trim().lines().count() == 1,
        "one document: {}",
        r.stdout
    );
    r.json()
}

fn has(v: &Value, fields: &[&str]) {
    for f in fields {
        assert!(v.get(f).is_some(), "field {f} missing in {v}");
    }
}

#[test]
fn every_command_prints_one_parseable_json_document() {
    let mut env = Env::new();
    let v = json(
        &env,
        &[
            "user",
            "add",
            "--nit",
            NIT,
            "--email",
            EMAIL,
            "--name",
            "Ana Gómez",
            "--no-password",
        ],
        None,
    );
    has(
        &v["account"],
        &[
            "id",
            "type",
            "nit",
            "nit_display",
            "username",
            "email",
            "name",
            "lang",
            "has_password",
            "login_locked_until",
            "recovery_enabled",
            "failed_logins",
            "failed_confirmations",
            "last_login_at",
            "password_changed_at",
            "created_at",
        ],
    );
    let list = json(&env, &["user", "list"], None);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let show = json(&env, &["user", "show", NIT], None);
    has(&show, &["pending_codes", "recovery_enabled"]);
    assert_eq!(show["pending_codes"], 0);

    let req = json(
        &env,
        &["reset", "request", "--nit", NIT, "--email", EMAIL],
        None,
    );
    has(&req, &["status", "email_masked", "expires_in_hours"]);
    assert_eq!(json(&env, &["user", "show", NIT], None)["pending_codes"], 1);
    let codes = json(&env, &["codes", "list"], None);
    let c = &codes[0];
    has(
        c,
        &[
            "id",
            "account_id",
            "type",
            "nit",
            "created_at",
            "expires_at",
            "attempts",
            "state",
        ],
    );
    assert_eq!(c["state"], "pending");
    assert!(!c.to_string().contains("argon2"), "no hash in the listing");
    let mail = json(&env, &["mail", "list"], None);
    has(
        &mail[0],
        &[
            "id",
            "account_id",
            "recipient",
            "kind",
            "created_at",
            "attempts",
            "last_error",
            "state",
        ],
    );
    let retry = json(&env, &["mail", "retry"], None);
    has(
        &retry["report"],
        &["sent", "dropped", "failed", "not_tried"],
    );

    let code = env.last_code();
    let conf = json(
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
        Some(&format!("{STRONG}\n")),
    );
    assert_eq!(conf["status"], "updated");
    let login = json(
        &env,
        &["login", "--user", NIT, "--password-stdin"],
        Some(&format!("{STRONG}\n")),
    );
    assert_eq!(login["status"], "ok");
    let unlock = json(&env, &["user", "unlock", NIT], None);
    assert_eq!(unlock["status"], "unlocked");
    env.advance(13 * 3600);
    let purge = json(&env, &["codes", "purge"], None);
    has(&purge, &["dry_run", "codes", "mails", "requests"]);
    let audit = json(&env, &["audit", "--limit", "3"], None);
    assert_eq!(audit.as_array().unwrap().len(), 3);
    has(
        &audit[0],
        &[
            "id",
            "at",
            "agent",
            "account_id",
            "subject",
            "event",
            "outcome",
            "detail",
        ],
    );
    let demo = json(&env, &["demo"], None);
    assert_eq!(demo["status"], "ok");
    assert!(demo["steps"].as_array().unwrap().len() >= 8);
    // Errors too: one document, with the exit code.
    let r = env.run(&["--json", "user", "show", "830015428"], None);
    r.code(65);
    let e = r.json();
    assert_eq!(e["status"], "error");
    assert_eq!(e["exit_code"], 65);
    let r = env.run(&["--json", "user", "shw"], None);
    r.code(2);
    assert_eq!(r.json()["error"], "usage");
}

#[test]
fn an_empty_list_is_an_empty_array() {
    let env = Env::new();
    for args in [
        &["user", "list"][..],
        &["codes", "list"][..],
        &["mail", "list"][..],
        &["audit"][..],
    ] {
        assert_eq!(json(&env, args, None), serde_json::json!([]), "{args:?}");
    }
}

#[test]
fn tables_in_a_pipe_are_plain_text_and_messages_go_to_stderr() {
    let env = Env::new();
    env.add_user(
        "proveedor",
        "800003122",
        "ventas@acme.co",
        &["--username", "acme", "--name", "Acme S.A.S."],
    )
    .ok();
    env.add_cliente();
    let r = env.run(&["user", "list"], None);
    r.ok();
    for word in [
        "Tipo",
        "Usuario",
        "Proveedor",
        "800.003.122-6",
        "acme",
        "Cliente Factura",
    ] {
        assert!(r.stdout.contains(word), "{word}: {}", r.stdout);
    }
    assert!(
        !r.stdout.contains('│') && !r.stdout.contains('─'),
        "ASCII in a pipe"
    );
    assert!(r.stderr.is_empty());
    let show = env.run(&["user", "show", "acme", "--type", "proveedor"], None);
    show.ok()
        .stdout_has("Recuperación")
        .stdout_has("habilitada");
    // An error: message on stderr, nothing on stdout.
    let e = env.run(&["user", "show", "830015428"], None);
    e.code(65);
    assert!(e.stdout.is_empty());
    assert!(e.stderr.contains("No hay ninguna cuenta"));
}

#[test]
fn english_messages_and_an_english_account() {
    let env = Env::new();
    let r = env.run(
        &[
            "--lang",
            "en",
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
    r.ok()
        .stdout_has("Account created: Invoice client 900.102.030-4");
    assert_eq!(
        json(&env, &["user", "show", NIT], None)["lang"],
        "en",
        "--lang typed: the account's mail language too"
    );
    let mut c = env.command(&[
        "user",
        "add",
        "--nit",
        "800003122",
        "--email",
        "b@example.co",
        "--no-password",
    ]);
    c.env("RECUPERA_LANG", "en");
    run_command(c, None).ok().stdout_has("Account created");
    assert_eq!(
        json(&env, &["user", "show", "800003122"], None)["lang"],
        "es",
        "from the environment: agent's language only"
    );
    let mut c = env.command(&["login", "--user", NIT, "--password-stdin"]);
    c.env("LANG", "en_US.UTF-8");
    run_command(c, Some("whatever it is\n"))
        .code(1)
        .stderr_has("Wrong username or password.");
    env.run(
        &[
            "--lang", "en", "reset", "confirm", "--user", NIT, "--code", "abcde",
        ],
        None,
    )
    .code(2)
    .stderr_has("Missing password: use --password-stdin");
}

#[test]
fn help_and_version_for_agents() {
    let env = Env::new();
    let r = env.run(&["--help"], None);
    r.ok()
        .stdout_has("Uso:")
        .stdout_has("reset")
        .stdout_has("Códigos de salida");
    let r = env.run(&["--lang", "en", "reset", "confirm", "--help"], None);
    r.ok()
        .stdout_has("Set a new password with the emailed code")
        .stdout_has("Examples:");
    env.run(&["--version"], None).ok().stdout_has("recupera ");
    env.run(&["rset"], None).code(2).stderr_has("«reset»");
}
