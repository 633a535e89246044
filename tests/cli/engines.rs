//! Between engines and around PostgreSQL: `db copy` both ways, what a
//! PostgreSQL URL may and may not carry, unreachable servers, schemas
//! newer than the program or someone else's.

use crate::util::*;

/// A fresh, empty PostgreSQL database URL, or `None` (said loudly) when
/// no server is available.
fn pg() -> Option<String> {
    recupera::testing::fresh_pg_url()
}

fn fill(env: &mut Env) -> String {
    env.add_cliente();
    env.add_user(
        "proveedor",
        "800003122",
        "v@acme.co",
        &["--username", "acme", "--password-stdin"],
    )
    .ok();
    env.cli([
        "user",
        "disable",
        "800003122",
        "--type",
        "proveedor",
        "--reason",
        "prueba",
    ])
    .ok();
    env.cli(["user", "enable", "800003122", "--type", "proveedor"])
        .ok();
    env.login_refused("proveedor", "acme", "no es la clave");
    env.request(NIT, EMAIL).ok();
    env.last_code()
}

/// Moves a team from one SQLite file to PostgreSQL and back: everything
/// arrives, a pending code keeps working, a password set on one engine
/// logs in on the other.
#[test]
fn db_copy_sqlite_to_postgres_and_back() {
    let Some(url) = pg() else { return };
    let mut env = Env::sqlite();
    let code = fill(&mut env);
    let before = env.status();
    let v = env.cli(["--json", "db", "copy", "--to", &url]).ok().json();
    assert_eq!(v["status"], "copied");
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("sqlite"), Some("postgres"))
    );
    assert_eq!(v["rows"]["accounts"], 2);
    assert_eq!(v["rows"]["audit"], before["audit"]);
    // The same state, read through the CLI on the target.
    let mut pgenv = Env::new(Engine::Postgres).unwrap();
    pgenv.db = url.clone();
    pgenv.now = env.now;
    pgenv.outbox = env.outbox.clone();
    let after = pgenv.status();
    for k in ["accounts", "codes_pending", "mail_queued", "audit"] {
        assert_eq!(after[k], before[k], "{k}");
    }
    assert_eq!(after["engine"], "postgres");
    assert_eq!(
        pgenv.cli(["--json", "user", "list"]).ok().json(),
        env.cli(["--json", "user", "list"]).ok().json()
    );
    // The pending code is confirmable there; the password set there logs
    // in here after the copy back.
    pgenv.confirm(NIT, &code, STRONG2).ok();
    pgenv.login("proveedor", "acme", STRONG).ok();
    let back = Env::sqlite();
    let v = pgenv
        .cli(["--json", "db", "copy", "--to", back.db.as_str()])
        .ok()
        .json();
    assert_eq!(
        (v["from"].as_str(), v["to"].as_str()),
        (Some("postgres"), Some("sqlite"))
    );
    back.login("cliente", NIT, STRONG2).ok();
    // New rows continue after the copied ids on both.
    pgenv
        .add_user("cliente", "830015428", "c@example.co", &[])
        .ok();
    back.add_user("cliente", "830015428", "c@example.co", &[])
        .ok();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&back.db_path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "a SQLite backup is private");
    }
}

#[test]
fn db_copy_into_a_non_empty_target_changes_nothing() {
    let mut env = Env::sqlite();
    fill(&mut env);
    let target = Env::sqlite();
    target
        .add_user("cliente", "830015428", "c@example.co", &[])
        .ok();
    let before = target.state();
    env.cli(["db", "copy", "--to", target.db.as_str()])
        .expect_exit(65)
        .stderr_has("no está vacía");
    assert_eq!(target.state(), before);
    if let Some(url) = pg() {
        let mut pgenv = Env::new(Engine::Postgres).unwrap();
        pgenv.db = url.clone();
        pgenv.add_cliente();
        let before = pgenv.state();
        env.cli(["db", "copy", "--to", &url]).expect_exit(65);
        assert_eq!(pgenv.state(), before);
    }
    // From a source that does not exist (a mistyped --db): refused, and
    // neither it nor the target is made.
    let missing = env.root.join("typo.db");
    let empty_target = env.root.join("copia.db");
    env.cli([
        "--db",
        missing.to_str().unwrap(),
        "db",
        "copy",
        "--to",
        empty_target.to_str().unwrap(),
    ])
    .expect_exit(74)
    .stderr_has("No existe la base de datos");
    assert!(!missing.exists() && !empty_target.exists());
}

