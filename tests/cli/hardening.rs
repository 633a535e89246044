//! What an adversarial review found, pinned: escapes from foreign text,
//! panics as oracles, closed and full outputs, files and folders others
//! could touch, Unicode in identities, and mail that must say the truth.

use crate::engines;
use crate::util::*;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;

engines!(
    a_process_that_cannot_start_threads_answers_the_same,
    a_confirmation_answers_the_same_with_or_without_a_cpu_to_spare,
    closed_stdout_ends_with_the_actions_own_code,
    closed_standard_descriptors_are_reopened_on_dev_null,
    full_stdout_after_a_reset_says_it_was_saved,
    foreign_text_never_reaches_the_terminal_raw,
    internationalised_domains_are_one_address,
    a_resent_message_tells_the_codes_own_expiry,
    a_symlinked_outbox_is_refused_and_the_message_waits,
);

/// A pipe whose reading end is already closed: the first write to it fails
/// with EPIPE.
fn closed_pipe() -> Stdio {
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills two new descriptors; we own both.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: fds[0] is ours and closed once, here.
    unsafe { libc::close(fds[0]) };
    // SAFETY: fds[1] is a fresh descriptor nobody else owns.
    Stdio::from(unsafe { OwnedFd::from_raw_fd(fds[1]) })
}

