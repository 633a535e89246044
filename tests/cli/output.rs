//! What scripts parse (`--json`, one document per command, errors
//! included, each with its kind and exit code) and what people read
//! (tables, two languages, stdout vs stderr), on both engines.

use crate::engines;
use crate::smtp_server::reserve_port;
use crate::util::*;
use serde_json::{Value, json};
use std::process::Stdio;

engines!(
    every_command_prints_one_parseable_json_document,
    support_desk_commands_print_their_documents,
    db_status_counts_what_is_stored,
    an_empty_list_is_an_empty_array,
    tables_in_a_pipe_are_plain_text_and_messages_go_to_stderr,
    english_messages_and_an_english_account,
    help_and_version_for_agents,
    every_error_is_one_document_with_its_kind_and_exit_code,
    a_stdout_that_cannot_be_written_is_an_io_error,
    a_stdout_that_cannot_be_written_is_an_io_error_with_json_too,
);

/// Every field of an account (`user list`, and inside the documents of
/// `user add/disable/enable/edit/unlock`); `user show` adds pending_codes.
const ACCOUNT: &[&str] = &[
    "id",
    "type",
    "nit",
    "nit_display",
    "username",
    "email",
    "name",
    "lang",
    "has_password",
    "disabled",
    "disabled_at",
    "disabled_reason",
    "login_locked_until",
    "recovery_enabled",
    "recovery_suspended_until",
    "requests_last_24h",
    "next_request_at",
    "failed_logins",
    "failed_confirmations",
    "last_login_at",
    "password_changed_at",
    "created_at",
];

/// T0 as the documents write it.
const T0_RFC3339: &str = "2026-02-24T18:46:38Z";

/// Runs with `--json` and returns its one document (whatever the exit
/// code: errors are documents too).
fn doc(c: Cmd<'_>) -> (Run, Value) {
    let r = c.json().run();
    assert_eq!(
        r.stdout.trim().lines().count(),
        1,
        "one document on one line: {:?}",
        r.stdout
    );
    let v = r.json();
    (r, v)
}

/// A document of a command that succeeds.
fn ok_doc(c: Cmd<'_>) -> Value {
    let (r, v) = doc(c);
    r.ok();
    v
}

/// The object's keys are exactly `fields`.
fn keys(v: &Value, fields: &[&str]) {
    let mut got: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = fields.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "in {v}");
}

fn account_keys(v: &Value) {
    keys(v, ACCOUNT);
}

/// An error document: its kind, its exit code (the process's too), its
/// message (the same one stderr shows), and nothing else.
fn error_doc(c: Cmd<'_>, kind: &str, code: i32) -> Value {
    let (r, v) = doc(c);
    r.code(code);
    keys(&v, &["status", "error", "exit_code", "message"]);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"], kind, "{v}");
    assert_eq!(v["exit_code"], code);
    let message = v["message"].as_str().unwrap();
    assert!(!message.is_empty());
    r.stderr_has(&format!("recupera: {message}"));
    v
}