#[test]
fn a_password_in_a_url_on_the_command_line_is_refused_unechoed() {
    let env = Env::sqlite();
    for args in [
        vec![
            "--db",
            "postgresql://ana:S3cr3tP4ss@db.example.co/recupera",
            "user",
            "list",
        ],
        vec![
            "--db",
            "postgresql://ana@db.example.co/recupera?password=S3cr3tP4ss",
            "user",
            "list",
        ],
        vec![
            "db",
            "copy",
            "--to",
            "postgresql://ana:S3cr3tP4ss@127.0.0.1/recupera",
        ],
        // psql's key/value spelling: not a file name (it became a SQLite
        // database in folders named "host=…"), and said without its text.
        vec![
            "--db",
            "host=/tmp dbname=recupera user=ana password=S3cr3tP4ss",
            "user",
            "list",
        ],
        vec!["db", "copy", "--to", "dbname=recupera password=S3cr3tP4ss"],
    ] {
        let r = env.cli(&args).expect_exit(78);
        r.stderr_has("PGPASSWORD");
        assert!(
            !r.stderr.contains("S3cr3tP4ss") && !r.stdout.contains("S3cr3tP4ss"),
            "{args:?}"
        );
    }
    // A remote host without TLS: refused before connecting.
    env.cli([
        "--db",
        "postgresql://ana@db.example.co/r?sslmode=disable",
        "user",
        "list",
    ])
    .expect_exit(78)
    .stderr_has("TLS");
    // An unknown parameter names itself.
    env.cli([
        "--db",
        "postgresql://ana@127.0.0.1/r?frobnicate=1",
        "user",
        "list",
    ])
    .expect_exit(78)
    .stderr_has("frobnicate");
}

#[test]
fn an_unreachable_server_is_69_naming_host_and_port() {
    // A port nobody listens on (bound, never listening).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let env = Env::sqlite();
    let url = format!("postgresql://ana@127.0.0.1:{port}/recupera?connect_timeout=2");
    let mut c = env.command(&["--json", "user", "list"]);
    c.env("RECUPERA_DB", &url);
    let r = run_command(c, None);
    r.code(69).stderr_has(&format!("127.0.0.1:{port}"));
    assert_eq!(r.json()["error"], "database_unavailable");
}

#[test]
fn a_newer_or_foreign_postgres_schema_is_refused_untouched() {
    let Some(url) = pg() else { return };
    let mut env = Env::new(Engine::Postgres).unwrap();
    env.db = url.clone();
    env.add_cliente();
    let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
    c.batch_execute("INSERT INTO recupera_schema (version) VALUES (99)")
        .unwrap();
    env.cli(["user", "list"])
        .expect_exit(74)
        .stderr_has("más nueva");
    let n: i64 = c
        .query_one("SELECT COUNT(*) FROM accounts", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 1, "left untouched");
    // Someone else's tables with our names, without our schema table.
    let Some(other) = pg() else { return };
    let mut c = ::postgres::Client::connect(&other, ::postgres::NoTls).unwrap();
    c.batch_execute("CREATE TABLE accounts (x int)").unwrap();
    let mut e2 = Env::new(Engine::Postgres).unwrap();
    e2.db = other.clone();
    e2.cli(["user", "list"])
        .expect_exit(74)
        .stderr_has("no creó recupera");
    let tables: i64 = c
        .query_one(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "nothing created next to them");
}

/// Something on the port that accepts and never answers (a frozen server,
/// another program): the connection is given up after `connect_timeout`,
/// exit 69, never a wait without end. The driver's own timeout covers only
/// the socket's connect, which such a server completes.
#[test]
fn a_server_that_never_answers_is_given_up_after_connect_timeout() {
    let env = Env::sqlite();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        // Accept and keep the sockets open, saying nothing.
        let mut kept = Vec::new();
        for s in listener.incoming().take(2) {
            kept.push(s);
        }
        std::thread::sleep(std::time::Duration::from_secs(8));
    });
    let url = format!("postgresql://recupera@127.0.0.1:{port}/r?connect_timeout=1&sslmode=disable");
    let started = std::time::Instant::now();
    let r = env.cli(["--db", &url, "db", "status"]).expect_exit(69);
    r.stderr_has("no contestó en 1 s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "gave up in {:?}",
        started.elapsed()
    );
    drop(held);
}