fn run_with_stdout(cmd: Cmd<'_>, stdout: Stdio, stdin: Option<&str>) -> (i32, String) {
    let mut c = cmd.command();
    c.stdout(stdout)
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = wait_with_deadline(child, std::time::Duration::from_secs(60));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn a_process_that_cannot_start_threads_answers_the_same(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    // Without threads (argon2's memory is then not prepared ahead on
    // another one, and the new password is hashed after the code's check,
    // not beside it) a confirmation answers the same.
    let r = env
        .confirm_cmd(NIT, &code, STRONG)
        .env("RECUPERA_TEST_NO_SPAWN", "1")
        .ok();
    r.stdout_has("Su contraseña ha sido actualizada.");
    assert!(!r.stderr.contains("panicked"));
    env.login("cliente", NIT, STRONG).ok();
    // And a wrong code without threads is the usual refusal, exit 1.
    env.advance(61);
    env.request(NIT, EMAIL).ok();
    env.confirm_cmd(NIT, "zzzzz", STRONG2)
        .env("RECUPERA_TEST_NO_SPAWN", "1")
        .expect_exit(1)
        .stderr_has(CONFIRM_REFUSED);
}

/// A confirmation hashes the new password beside the code's check when a
/// CPU is free, and after it when none is (the test build is told which):
/// the same answers, rows and audit either way, for a wrong code, a
/// password the account's data refuses after the right code, and a success.
fn a_confirmation_answers_the_same_with_or_without_a_cpu_to_spare(env: &mut Env) {
    env.add_user("cliente", NIT, EMAIL, &["--name", "Ana Gómez"])
        .ok();
    for (spare, password) in [("1", STRONG), ("0", STRONG2)] {
        env.advance(61);
        env.request(NIT, EMAIL).ok();
        let code = env.last_code();
        let wrong = if code == "ZZZZZ" { "YYYYY" } else { "ZZZZZ" };
        let confirm = |code: &str, password: &str| {
            env.confirm_cmd(NIT, code, password)
                .env("RECUPERA_TEST_SPARE_CPU", spare)
                .run()
        };
        confirm(wrong, password).code(1).stderr_has(CONFIRM_REFUSED);
        confirm(&code, "Gómez luz mesa trombón verde")
            .code(65)
            .stderr_has("el nombre de la cuenta");
        assert_eq!(env.codes()[0]["attempts"], 1, "spare cpu {spare}");
        confirm(&code, password)
            .ok()
            .stdout_has("Su contraseña ha sido actualizada.");
        assert_eq!(env.codes()[0]["state"], "used", "spare cpu {spare}");
        env.login("cliente", NIT, password).ok();
    }
    let details = env.audit_details("reset.confirm");
    let once = ["password_changed", "policy:built_from_name", "wrong_code"];
    assert_eq!(details, [once, once].concat());
}

fn closed_stdout_ends_with_the_actions_own_code(env: &mut Env) {
    env.add_cliente_with_password();
    for i in 0..50 {
        env.login_refused("cliente", NIT, &format!("clave equivocada {i}"));
    }
    let (code, stderr) = run_with_stdout(env.cli(["--json", "audit"]), closed_pipe(), None);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A refused login to a closed stdout is still the refusal: exit 1.
    let (code, stderr) = run_with_stdout(
        env.cli(["--json", "login", "--user", NIT, "--password-stdin"]),
        closed_pipe(),
        Some("otra clave cualquiera\n"),
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // A table too.
    let (code, stderr) = run_with_stdout(env.cli(["user", "list"]), closed_pipe(), None);
    assert_eq!(code, 0, "{stderr}");
    // `recupera --help | head -1`: help and the version into a closed pipe
    // are still 0, and say nothing (a full disk is 74, tests/cli/output.rs).
    for args in [&["--help"][..], &["--version"]] {
        let (code, stderr) = run_with_stdout(env.cli(args), closed_pipe(), None);
        assert_eq!((code, stderr.as_str()), (0, ""), "{args:?}");
    }
}

/// Started with stdout and stderr closed (`recupera … >&- 2>&-`): the
/// first files it opens would get descriptors 1 and 2, and its messages
/// would go into them (an outbox message, a database connection). It
/// reopens them on /dev/null first, as the standard library's start-up
/// does (main.rs does that start-up itself). Seen from outside while the
/// process waits for its password on stdin.
fn closed_standard_descriptors_are_reopened_on_dev_null(env: &mut Env) {
    use std::os::unix::process::CommandExt;
    env.add_cliente_with_password();
    let mut c = env
        .cli(["login", "--user", NIT, "--password-stdin"])
        .command();
    c.stdin(Stdio::piped());
    // SAFETY: close(2) between fork and exec, async-signal-safe.
    unsafe {
        c.pre_exec(|| {
            libc::close(1);
            libc::close(2);
            Ok(())
        });
    }
    let mut child = c.spawn().unwrap();
    let fd = |n: u32| std::fs::read_link(format!("/proc/{}/fd/{n}", child.id()));
    // Until its start-up is done (before exec, descriptor 1 is the test's
    // own, then none); without the reopening it never becomes /dev/null.
    let null = std::path::PathBuf::from("/dev/null");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fd(2).ok().as_ref() != Some(&null) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    for n in [1, 2] {
        assert_eq!(
            fd(n).ok(),
            Some(std::path::PathBuf::from("/dev/null")),
            "descriptor {n}"
        );
    }
    {
        use std::io::Write;
        let mut input = child.stdin.take().unwrap();
        writeln!(input, "{STRONG}").unwrap();
    }
    let out = wait_with_deadline(child, std::time::Duration::from_secs(60));
    // It logged in, its answer written to /dev/null.
    assert_eq!(out.status.code(), Some(0));
}

fn full_stdout_after_a_reset_says_it_was_saved(env: &mut Env) {
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    let code = env.last_code();
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let (exit, stderr) = run_with_stdout(
        env.cli([
            "--json",
            "reset",
            "confirm",
            "--user",
            NIT,
            "--code",
            &code,
            "--password-stdin",
        ]),
        Stdio::from(full),
        Some(&format!("{STRONG}\n")),
    );
    assert_eq!(exit, 74, "{stderr}");
    assert!(stderr.contains("hecho y guardado"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // It was saved indeed.
    env.login("cliente", NIT, STRONG).ok();
}

fn foreign_text_never_reaches_the_terminal_raw(env: &mut Env) {
    env.add_cliente();
    let evil_agent = "ana\u{1b}[2J\u{1b}]0;pwned\u{7}\u{202E}lista";
    env.cli(["user", "unlock", NIT, "--agent", evil_agent]).ok();
    let table = env.cli(["audit"]).ok();
    assert!(!table.stdout.contains('\u{1b}') && !table.stdout.contains('\u{202E}'));
    assert!(table.stdout.contains("\\u{1b}"), "{}", table.stdout);
    // --json keeps JSON escaping: the exact agent comes back.
    let j = env.audit(&["--event", "user.unlock"]);
    assert!(
        j[0]["agent"].as_str().unwrap().contains("\\u{1b}"),
        "stored made visible"
    );
    // Arguments echoed in errors.
    for args in [
        vec!["user", "show", "\u{1b}]0;pwned\u{7}"],
        vec!["reset", "request", "--nit", "9\u{1b}[2J", "--email", EMAIL],
        vec![
            "user",
            "add",
            "--nit",
            NIT,
            "--email",
            "a\u{1b}[31m@x.co",
            "--no-password",
        ],
        vec!["--db", "/tmp/no\u{1b}[2Jsuch/\u{7}dir/", "user", "list"],
        vec!["user", "shw\u{1b}[2J"],
    ] {
        let r = env.cli(&args).run();
        assert_ne!(r.code, 0, "{args:?}");
        for raw in ['\u{1b}', '\u{7}'] {
            assert!(
                !r.stderr.contains(raw),
                "{args:?}: raw control in {:?}",
                r.stderr
            );
            assert!(!r.stdout.contains(raw), "{args:?}");
        }
    }
    // Invisible characters in emails and usernames are refused outright.
    env.add_user("cliente", "800003122", "a@ex\u{200B}ample.co", &[])
        .code(65);
    env.add_user(
        "proveedor",
        "800003122",
        "a@example.co",
        &["--username", "ac\u{200D}me"],
    )
    .code(65);
}

fn internationalised_domains_are_one_address(env: &mut Env) {
    env.add_user("cliente", NIT, "pepe@ÑANDÚ.co", &[]).ok();
    assert_eq!(env.account(NIT)["email"], "pepe@ñandú.co");
    env.request(NIT, "pepe@ñandú.co").ok();
    env.advance(61);
    env.request(NIT, "PEPE@xn--and-6ma2c.co").ok();
    let mails = env.mails();
    assert_eq!(mails.len(), 2, "both spellings name the account");
    assert_eq!(
        mails[0].to,
        ["pepe@xn--and-6ma2c.co"],
        "sent to the ASCII form"
    );
}

fn a_resent_message_tells_the_codes_own_expiry(env: &mut Env) {
    env.add_cliente();
    // The outbox cannot be written (a file where the folder should be):
    // the message waits in the queue.
    std::fs::write(&env.outbox, "no soy una carpeta").unwrap();
    env.cli(["reset", "request", "--nit", NIT, "--email", EMAIL])
        .env("RECUPERA_CODE_TTL_HOURS", "2")
        .ok();
    assert_eq!(env.queue()[0]["state"], "queued");
    std::fs::remove_file(&env.outbox).unwrap();
    env.advance(30 * 60);
    // Retried under the default settings (12 h), half an hour later.
    env.cli(["mail", "retry"]).ok();
    let m = env.mails().pop().unwrap();
    assert!(m.text.contains("caducará en 90 minutos"), "{}", m.text);
    assert!(!m.text.contains("12Hrs"));
    // 24-02-2026 13:46:38 Bogotá + 2 h.
    assert!(m.text.contains("24-02-2026 15:46:38"), "{}", m.text);
    env.advance(90 * 60);
    env.confirm_refused(NIT, &m.code.unwrap(), STRONG);
}

#[cfg(unix)]
fn a_symlinked_outbox_is_refused_and_the_message_waits(env: &mut Env) {
    env.add_cliente();
    let elsewhere = env.root.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &env.outbox).unwrap();
    let unknown = env.request("800003122", EMAIL);
    let known = env.request(NIT, EMAIL);
    assert_eq!((known.code, &known.stdout), (unknown.code, &unknown.stdout));
    assert_eq!(
        std::fs::read_dir(&elsewhere).unwrap().count(),
        0,
        "nothing followed the link"
    );
    let q = env.queue();
    assert_eq!(q[0]["state"], "queued");
    assert!(
        q[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("enlace simbólico"),
        "{q:?}"
    );
}

#[cfg(unix)]
#[test]
fn open_files_and_folders_are_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite();
    env.add_cliente();
    // A database restored with the wrong mode.
    for suffix in ["", "-wal", "-shm"] {
        let mut p = env.db_path.as_os_str().to_owned();
        p.push(suffix);
        if std::path::Path::new(&p).exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
    }
    let r = env.cli(["user", "list"]).ok();
    r.stderr_has("666").stderr_has("600");
    let mode = std::fs::metadata(&env.db_path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    // An outbox others can open, ours: tightened, and said.
    std::fs::create_dir_all(&env.outbox).unwrap();
    std::fs::set_permissions(&env.outbox, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.request(NIT, EMAIL).ok().stderr_has("700");
    let mode = std::fs::metadata(&env.outbox).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    assert_eq!(env.mails().len(), 1);
    // An outbox that belongs to someone else and others can write: refused.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let foreign = env.root.join("foreign");
        std::fs::create_dir(&foreign).unwrap();
        std::fs::set_permissions(&foreign, std::fs::Permissions::from_mode(0o777)).unwrap();
        // SAFETY: chown(2) on a path we made; 65534 is nobody.
        let c = std::ffi::CString::new(foreign.to_str().unwrap()).unwrap();
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        let mut e2 = Env::sqlite();
        e2.set_env("RECUPERA_OUTBOX", foreign.to_str().unwrap());
        e2.add_cliente();
        e2.request(NIT, EMAIL).ok();
        assert_eq!(std::fs::read_dir(&foreign).unwrap().count(), 0);
        let q = e2.queue();
        assert!(
            q[0]["last_error"]
                .as_str()
                .unwrap()
                .contains("otro usuario"),
            "{q:?}"
        );
    }
}

/// A `--db` that names something else (a text file, a link to one, a
/// pipe) is refused and left exactly as it was: no mode changed, nothing
/// written beside it. An outbox shared as /tmp is (sticky, writable by
/// all) is refused, not taken over.
#[cfg(unix)]
#[test]
fn a_db_or_outbox_that_is_not_ours_to_change_is_left_as_it_was() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let notes = env.root.join("notes.txt");
    std::fs::write(&notes, b"cfg\n").unwrap();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).unwrap();
    let link = env.root.join("link.db");
    std::os::unix::fs::symlink(&notes, &link).unwrap();
    for db in [&notes, &link] {
        let r = env
            .cli(["--db", db.to_str().unwrap(), "user", "list"])
            .expect_exit(74);
        r.stderr_has("no se modificó");
        assert!(!r.stderr.contains("600"), "{}", r.stderr);
        assert_eq!(mode(&notes), 0o644);
        assert_eq!(std::fs::read(&notes).unwrap(), b"cfg\n");
    }
    let fifo = env.root.join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a path inside our temporary folder.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0);
    let before = mode(&fifo);
    env.cli(["--db", fifo.to_str().unwrap(), "codes", "list"])
        .expect_exit(74)
        .stderr_has("no es un archivo normal");
    assert_eq!(mode(&fifo), before);
    let names: Vec<String> = std::fs::read_dir(&env.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pipe") || n.starts_with("notes") || n.starts_with("link"))
        .collect();
    assert_eq!(names.len(), 3, "nothing made beside them: {names:?}");

    let mut env = Env::sqlite();
    let shared = env.root.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    env.set_env("RECUPERA_OUTBOX", shared.to_str().unwrap());
    env.add_cliente();
    env.request(NIT, EMAIL).ok();
    assert_eq!(mode(&shared), 0o1777);
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    let q = env.queue();
    assert!(
        q[0]["last_error"].as_str().unwrap().contains("compartida"),
        "{q:?}"
    );
    // A setting to fix, not an outage: mail retry says so (78, not 69).
    env.cli(["mail", "retry"])
        .expect_exit(78)
        .stderr_has("No se puede usar la carpeta de salida (RECUPERA_OUTBOX)");
    assert_eq!(mode(&shared), 0o1777);
}

#[test]
fn a_failed_open_leaves_no_folder_and_no_placeholder_is_reread() {
    let env = Env::sqlite();
    let target = env.root.join("nonexistent-{err}").join("x");
    let db = format!("{}/", target.display());
    let r = env.cli(["--db", &db, "user", "list"]).expect_exit(74);
    r.stderr_has("nonexistent-{err}");
    assert!(
        !env.root.join("nonexistent-{err}").exists(),
        "the folder it made is gone"
    );
}

#[test]
fn purge_folds_the_wal_back_into_the_file() {
    let mut env = Env::sqlite();
    env.add_cliente();
    for i in 0..20 {
        env.add_user(
            "cliente",
            &format!("{}", 800_000_000 + i * 7),
            &format!("c{i}@example.co"),
            &[],
        )
        .ok();
    }
    env.request(NIT, EMAIL).ok();
    let wal = env.db_path.with_extension("db-wal");
    assert!(
        std::fs::metadata(&wal).unwrap().len() > 0,
        "writes went to the WAL"
    );
    env.advance(13 * 3600);
    env.cli(["codes", "purge"]).ok();
    assert_eq!(
        std::fs::metadata(&wal).unwrap().len(),
        0,
        "the WAL is folded in and truncated"
    );
    assert_eq!(env.status()["accounts"], 21, "nothing lost on the way");
}

/// The binary loads libc and libm, not libgcc_s (`build.rs` links GCC's
/// unwinder statically: one library fewer to map and relocate at every
/// start, and no CPU probe in its constructor); this test binary, linked
/// the same way, still unwinds and captures backtraces with it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn the_unwinder_is_linked_in_not_loaded() {
    // glibc's loader lists what it would load, and runs nothing.
    let out = std::process::Command::new(BIN)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(listed.contains("libc.so"), "{listed}");
    assert!(!listed.contains("libgcc_s"), "{listed}");

    let caught = std::panic::catch_unwind(|| {
        let trace = std::backtrace::Backtrace::force_capture();
        assert_eq!(trace.status(), std::backtrace::BacktraceStatus::Captured);
        panic!("unwound");
    });
    let message = caught.unwrap_err();
    assert_eq!(message.downcast_ref::<&str>(), Some(&"unwound"));
}

/// The system's errors are said in the user's language, not in Rust's
/// English inside a Spanish sentence.
#[test]
fn system_errors_are_said_in_the_users_language() {
    let env = Env::sqlite();
    env.add_cliente();
    let missing = env.root.join("no-such.csv");
    env.cli(["user", "import", missing.to_str().unwrap()])
        .expect_exit(2)
        .stderr_has("no existe (error 2 del sistema)");
    env.cli(["--lang", "en", "user", "import", missing.to_str().unwrap()])
        .expect_exit(2)
        .stderr_has("does not exist (system error 2)");
    // A folder on standard input where the password should be.
    let mut c = env.command(&["login", "--user", NIT, "--password-stdin"]);
    c.stdin(std::fs::File::open(&env.root).unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = wait_with_deadline(c.spawn().unwrap(), std::time::Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(74), "{stderr}");
    assert!(
        stderr.contains("es una carpeta (error 21 del sistema)"),
        "{stderr}"
    );
    assert!(!stderr.contains("os error"), "{stderr}");
}

/// A listing that fails part way (here a damaged page met after the first
/// rows) cannot put its error document inside the array it began: stdout
/// is left unfinished, never valid JSON (no parser takes half the accounts
/// for all of them), and the error document goes to stderr. One that
/// fails before its first row prints the error document alone.
#[test]
fn a_listing_that_fails_part_way_is_not_valid_json_and_says_so_on_stderr() {
    let env = Env::sqlite();
    let mut csv = String::from("nit,email\n");
    for i in 0..400 {
        csv.push_str(&format!("{},c{i}@example.co\n", 800_000_000 + i * 7));
    }
    let file = env.root.join("muchas.csv");
    std::fs::write(&file, csv).unwrap();
    env.cli(["user", "import", file.to_str().unwrap()]).ok();
    env.db()
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    // The pages holding the last account (its row, its index entries):
    // their page type made impossible.
    let mut bytes = std::fs::read(&env.db_path).unwrap();
    let needle = b"c399@example.co";
    let pages: Vec<usize> = bytes
        .chunks(4096)
        .enumerate()
        .filter(|(_, p)| p.windows(needle.len()).any(|w| w == needle))
        .map(|(i, _)| i)
        .collect();
    assert!(
        !pages.is_empty() && pages.iter().all(|&p| p > 2),
        "{pages:?}"
    );
    for p in pages {
        bytes[p * 4096] = 0xff;
    }
    std::fs::write(&env.db_path, &bytes).unwrap();

    let r = env.cli(["--json", "user", "list"]).run();
    assert_eq!(r.code, 74, "{}", &r.stderr);
    assert!(
        r.stdout.starts_with("[{"),
        "{}",
        &r.stdout[..r.stdout.len().min(200)]
    );
    assert!(serde_json::from_str::<serde_json::Value>(&r.stdout).is_err());
    assert!(
        !r.stdout.contains("\"error\""),
        "no document inside the array"
    );
    let last = r.stderr.lines().last().unwrap_or_default();
    let doc: serde_json::Value = serde_json::from_str(last).expect("stderr's last line");
    assert_eq!(
        (doc["error"].as_str(), doc["exit_code"].as_i64()),
        (Some("database"), Some(74))
    );

    // Damaged before its first row (the first account's pages too): the
    // error document alone, on stdout, as for any other error.
    let needle = b"c0@example.co";
    for p in 3..bytes.len() / 4096 {
        if bytes[p * 4096..(p + 1) * 4096]
            .windows(needle.len())
            .any(|w| w == needle)
        {
            bytes[p * 4096] = 0xff;
        }
    }
    std::fs::write(&env.db_path, &bytes).unwrap();
    let r = env.cli(["--json", "user", "list"]).run();
    assert_eq!(r.code, 74, "{}", &r.stderr);
    let doc: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(doc["error"], "database");
}