fn every_command_prints_one_parseable_json_document(env: &mut Env) {
    let v = ok_doc(env.cli([
        "user",
        "add",
        "--nit",
        NIT,
        "--email",
        EMAIL,
        "--name",
        "Ana Gómez",
        "--no-password",
    ]));
    keys(&v, &["status", "account"]);
    assert_eq!(v["status"], "created");
    account_keys(&v["account"]);
    assert_eq!(v["account"]["nit"], NIT);
    assert_eq!(v["account"]["nit_display"], "900.102.030-4");
    assert_eq!(v["account"]["created_at"], T0_RFC3339);
    assert_eq!(v["account"]["has_password"], false);

    let list = ok_doc(env.cli(["user", "list"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    account_keys(&list[0]);
    let show = ok_doc(env.cli(["user", "show", NIT]));
    let mut with_pending = ACCOUNT.to_vec();
    with_pending.push("pending_codes");
    keys(&show, &with_pending);
    assert_eq!(show["pending_codes"], 0);

    let req = ok_doc(env.cli(["reset", "request", "--nit", NIT, "--email", EMAIL]));
    assert_eq!(
        req,
        json!({"status": "sent", "email_masked": "a****@example.co", "expires_in_hours": 12})
    );
    let show = ok_doc(env.cli(["user", "show", NIT]));
    assert_eq!(show["pending_codes"], 1);
    assert_eq!(show["requests_last_24h"], 1);
    let codes = ok_doc(env.cli(["codes", "list"]));
    let c = &codes[0];
    keys(
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
    assert_eq!(c["created_at"], T0_RFC3339);
    assert_eq!(c["expires_at"], "2026-02-25T06:46:38Z");
    assert!(!c.to_string().contains("argon2"), "no hash in the listing");
    let mail = ok_doc(env.cli(["mail", "list"]));
    keys(
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
            "finished_at",
        ],
    );
    assert_eq!(mail[0]["kind"], "reset_code");
    assert_eq!(mail[0]["state"], "sent");
    assert_eq!(mail[0]["id"], c["id"], "a reset mail is its code's message");
    let retry = ok_doc(env.cli(["mail", "retry"]));
    keys(&retry, &["status", "report"]);
    keys(
        &retry["report"],
        &["sent", "dropped", "failed", "not_tried"],
    );

    let code = env.last_code();
    let conf = ok_doc(env.confirm_cmd(NIT, &code, STRONG));
    assert_eq!(conf["status"], "updated");
    let login = ok_doc(
        env.cli(["login", "--user", NIT, "--password-stdin"])
            .stdin(&format!("{STRONG}\n")),
    );
    assert_eq!(login["status"], "ok");
    let unlock = ok_doc(env.cli(["user", "unlock", NIT]));
    keys(&unlock, &["status", "account"]);
    assert_eq!(unlock["status"], "unlocked");
    account_keys(&unlock["account"]);
    env.advance(13 * 3600);
    let purge = ok_doc(env.cli(["codes", "purge"]));
    keys(&purge, &["status", "dry_run", "codes", "mails"]);
    assert_eq!(purge["dry_run"], false);
    assert_eq!(purge["codes"], 1);
    let audit = ok_doc(env.cli(["audit", "--limit", "3"]));
    assert_eq!(audit.as_array().unwrap().len(), 3);
    keys(
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
    assert_eq!(audit[0]["agent"], "test-agent");
    let demo = ok_doc(env.cli(["demo"]));
    assert_eq!(demo["status"], "ok");
    assert!(demo["steps"].as_array().unwrap().len() >= 8);
}

fn support_desk_commands_print_their_documents(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();

    let v = ok_doc(env.cli(["user", "disable", NIT, "--reason", "Fraude reportado"]));
    keys(&v, &["status", "account"]);
    assert_eq!(v["status"], "disabled");
    account_keys(&v["account"]);
    assert_eq!(v["account"]["disabled"], true);
    assert_eq!(v["account"]["disabled_at"], T0_RFC3339);
    assert_eq!(v["account"]["disabled_reason"], "Fraude reportado");
    assert_eq!(v["account"]["recovery_enabled"], false);
    assert_eq!(env.codes_in("pending"), 0, "its pending code died");

    let v = ok_doc(env.cli(["user", "enable", NIT]));
    keys(&v, &["status", "account"]);
    assert_eq!(v["status"], "enabled");
    assert_eq!(v["account"]["disabled"], false);
    assert_eq!(v["account"]["disabled_at"], Value::Null);
    assert_eq!(v["account"]["disabled_reason"], Value::Null);
    assert_eq!(v["account"]["recovery_enabled"], true);

    env.advance(61);
    env.request(NIT, EMAIL).ok();
    let v = ok_doc(env.cli([
        "user",
        "edit",
        NIT,
        "--email",
        "nueva@example.co",
        "--name",
        "Ana G.",
    ]));
    keys(&v, &["status", "changes", "codes_killed", "account"]);
    assert_eq!(v["status"], "updated");
    assert_eq!(v["codes_killed"], 1, "a new email kills the pending code");
    account_keys(&v["account"]);
    assert_eq!(v["account"]["email"], "nueva@example.co");
    assert_eq!(v["account"]["name"], "Ana G.");
    let changes = v["changes"].as_array().unwrap();
    for ch in changes {
        keys(ch, &["field", "before", "after"]);
    }
    let email = changes.iter().find(|c| c["field"] == "email").unwrap();
    assert_eq!(email["before"], EMAIL);
    assert_eq!(email["after"], "nueva@example.co");
    // A name where there was none: before is null, not a "-" that a name
    // could be.
    let name = changes.iter().find(|c| c["field"] == "name").unwrap();
    assert_eq!(
        (&name["before"], &name["after"]),
        (&json!(null), &json!("Ana G."))
    );
    // The same values again: nothing to change.
    let v = ok_doc(env.cli(["user", "edit", NIT, "--name", "Ana G."]));
    assert_eq!(v["status"], "unchanged");
    assert_eq!(v["changes"], json!([]));
    assert_eq!(v["codes_killed"], 0);

    let v = ok_doc(env.cli(["user", "delete", NIT, "--yes"]));
    keys(
        &v,
        &[
            "status",
            "pseudonym",
            "audit_rows",
            "files_scrubbed",
            "outbox_removed",
            "outbox_failed",
        ],
    );
    assert_eq!(v["files_scrubbed"], true);
    // Its code and the edit's two notices (old and new address).
    assert!(v["outbox_removed"].as_u64().unwrap() >= 3, "{v}");
    assert_eq!(v["outbox_failed"], 0);
    assert_eq!(v["status"], "deleted");
    let pseudonym = v["pseudonym"].as_str().unwrap();
    assert!(!pseudonym.contains(NIT) && !pseudonym.is_empty());
    assert!(v["audit_rows"].as_i64().unwrap() > 0);
    assert_eq!(ok_doc(env.cli(["user", "list"])), json!([]));
    error_doc(env.cli(["user", "show", NIT]), "not_found", 65);
    // Deleting it again: its own kind, so a script can take it as done.
    error_doc(env.cli(["user", "delete", NIT, "--yes"]), "not_found", 65);
}

fn db_status_counts_what_is_stored(env: &mut Env) {
    let engine = match env.engine {
        Engine::Sqlite => "sqlite",
        Engine::Postgres => "postgres",
    };
    let fields = [
        "engine",
        "schema_version",
        "accounts",
        "codes_pending",
        "mail_queued",
        "audit",
    ];
    // A PostgreSQL database the program has not touched yet gets its
    // tables on first use; a SQLite file is made only by `user add` or
    // `user import`, and a status of none is refused.
    if env.engine == Engine::Sqlite {
        let r = env.cli(["db", "status"]).expect_exit(74);
        r.stderr_has("No existe la base de datos");
        assert!(!env.db_path.exists());
        let header = env.root.join("empty.csv");
        std::fs::write(&header, "nit,email\n").unwrap();
        env.cli(["user", "import", "--dry-run", header.to_str().unwrap()])
            .ok()
            .stdout_has("se crearían 0 cuentas");
        assert!(!env.db_path.exists(), "a dry run makes no file");
        env.empty_database();
    }
    let mut s = env.status();
    if env.engine == Engine::Sqlite {
        assert_eq!(s["audit"], 1, "the import's own row");
        s["audit"] = json!(0);
    }
    keys(&s, &fields);
    assert_eq!(
        s,
        json!({"engine": engine, "schema_version": 5, "accounts": 0, "codes_pending": 0,
               "mail_queued": 0, "audit": 0})
    );
    env.add_cliente();
    env.add_user("cliente", "800003122", "b@example.co", &[])
        .ok();
    // One code mailed, one stuck in the queue (its outbox is broken).
    env.request(NIT, EMAIL).ok();
    let good = env.outbox.clone();
    let file = env.root.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    env.outbox = file.join("outbox");
    env.request("800003122", "b@example.co").ok();
    env.outbox = good;
    let s = env.status();
    keys(&s, &fields);
    assert_eq!(s["engine"], engine);
    assert_eq!(s["schema_version"], 5);
    assert_eq!(s["accounts"], 2);
    assert_eq!(s["codes_pending"], 2);
    assert_eq!(s["mail_queued"], 1);
    let audit = env.audit(&[]).len();
    assert!(audit >= 4);
    assert_eq!(s["audit"], audit);
    // A code used is no longer pending; the queued mail goes out.
    env.confirm(NIT, &env.last_code(), STRONG).ok();
    env.cli(["mail", "retry"]).ok();
    let s = env.status();
    assert_eq!(s["codes_pending"], 1);
    assert_eq!(s["mail_queued"], 0);
}

fn an_empty_list_is_an_empty_array(env: &mut Env) {
    // Its one audit row, the import's, is filtered out below.
    env.empty_database();
    for args in [
        &["user", "list"][..],
        &["codes", "list"][..],
        &["mail", "list"][..],
        &["audit", "--event", "login"][..],
    ] {
        assert_eq!(ok_doc(env.cli(args)), json!([]), "{args:?}");
    }
}

fn tables_in_a_pipe_are_plain_text_and_messages_go_to_stderr(env: &mut Env) {
    env.add_user(
        "proveedor",
        "800003122",
        "ventas@acme.co",
        &["--username", "acme", "--name", "Acme S.A.S."],
    )
    .ok();
    env.add_cliente();
    let r = env.cli(["user", "list"]).ok();
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
        !r.stdout.contains('│') && !r.stdout.contains('─') && !r.stdout.contains('\x1b'),
        "ASCII without colour in a pipe: {}",
        r.stdout
    );
    assert!(r.stderr.is_empty());
    env.cli(["user", "show", "acme", "--type", "proveedor"])
        .ok()
        .stdout_has("Recuperación")
        .stdout_has("habilitada");

    // The queue and the codes in Spanish words, not the JSON's.
    env.request(NIT, EMAIL).ok();
    let mail = env.cli(["mail", "list"]).ok();
    mail.stdout_has("Destinatario")
        .stdout_has("código de recuperación")
        .stdout_has("enviado");
    assert!(!mail.stdout.contains("reset_code"), "{}", mail.stdout);
    let codes = env.cli(["codes", "list"]).ok();
    codes.stdout_has("pendiente");
    let en = env.cli(["--lang", "en", "mail", "list"]).ok();
    en.stdout_has("Recipient")
        .stdout_has("recovery code")
        .stdout_has("sent");

    // An error: message on stderr, nothing on stdout.
    let e = env.cli(["user", "show", "830015428"]).expect_exit(65);
    assert!(e.stdout.is_empty());
    e.stderr_has("No hay ninguna cuenta");
}

fn english_messages_and_an_english_account(env: &mut Env) {
    env.cli([
        "--lang",
        "en",
        "user",
        "add",
        "--nit",
        NIT,
        "--email",
        EMAIL,
        "--no-password",
    ])
    .ok()
    .stdout_has("Account created: Invoice client 900.102.030-4");
    assert_eq!(
        env.account(NIT)["lang"],
        "en",
        "--lang typed: the account's mail language too"
    );
    env.cli([
        "user",
        "add",
        "--nit",
        "800003122",
        "--email",
        "b@example.co",
        "--no-password",
    ])
    .env("RECUPERA_LANG", "en")
    .ok()
    .stdout_has("Account created");
    assert_eq!(
        env.account("800003122")["lang"],
        "es",
        "from the environment: agent's language only"
    );
    env.cli(["login", "--user", NIT, "--password-stdin"])
        .env("LANG", "en_US.UTF-8")
        .stdin("whatever it is\n")
        .expect_exit(1)
        .stderr_has("Wrong username or password.");
    env.cli([
        "--lang", "en", "reset", "confirm", "--user", NIT, "--code", "abcde",
    ])
    .expect_exit(2)
    .stderr_has("Missing password: use --password-stdin");
    // JSON keys and values are the same in both languages; only the
    // message is translated.
    let es = error_doc(env.cli(["user", "show", "830015428"]), "not_found", 65);
    let en = error_doc(
        env.cli(["--lang", "en", "user", "show", "830015428"]),
        "not_found",
        65,
    );
    assert_ne!(es["message"], en["message"]);
    assert_eq!(
        ok_doc(env.cli(["--lang", "en", "user", "list"])),
        ok_doc(env.cli(["user", "list"]))
    );
}

fn help_and_version_for_agents(env: &mut Env) {
    env.cli(["--help"])
        .ok()
        .stdout_has("Uso:")
        .stdout_has("reset")
        .stdout_has("Códigos de salida");
    env.cli(["--lang", "en", "reset", "confirm", "--help"])
        .ok()
        .stdout_has("Set a new password with the emailed code")
        .stdout_has("Examples:");
    env.cli(["--version"]).ok().stdout_has("recupera ");
    env.cli(["rset"]).expect_exit(2).stderr_has("«reset»");
}

fn every_error_is_one_document_with_its_kind_and_exit_code(env: &mut Env) {
    env.add_cliente_with_password();
    // refused (1): a wrong password (counted: the only change below).
    error_doc(
        env.cli(["login", "--user", NIT, "--password-stdin"])
            .stdin("not the password at all\n"),
        "refused",
        1,
    );
    assert_eq!(env.account(NIT)["failed_logins"], 1);
    let before = env.state();
    // usage (2): clap's, and the program's own.
    error_doc(env.cli(["user", "shw"]), "usage", 2);
    error_doc(env.cli(["user", "delete", NIT]), "usage", 2);
    // not_found (65): an unknown account; bad_data (65): a wrong check
    // digit.
    error_doc(env.cli(["user", "show", "830015428"]), "not_found", 65);
    let v = error_doc(
        env.cli([
            "user",
            "add",
            "--nit",
            "800.003.122-7",
            "--email",
            "x@example.co",
            "--no-password",
        ]),
        "bad_data",
        65,
    );
    assert!(v["message"].as_str().unwrap().contains("es 6, no 7"));
    // config (78): settings out of range, a password on the command line.
    error_doc(
        env.cli(["user", "list"]).env("RECUPERA_SMTP_TIMEOUT", "0"),
        "config",
        78,
    );
    error_doc(
        env.cli(["user", "list"])
            .env("RECUPERA_CODE_TTL_HOURS", "25"),
        "config",
        78,
    );
    error_doc(
        env.cli([
            "user",
            "list",
            "--smtp-url",
            "smtps://agente:clave@mail.example.co",
        ]),
        "config",
        78,
    );
    // database_unavailable (69): a PostgreSQL server nobody runs.
    let down = reserve_port();
    let v = error_doc(
        env.cli(["user", "list"]).env(
            "RECUPERA_DB",
            &format!("postgresql://recupera@127.0.0.1:{}/recupera", down.port),
        ),
        "database_unavailable",
        69,
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{}", down.port)),
        "names host and port: {v}"
    );
    // io (74): standard input that cannot be read.
    let mut c = env
        .cli(["--json", "login", "--user", NIT, "--password-stdin"])
        .command();
    c.stdin(Stdio::from(std::fs::File::open(&env.root).unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = wait_with_deadline(c.spawn().unwrap(), std::time::Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(74));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"], "io");
    assert_eq!(v["exit_code"], 74);
    // None of these changed anything.
    assert_eq!(env.state(), before);

    // mail_unavailable (69): every delivery fails (an outbox that cannot
    // be created).
    let file = env.root.join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    env.outbox = file.join("outbox");
    env.request(NIT, EMAIL).ok();
    // With what was done before it stopped, as `report`.
    let (r, v) = doc(env.cli(["mail", "retry"]));
    r.code(69);
    keys(&v, &["status", "error", "exit_code", "message", "report"]);
    assert_eq!(
        (&v["error"], &v["exit_code"]),
        (&json!("mail_unavailable"), &json!(69))
    );
    assert_eq!(
        v["report"],
        json!({"sent": 0, "dropped": 0, "failed": 1, "not_tried": 0}),
        "{v}"
    );
}

/// Standard output on a full disk (/dev/full): every write fails. The
/// exit code and stderr.
fn run_into_full_stdout(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut c = env.cli(args).command();
    c.stdin(Stdio::null())
        .stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
        .stderr(Stdio::piped());
    let out = wait_with_deadline(c.spawn().unwrap(), std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(stderr.starts_with("recupera: "), "{args:?}: {stderr}");
    (out.status.code(), stderr)
}

fn a_stdout_that_cannot_be_written_is_an_io_error(env: &mut Env) {
    env.add_cliente();
    let (code, stderr) = run_into_full_stdout(env, &["user", "list"]);
    assert_eq!(code, Some(74), "{stderr}");
    // Help and the version too: a script must not take an empty file for
    // them (they were 0, silently).
    for args in [&["--version"][..], &["--help"], &["user", "add", "--help"]] {
        let (code, stderr) = run_into_full_stdout(env, args);
        assert_eq!(code, Some(74), "{args:?}: {stderr}");
    }
}

fn a_stdout_that_cannot_be_written_is_an_io_error_with_json_too(env: &mut Env) {
    env.add_cliente();
    // The result cannot be written: io (74); the error document cannot be
    // either, which must not turn it into a panic.
    let (code, stderr) = run_into_full_stdout(env, &["--json", "user", "list"]);
    assert_eq!(code, Some(74), "{stderr}");
    // A usage error's document neither.
    let (code, stderr) = run_into_full_stdout(env, &["--json", "user", "shw"]);
    assert_eq!(code, Some(2), "{stderr}");
}

/// busy (75): another connection holds the write lock past the timeout.
#[test]
fn a_database_held_by_another_writer_is_busy() {
    let env = Env::sqlite();
    env.add_cliente();
    let other = env.db();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let add = [
        "user",
        "add",
        "--nit",
        "800003122",
        "--email",
        "b@example.co",
        "--no-password",
    ];
    let start = std::time::Instant::now();
    error_doc(
        env.cli(add).env("RECUPERA_BUSY_TIMEOUT_MS", "200"),
        "busy",
        75,
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(8));
    other.execute_batch("ROLLBACK").unwrap();
    // Released: the same command goes through.
    env.cli(add).env("RECUPERA_BUSY_TIMEOUT_MS", "200").ok();
    assert_eq!(env.status()["accounts"], 2);
}

/// database (74): a schema newer than this program, refused and untouched.
#[test]
fn a_newer_database_is_a_database_error_and_left_alone() {
    let env = Env::sqlite();
    env.add_cliente();
    env.db().execute_batch("PRAGMA user_version = 99").unwrap();
    let before = env.snapshot();
    let v = error_doc(env.cli(["user", "list"]), "database", 74);
    assert!(v["message"].as_str().unwrap().contains("99"), "{v}");
    error_doc(env.cli(["db", "status"]), "database", 74);
    assert_eq!(env.snapshot(), before);
}
