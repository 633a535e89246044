//! The message catalog: every user-facing string, in Spanish and English.
//!
//! Invariants:
//! - A message is one row of `catalog!` with both languages; the compiler
//!   refuses a row without both, and a unit test checks that both sides carry
//!   the same `{placeholders}`.
//! - Spanish is the default (the users are Colombian); the wording follows
//!   the platform's manual where the manual has words for it.
//! - The process language is set once, early, by `run`; messages built after
//!   that (errors included) come out in it. Emails use the account's own
//!   language instead, passed explicitly.

use std::fmt::Display;
use std::sync::atomic::{AtomicU8, Ordering};

pub use crate::domain::lang::Lang;

/// `LC_ALL`, then `LC_MESSAGES`, then `LANG`, as POSIX orders them.
pub fn lang_from_locale_env() -> Lang {
    for var in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Ok(v) = std::env::var(var)
            && !v.is_empty()
        {
            return Lang::from_locale(&v);
        }
    }
    Lang::Es
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

pub fn set_lang(lang: Lang) {
    CURRENT.store(
        match lang {
            Lang::Es => 0,
            Lang::En => 1,
        },
        Ordering::Relaxed,
    );
}

pub fn lang() -> Lang {
    if CURRENT.load(Ordering::Relaxed) == 1 {
        Lang::En
    } else {
        Lang::Es
    }
}

macro_rules! catalog {
    ($($key:ident => $es:expr, $en:expr;)*) => {
        /// Message keys. `M::X.text(lang)` or [`t`] / [`tf`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum M { $($key),* }

        impl M {
            pub const ALL: &'static [M] = &[$(M::$key),*];

            pub fn text(self, lang: Lang) -> &'static str {
                match (self, lang) {
                    $((M::$key, Lang::Es) => $es, (M::$key, Lang::En) => $en,)*
                }
            }
        }
    };
}

/// The manual's label of an account type, in the process language.
pub fn type_label(k: crate::domain::account::AccountType) -> &'static str {
    type_label_in(k, lang())
}

/// The manual's label of an account type ("Cliente Factura", "Proveedor").
pub fn type_label_in(k: crate::domain::account::AccountType, lang: Lang) -> &'static str {
    use crate::domain::account::AccountType;
    match k {
        AccountType::Cliente => M::TypeCliente.text(lang),
        AccountType::Proveedor => M::TypeProveedor.text(lang),
    }
}

/// A code's state as a word of the process language.
pub fn code_state_label(s: crate::store::ShownCodeState) -> &'static str {
    use crate::store::ShownCodeState as S;
    t(match s {
        S::Pending => M::CodePending,
        S::Expired => M::CodeExpired,
        S::Used => M::CodeUsed,
        S::Replaced => M::CodeReplaced,
        S::Exhausted => M::CodeExhausted,
    })
}

pub fn mail_state_label(s: crate::store::MailState) -> &'static str {
    use crate::store::MailState as S;
    t(match s {
        S::Queued => M::MailStateQueued,
        S::Sent => M::MailStateSent,
        S::Dropped => M::MailStateDropped,
    })
}

pub fn mail_kind_label(k: crate::store::MailKind) -> &'static str {
    use crate::store::MailKind as K;
    t(match k {
        K::ResetCode => M::MailKindReset,
        K::PasswordChanged => M::MailKindChanged,
        K::EmailChangedOld => M::MailKindEmailOld,
        K::EmailChangedNew => M::MailKindEmailNew,
        K::ChannelSuspended => M::MailKindSuspended,
    })
}

/// A message in the process language.
pub fn t(m: M) -> &'static str {
    m.text(lang())
}

/// A message with `{name}` placeholders filled, in the process language.
pub fn tf(m: M, args: &[(&str, &dyn Display)]) -> String {
    fill(m.text(lang()), args)
}

/// A message with placeholders, in a given language (emails).
pub fn tl(m: M, lang: Lang, args: &[(&str, &dyn Display)]) -> String {
    fill(m.text(lang), args)
}

/// Fills `{name}` placeholders in one pass over the template: a value is
/// never read again as a template, so a value that contains `{err}` (a
/// path, a server's reply) stays as it is.
fn fill(template: &str, args: &[(&str, &dyn Display)]) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let name_end = after.find('}');
        match name_end.and_then(|end| {
            let name = &after[..end];
            args.iter().find(|(n, _)| *n == name).map(|(_, v)| (end, v))
        }) {
            Some((end, value)) => {
                use std::fmt::Write;
                let _ = write!(out, "{value}");
                rest = &after[end + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text that did not come from our catalog, made safe for a terminal or a
/// pipe: C0 and C1 controls, bidi overrides and isolates, line and paragraph
/// separators, zero-width and other invisible format characters become
/// visible escapes such as `\u{1b}`.
pub fn visible(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if is_hazard(c) {
            use std::fmt::Write;
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// Characters that can change how a terminal shows what follows them, or
/// hide or reorder text.
pub fn is_hazard(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}'   // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{00AD}'              // soft hyphen
            | '\u{061C}'              // Arabic letter mark
            | '\u{FEFF}'              // zero-width no-break space (BOM)
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
            // Invisible "default ignorable" characters: they make two
            // names that look alike differ, or hide text.
            | '\u{034F}'              // combining grapheme joiner
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}' // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}' // Mongolian variation selectors and vowel separator
            | '\u{2065}'              // (reserved among the invisible operators)
            | '\u{FE00}'..='\u{FE0F}' // variation selectors
            | '\u{1D173}'..='\u{1D17A}' // musical formatting
            | '\u{E0000}'..='\u{E0FFF}' // tags, variation selectors supplement
        )
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    } else {
        s.to_string()
    }
}

/// An operating system's error in the user's language: the common kinds
/// from the catalog (with the system's error number, for whoever looks it
/// up), any other as the system says it, made visible. Rust's own text is
/// English, and sat inside Spanish sentences.
pub fn os_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let m = match e.kind() {
        K::NotFound => M::OsNotFound,
        K::PermissionDenied => M::OsPermissionDenied,
        K::IsADirectory => M::OsIsADirectory,
        K::NotADirectory => M::OsNotADirectory,
        K::AlreadyExists => M::OsAlreadyExists,
        K::StorageFull => M::OsStorageFull,
        K::ReadOnlyFilesystem => M::OsReadOnly,
        K::BrokenPipe => M::OsBrokenPipe,
        // A socket's read timeout comes back as EAGAIN ("Resource
        // temporarily unavailable"): it is a timeout.
        K::TimedOut | K::WouldBlock => M::OsTimedOut,
        K::ConnectionRefused => M::OsConnectionRefused,
        _ => return visible(&e.to_string()),
    };
    match e.raw_os_error() {
        Some(n) => tf(M::OsErrorNumbered, &[("what", &t(m)), ("n", &n)]),
        None => t(m).to_string(),
    }
}

/// A user-typed value quoted in a message: made visible and cut, so a
/// 10,000-character input does not become a 10,000-character error.
pub fn quote(s: &str) -> String {
    cut(&visible(&s.chars().take(200).collect::<String>()), 60)
}

/// Foreign text of some length (a server's reply, a driver's error), made
/// visible and cut to a few lines' worth.
pub fn quote_long(s: &str) -> String {
    cut(&visible(&s.chars().take(1000).collect::<String>()), 300)
}

/// A path for a message, made visible.
pub fn shown_path(p: &std::path::Path) -> String {
    visible(&p.display().to_string())
}

catalog! {
    // --- account types (the manual's labels) ---
    TypeCliente => "Cliente Factura", "Invoice client";
    TypeProveedor => "Proveedor", "Supplier";

    // --- NIT ---
    NitEmpty => "Falta el NIT.", "The NIT is missing.";
    NitNotDigit => "El NIT solo lleva dígitos (puntos y espacios se ignoran; el dígito verificador va tras un guion): «{char}» no es válido.",
        "A NIT has digits only (dots and spaces are ignored; the check digit goes after a dash): «{char}» is not allowed.";
    NitTooLong => "El NIT tiene demasiados dígitos: como máximo 15 sin el dígito verificador.",
        "The NIT has too many digits: at most 15 without the check digit.";
    NitLeadingZero => "El NIT no puede empezar por 0.", "A NIT cannot start with 0.";
    NitDvForm => "El dígito verificador es un solo dígito después del guion, como en 900.102.030-4.",
        "The check digit is a single digit after the dash, as in 900.102.030-4.";
    NitDvWrong => "El dígito verificador de {body} es {expected}, no {given}: revise el NIT.",
        "The check digit of {body} is {expected}, not {given}: check the NIT.";

    // --- email ---
    EmailEmpty => "Falta el email.", "The email is missing.";
    EmailForbidden => "El email no puede contener «{char}»: escriba una sola dirección.",
        "The email cannot contain «{char}»: give exactly one address.";
    EmailTooLong => "El email es demasiado largo (máximo 254 caracteres).",
        "The email is too long (at most 254 characters).";
    EmailLocalTooLong => "La parte del email antes de la @ es demasiado larga (máximo 64 caracteres).",
        "The part of the email before the @ is too long (at most 64 characters).";
    EmailNoAt => "«{email}» no es un email: le falta la @.", "«{email}» is not an email: it has no @.";
    IdentEmailInvalid => "Lo escrito como NIT, usuario o email lleva @ pero no es un email válido (no se repite aquí, por si era una contraseña); escriba la dirección, como juan@empresa.com.",
        "What was typed as NIT, username or email has an @ but is not a valid email (not repeated here, in case it was a password); type the address, like juan@empresa.com.";
    EmailInvalid => "«{email}» no es un email válido; escriba solo la dirección, como juan@empresa.com.",
        "«{email}» is not a valid email; give just the address, like juan@company.com.";

    // --- usernames and identifiers ---
    UsernameLength => "El usuario debe tener entre 3 y 64 caracteres.", "A username has 3 to 64 characters.";
    UsernameChars => "El usuario solo puede llevar letras sin tilde, dígitos, punto, guion y guion bajo.",
        "A username may contain only ASCII letters, digits, dot, dash and underscore.";
    UsernameNoLetter => "El usuario debe tener al menos una letra (si es un número, es un NIT).",
        "A username needs at least one letter (a number is a NIT).";
    ClienteNeedsNit => "Un Cliente Factura se identifica solo por su NIT (sin dígito verificador).",
        "An invoice client is identified by its NIT only (without the check digit).";
    NameTooLong => "El nombre es demasiado largo (máximo 200 caracteres).", "The name is too long (at most 200 characters).";
    NameInvalid => "El nombre no puede contener caracteres de control.", "The name cannot contain control characters.";
    ReasonTooLong => "El motivo es demasiado largo (máximo 200 caracteres).", "The reason is too long (at most 200 characters).";
    ReasonInvalid => "El motivo no puede contener caracteres de control ni invisibles.", "The reason cannot contain control or invisible characters.";

    // --- codes ---
    CodeLength => "El código tiene 5 caracteres.", "A code has 5 characters.";
    CodeLookAlike => "Los códigos nunca llevan «{char}» (ni 0, O, o, 1, l, I): revise lo que leyó el cliente.",
        "Codes never contain «{char}» (nor 0, O, o, 1, l, I): check what the customer read out.";
    CodeInvalid => "Los códigos solo llevan letras y dígitos: «{char}» no es válido.",
        "Codes contain only letters and digits: «{char}» is not allowed.";

    // --- passwords ---
    PwEmpty => "La contraseña está vacía.", "The password is empty.";
    PwTooShort => "La contraseña es muy corta: tiene {got} caracteres y el mínimo es {min}. Una frase de varias palabras es fácil de recordar.",
        "The password is too short: {got} characters, the minimum is {min}. A phrase of several words is easy to remember.";
    PwTooLong => "La contraseña es demasiado larga: como máximo 256 caracteres (1024 bytes).",
        "The password is too long: at most 256 characters (1024 bytes).";
    PwGuessable => "La contraseña es demasiado común o fácil de adivinar; use una frase propia de varias palabras.",
        "The password is too common or easy to guess; use a phrase of several words of your own.";
    PwBuiltFrom => "La contraseña no puede construirse con {what}.", "The password cannot be built from {what}.";
    PwMismatch => "Las contraseñas no coinciden.", "The passwords do not match.";
    CtxProduct => "el nombre del producto", "the product's name";
    CtxIdentifier => "el NIT, usuario o email escrito", "the NIT, username or email typed";
    CtxNit => "el NIT de la cuenta", "the account's NIT";
    CtxEmail => "el email de la cuenta", "the account's email";
    CtxUsername => "el usuario de la cuenta", "the account's username";
    CtxName => "el nombre de la cuenta", "the account's name";

    // --- accounts ---
    AccountExists => "Ya existe una cuenta {type} con NIT {nit}.", "An account {type} with NIT {nit} already exists.";
    UsernameTaken => "El usuario «{username}» ya está en uso.", "The username «{username}» is already taken.";
    Ambiguous => "«{ident}» corresponde a varias cuentas: indique el NIT o el usuario, o --type.",
        "«{ident}» matches several accounts: give the NIT or the username, or --type.";
    NoSuchAccount => "No hay ninguna cuenta {type} «{ident}».", "There is no {type} account «{ident}».";
    NoSuchAccountAny => "No hay ninguna cuenta «{ident}».", "There is no account «{ident}».";
    UserAdded => "Cuenta creada: {type} {nit}, {email}.", "Account created: {type} {nit}, {email}.";
    UserAddedNoPassword => "Sin contraseña: el cliente la creará con un código (recupera reset request).",
        "No password: the customer will set one with a code (recupera reset request).";
    UserDisabled => "Cuenta {type} {nit} deshabilitada: no puede iniciar sesión ni recibir códigos.",
        "Account {type} {nit} disabled: it cannot log in or receive codes.";
    UserEnabled => "Cuenta {type} {nit} habilitada de nuevo (los códigos anteriores siguen sin valer).",
        "Account {type} {nit} enabled again (earlier codes stay dead).";
    UserEdited => "Cuenta {type} {nit} actualizada: {fields}.", "Account {type} {nit} updated: {fields}.";
    UserEditedEmail => "Se avisó a la dirección anterior y a la nueva; los códigos pendientes se anularon.",
        "The old and the new address were told; pending codes were cancelled.";
    EditNothing => "Indique qué cambiar: --email, --name, --username o --mail-lang.",
        "Say what to change: --email, --name, --username or --mail-lang.";
    EditNoChange => "Nada que cambiar: la cuenta ya tenía esos datos.", "Nothing to change: the account already had those values.";
    DeleteNeedsYes => "Borrar una cuenta no se puede deshacer: sin una terminal, confírmelo con --yes.",
        "Deleting an account cannot be undone: without a terminal, confirm it with --yes.";
    PromptDelete => "¿Borrar para siempre la cuenta {type} {nit}? (Ley 1581: su historial queda con un seudónimo)",
        "Delete the account {type} {nit} for good? (Ley 1581: its history stays under a pseudonym)";
    DeleteNotScrubbed => "aviso: otro proceso está leyendo la base, y una copia anterior de los datos borrados queda en su archivo -wal mientras tanto; cuando termine, ejecute «recupera codes purge», que la elimina.",
        "warning: another process is reading the database, and an older copy of the deleted data stays in its -wal file meanwhile; when it is done, run «recupera codes purge», which removes it.";
    UserDeleted => "Cuenta {type} {nit} borrada; su historial de auditoría la nombra ahora «{pseudonym}».",
        "Account {type} {nit} deleted; its audit history now names it «{pseudonym}».";
    OutboxSwept => "Mensajes suyos borrados de la bandeja de salida ({dir}): {n}.",
        "Its messages removed from the outbox ({dir}): {n}.";
    OutboxSweepFailed => "aviso: {n} mensajes suyos en la bandeja de salida ({dir}) no se pudieron borrar ni leer; bórrelos a mano.",
        "warning: {n} of its messages in the outbox ({dir}) could not be removed or read; remove them by hand.";
    PromptIdentAgent => "NIT, usuario o email de la cuenta", "NIT, username or email of the account";
    PromptAfterRefusal => "¿Qué desea hacer?", "What now?";
    OptRetype => "Escribir el código otra vez", "Type the code again";
    OptResend => "Volver a enviar el código", "Send the code again";
    OptRetypeIdent => "Escribir otro NIT, usuario o email", "Type another NIT, username or email";
    OptQuit => "Salir", "Quit";
    HintResend => "Se envía como mucho un código por minuto y 5 al día; si no llega uno nuevo, sirve el último que llegó.",
        "At most one code a minute and 5 a day are sent; if no new one arrives, the last one received is the one that works.";
    HintCodeSpent => "Tras {n} intentos fallidos un código deja de servir: pida uno nuevo.",
        "After {n} failed tries a code stops working: ask for a new one.";
    UserUnlocked => "Cuenta {type} {nit} desbloqueada: inicio de sesión y recuperación habilitados.",
        "Account {type} {nit} unlocked: login and recovery enabled.";
    UserUnlockedDisabled => "Cuenta {type} {nit} desbloqueada, pero sigue deshabilitada: no inicia sesión ni recibe códigos hasta «recupera user enable».",
        "Account {type} {nit} unlocked, but it is still disabled: no login and no codes until «recupera user enable».";

    // --- usage without a terminal ---
    MissingFlag => "Falta {flag} (sin una terminal no se puede preguntar).", "Missing {flag} (without a terminal there is no one to ask).";
    MissingPasswordSource => "Falta la contraseña: use --password-stdin, o --no-password para que el cliente la cree con un código.",
        "Missing password: use --password-stdin, or --no-password so the customer sets it with a code.";
    MissingPasswordStdin => "Falta la contraseña: use --password-stdin (las contraseñas nunca van en la línea de órdenes).",
        "Missing password: use --password-stdin (passwords never go on the command line).";
    StdinNotUtf8 => "La entrada estándar no es texto UTF-8.", "Standard input is not UTF-8 text.";
    StdinExtraLines => "--password-stdin lee dos líneas como mucho: la contraseña y, si se quiere, su confirmación; la entrada estándar trae más.",
        "--password-stdin reads at most two lines: the password and, optionally, its confirmation; standard input has more.";
    PasswordConflict => "Use solo una de --password-stdin y --no-password.", "Use only one of --password-stdin and --no-password.";

    // --- results ---
    ReqSent => "Se envió un código de confirmación al email asignado a su cuenta {email}",
        "A confirmation code was sent to the email assigned to your account {email}";
    ReqKeepOpen => "No cierre esta pantalla: el código caduca en {hours} horas. Con el código: recupera reset confirm",
        "Do not close this screen: the code expires in {hours} hours. With the code: recupera reset confirm";
    ConfirmOk => "Su contraseña ha sido actualizada.", "Your password has been updated.";
    ConfirmRefused => "No se pudo actualizar la contraseña: el código no es válido, ya se usó o caducó, o no corresponde al NIT, usuario o email indicado.",
        "The password was not updated: the code is wrong, used or expired, or does not belong to the NIT, username or email given.";
    HintEmailShared => "Si ese email está en varias cuentas de proveedor, ingrese con el NIT o el usuario.",
        "If that email belongs to several supplier accounts, log in with the NIT or the username.";
    HintIdentShared => "Si el NIT o el email corresponde a más de una cuenta, indique --type o use el usuario.",
        "If the NIT or email belongs to more than one account, give --type or use the username.";
    HintIdentSharedHere => "Si el NIT o el email corresponde a más de una cuenta, escríbalo otra vez con el tipo, o escriba el usuario.",
        "If the NIT or email belongs to more than one account, type it again with the type, or type the username.";
    LoginOk => "Sesión iniciada: {type} {nit}.", "Logged in: {type} {nit}.";
    LoginRefused => "Usuario o contraseña incorrectos.", "Wrong username or password.";
    PurgeDone => "Códigos eliminados: {codes}.", "Codes deleted: {codes}.";
    PurgeDry => "Códigos que se eliminarían: {codes} (--dry-run: no se cambió nada).",
        "Codes that would be deleted: {codes} (--dry-run: nothing changed).";
    Interrupted => "Cancelado.", "Cancelled.";
    InternalPanic => "error interno (un fallo del programa; nada quedó a medias): {err}", "internal error (a bug; nothing was left half-done): {err}";
    SavedButNoOutput => "recupera: hecho y guardado, pero no se pudo escribir la respuesta: {err}",
        "recupera: done and saved, but the answer could not be written: {err}";
    StdinIsTerminal => "--password-stdin lee la contraseña de una tubería (printf '%s\\n' \"$CLAVE\" | recupera …); en una terminal, omítalo y se le preguntará sin mostrarla.",
        "--password-stdin reads the password from a pipe (printf '%s\\n' \"$PASS\" | recupera …); in a terminal, leave it out and you will be asked without echo.";

    // --- database ---
    OsNotFound => "no existe", "does not exist";
    FileNotRegular => "no es un archivo normal (es un dispositivo, una tubería o una carpeta)", "it is not a regular file (a device, a pipe or a folder)";
    FileTooBig => "pasa de {max} KiB", "it is larger than {max} KiB";
    OsPermissionDenied => "permiso denegado", "permission denied";
    OsIsADirectory => "es una carpeta", "is a folder";
    OsNotADirectory => "una parte de la ruta no es una carpeta", "a part of the path is not a folder";
    OsAlreadyExists => "ya existe", "already exists";
    OsStorageFull => "no queda espacio en el disco", "no space left on the disk";
    OsReadOnly => "el sistema de archivos es de solo lectura", "the file system is read-only";
    OsBrokenPipe => "el otro extremo cerró la tubería", "the other end closed the pipe";
    OsTimedOut => "se agotó el tiempo de espera", "timed out";
    OsConnectionRefused => "conexión rechazada", "connection refused";
    OsErrorNumbered => "{what} (error {n} del sistema)", "{what} (system error {n})";
    DbMissing => "No existe la base de datos {path} (revise --db o RECUPERA_DB); no se creó: la crean `user add` y `user import`.",
        "There is no database at {path} (check --db or RECUPERA_DB); none was created: `user add` and `user import` create it.";
    SmtpDeadline => "el servidor no terminó la entrega en {secs} s", "the server did not finish the delivery within {secs} s";
    DbIsDir => "{path} es una carpeta, no un archivo de base de datos.", "{path} is a folder, not a database file.";
    DbNotFile => "{path} no es un archivo normal (es un dispositivo, una tubería o un socket); no se abrió ni se modificó.",
        "{path} is not a regular file (it is a device, a pipe or a socket); it was not opened or changed.";
    DbCannotOpen => "No se puede abrir la base de datos {path}: {err}", "Cannot open the database {path}: {err}";
    DbNotDb => "{path} no es una base de datos de recupera (archivo dañado o de otro programa); no se modificó.",
        "{path} is not a recupera database (damaged, or another program's file); it was left untouched.";
    DbNewer => "La base de datos {path} es de una versión más nueva de recupera (esquema {found}; este programa conoce hasta el {known}). Actualice recupera; la base no se modificó.",
        "The database {path} is from a newer recupera (schema {found}; this program knows up to {known}). Upgrade recupera; the database was left untouched.";
    DbReadOnly => "La base de datos {path} es de solo lectura; no se cambió nada.", "The database {path} is read-only; nothing was changed.";
    DbReadOnlyAny => "La base de datos es de solo lectura; no se cambió nada.", "The database is read-only; nothing was changed.";
    DbBusy => "La base de datos está ocupada por otro proceso; inténtelo de nuevo en un momento.",
        "The database is busy with another process; try again in a moment.";
    DbError => "Error de la base de datos: {err}", "Database error: {err}";
    DbCorrupt => "La base de datos está dañada o no es de recupera; no se modificó.",
        "The database is damaged or not a recupera database; it was left untouched.";
    DbBadValue => "La base de datos tiene un valor que este programa no conoce en {what}: «{value}».",
        "The database holds a value this program does not know in {what}: «{value}».";
    DbModeTightened => "aviso: {path} tenía permisos {mode} (otros usuarios podían leerla); se cambiaron a 600.",
        "warning: {path} had mode {mode} (other users could read it); it was changed to 600.";
    DbForeign => "{path} es de otro usuario (uid {uid}, permisos {mode}) y está vacía o cualquiera puede leerla o escribirla: recupera no guarda cuentas en ella. Use un archivo propio (recupera lo crea con permisos 600).",
        "{path} belongs to another user (uid {uid}, mode {mode}) and is empty or anyone can read or write it: recupera keeps no accounts in it. Use a file of your own (recupera creates it with mode 600).";
    DbModeOpen => "aviso: {path} tiene permisos {mode} y no es de este usuario: otros pueden leerla. Pida a su dueño chmod 600.",
        "warning: {path} has mode {mode} and belongs to another user: others can read it. Ask its owner to chmod 600 it.";
    ConfigDbConninfo => "--db (RECUPERA_DB) parece una cadena de conexión de psql («host=… dbname=…»); recupera usa la forma URL: postgresql://USUARIO@/BASE?host=CARPETA (socket) o postgresql://USUARIO@SERVIDOR:5432/BASE, con la contraseña en PGPASSWORD.",
        "--db (RECUPERA_DB) looks like a psql connection string («host=… dbname=…»); recupera takes the URL form: postgresql://USER@/DB?host=FOLDER (socket) or postgresql://USER@SERVER:5432/DB, with the password in PGPASSWORD.";
    DbWaiting => "la base de datos está ocupada (otro proceso escribe en ella); se espera hasta {secs} s…",
        "the database is busy (another process is writing to it); waiting up to {secs} s…";
    DbNoAnswer => "no contestó en {secs} s (connect_timeout en la URL cambia la espera)", "no answer within {secs} s (connect_timeout in the URL changes the wait)";
    DbUnreachable => "No se puede conectar con el servidor PostgreSQL {server}: {err}",
        "Cannot reach the PostgreSQL server {server}: {err}";
    DbAuth => "El servidor PostgreSQL {server} rechazó las credenciales: {err}. Revise el usuario y PGPASSWORD.",
        "The PostgreSQL server {server} refused the credentials: {err}. Check the user and PGPASSWORD.";
    DbForeignPg => "La base PostgreSQL ya tiene tablas con nombres de recupera ({tables}) que no creó recupera; no se modificó.",
        "The PostgreSQL database already has tables with recupera's names ({tables}) that recupera did not create; it was left untouched.";

    // --- configuration ---
    ConfigTtl => "--code-ttl-hours (RECUPERA_CODE_TTL_HOURS) debe estar entre 1 y 24 (horas).", "--code-ttl-hours (RECUPERA_CODE_TTL_HOURS) must be between 1 and 24 (hours).";
    ConfigMinLen => "--min-password-length (RECUPERA_MIN_PASSWORD_LENGTH) debe estar entre 8 y 256.", "--min-password-length (RECUPERA_MIN_PASSWORD_LENGTH) must be between 8 and 256.";
    ConfigNumber => "{name} debe ser un número entre {min} y {max}, no «{value}».", "{name} must be a number between {min} and {max}, not «{value}».";
    ConfigPepper => "No se puede leer el pepper {path}: {err}. Sin él ninguna contraseña se puede verificar; restaure el archivo o quite RECUPERA_PEPPER_FILE.",
        "Cannot read the pepper {path}: {err}. Without it no password can be verified; restore the file or unset RECUPERA_PEPPER_FILE.";
    ConfigPepperShort => "El pepper {path} debe tener entre 16 bytes y 1 MiB.", "The pepper {path} must hold between 16 bytes and 1 MiB.";
    ConfigDbUrl => "La URL de PostgreSQL no es válida: {err}. Ejemplos: postgresql://usuario@servidor:5432/recupera?sslmode=verify-full o postgresql:///recupera?host=/run/postgresql",
        "The PostgreSQL URL is not valid: {err}. Examples: postgresql://user@host:5432/recupera?sslmode=verify-full or postgresql:///recupera?host=/run/postgresql";
    ConfigDbUrlParam => "parámetro desconocido {param}", "unknown parameter {param}";
    ConfigDbArgv => "La URL de --db o de --to lleva una contraseña, y la línea de órdenes la ve cualquier usuario del equipo: póngala en RECUPERA_DB (o en PGPASSWORD).",
        "The --db or --to URL holds a password, and any user of the machine can see the command line: put it in RECUPERA_DB (or in PGPASSWORD).";
    ConfigDbPlain => "Conexión sin cifrar a {host} rechazada: fuera de este equipo PostgreSQL exige TLS (quite sslmode=disable).",
        "Plain-text connection to {host} refused: off this machine PostgreSQL needs TLS (remove sslmode=disable).";
    ConfigDbCa => "No se puede usar el certificado de CA {path}: {err}", "Cannot use the CA certificate {path}: {err}";
    ConfigDbTls => "El certificado TLS del servidor PostgreSQL {server} no es de confianza: {err}. Indique su CA en RECUPERA_DB_CA_FILE.",
        "The TLS certificate of the PostgreSQL server {server} is not trusted: {err}. Give its CA in RECUPERA_DB_CA_FILE.";
    ConfigNoHome => "No se encontró la carpeta del usuario: indique --db o RECUPERA_DB.", "No home folder found: give --db or RECUPERA_DB.";
    ConfigMailFrom => "RECUPERA_MAIL_FROM no es un remitente válido: {err}", "RECUPERA_MAIL_FROM is not a valid sender: {err}";
    ConfigSmtpUrl => "RECUPERA_SMTP_URL no es válida: {err}. Ejemplos: smtps://usuario:clave@smtp.ejemplo.com o smtp://smtp.ejemplo.com:587?tls=required",
        "RECUPERA_SMTP_URL is not valid: {err}. Examples: smtps://user:pass@smtp.example.com or smtp://smtp.example.com:587?tls=required";
    ConfigSmtpPlain => "SMTP sin cifrar solo se permite hacia la propia máquina (127.0.0.1, ::1, localhost); para {host} use smtps://… o smtp://…:587?tls=required.",
        "Unencrypted SMTP is allowed only to this machine (127.0.0.1, ::1, localhost); for {host} use smtps://… or smtp://…:587?tls=required.";
    ConfigSmtpArgv => "--smtp-url no puede llevar contraseña (la línea de órdenes la ve cualquier usuario): póngala en RECUPERA_SMTP_URL.",
        "--smtp-url cannot carry a password (anyone on the machine can read the command line): put it in RECUPERA_SMTP_URL.";
    ConfigSmtpCa => "No se puede leer el certificado {path}: {err}", "Cannot read the certificate {path}: {err}";

    // --- mail ---
    MailSubject => "Confirmación de cambio de contraseña", "Password change confirmation";
    MailTitle => "Confirmación de recuperación de contraseña", "Password recovery confirmation";
    MailIntro => "Hemos recibido una solicitud para realizar un cambio de contraseña.", "We have received a request to change your password.";
    MailExpiry => "Por seguridad este código caducará en {left} ({date}, hora de Colombia).",
        "For your security this code will expire in {left} ({date}, Colombia time).";
    MailLeftHours => "{hours}Hrs", "{hours} hours";
    MailLeftMinutes => "{minutes} minutos", "{minutes} minutes";
    MailLeftOneMinute => "1 minuto", "1 minute";
    MailSuspendedSubject => "Recuperación de contraseña suspendida", "Password recovery suspended";
    MailSuspendedBody => "Hubo demasiados intentos fallidos de cambiar la contraseña de su cuenta ({type}, NIT {nit}) con un código. Desde el {date} la recuperación de contraseña está suspendida hasta el {until} (hora de Colombia).",
        "There were too many failed attempts to change the password of your account ({type}, NIT {nit}) with a code. Since {date}, password recovery is suspended until {until} (Colombia time).";
    MailSuspendedWarn => "Si no fue usted, alguien conoce su NIT: comuníquese con soporte. Su contraseña actual no cambió.",
        "If it was not you, someone knows your NIT: contact support. Your current password did not change.";
    MailEmailChangedSubject => "Cambio del email registrado", "Registered email changed";
    MailEmailChangedOld => "El email registrado de su cuenta ({type}, NIT {nit}) se cambió el {date} (hora de Colombia) a {email}. Los códigos de recuperación irán solo a esa dirección.",
        "The registered email of your account ({type}, NIT {nit}) was changed on {date} (Colombia time) to {email}. Recovery codes will go only to that address.";
    MailEmailChangedWarn => "Si usted no pidió este cambio, comuníquese de inmediato con soporte.",
        "If you did not ask for this change, contact support at once.";
    MailEmailChangedNew => "Esta dirección es ahora el email registrado de la cuenta {type} con NIT {nit} (cambio del {date}, hora de Colombia). Los códigos de recuperación llegarán aquí.",
        "This address is now the registered email of the {type} account with NIT {nit} (changed on {date}, Colombia time). Recovery codes will arrive here.";
    MailEmailChangedNewWarn => "Si usted no reconoce esta cuenta, comuníquese con soporte.",
        "If you do not recognise this account, contact support.";
    MailIgnore => "Si usted no solicitó un cambio de contraseña, por favor haga caso omiso. Sus datos están seguros.",
        "If you did not request a password change, please ignore this message. Your data is safe.";
    MailDetails => "Detalles de la solicitud", "Request details";
    MailNit => "NIT", "NIT";
    MailCode => "Código", "Code";
    MailDate => "Fecha de la solicitud", "Request date";
    MailChangedSubject => "Su contraseña ha sido actualizada", "Your password has been updated";
    MailChangedBody => "La contraseña de su cuenta ({type}, NIT {nit}) se cambió el {date} (hora de Colombia).",
        "The password of your account ({type}, NIT {nit}) was changed on {date} (Colombia time).";
    MailChangedWarn => "Si usted no hizo este cambio, comuníquese de inmediato con soporte.",
        "If you did not make this change, contact support at once.";
    MailFooterDefault => "Mensaje automático: por favor no responda a este correo.", "Automated message: please do not reply.";
    MailRetryDone => "Correo: {sent} enviados, {dropped} descartados (código caducado o reemplazado), {failed} fallidos, {queued} siguen en cola.",
        "Mail: {sent} sent, {dropped} dropped (code expired or replaced), {failed} failed, {queued} still queued.";
    MailRejected => "El servidor de correo rechazó {failed} mensajes (p. ej. un destinatario que no acepta); siguen en cola: recupera mail list.",
        "The mail server refused {failed} messages (e.g. a recipient it does not accept); they stay queued: recupera mail list.";
    MailOutboxRefused => "No se puede usar la carpeta de salida (RECUPERA_OUTBOX): {err}", "The outbox folder (RECUPERA_OUTBOX) cannot be used: {err}";
    MailCredentials => "El servidor de correo rechazó las credenciales de RECUPERA_SMTP_URL: {err}",
        "The mail server refused the credentials in RECUPERA_SMTP_URL: {err}";
    MailUnavailable => "El servidor de correo no está disponible: {err}", "The mail server is unavailable: {err}";

    OutboxSymlink => "la carpeta de salida es un enlace simbólico; use una carpeta real", "the outbox is a symbolic link; use a real folder";
    OutboxNotDir => "la carpeta de salida no es una carpeta", "the outbox is not a folder";
    OutboxForeign => "la carpeta de salida es de otro usuario y otros pueden escribir en ella (permisos {mode}); use una carpeta propia",
        "the outbox belongs to another user and others can write to it (mode {mode}); use a folder of your own";
    OutboxShared => "la carpeta de salida es compartida: otros pueden escribir en ella (permisos {mode}, como /tmp); no se cambió; use una carpeta propia",
        "the outbox is a shared folder: others can write to it (mode {mode}, like /tmp); it was not changed; use a folder of your own";
    OutboxTightened => "aviso: la carpeta de salida {path} tenía permisos {mode}; se cambiaron a 700.",
        "warning: the outbox {path} had mode {mode}; it was changed to 700.";
    CopyNotEmpty => "La base de destino no está vacía ({accounts} cuentas, {codes} códigos, {mail} correos, {audit} eventos); no se copió nada.",
        "The target database is not empty ({accounts} accounts, {codes} codes, {mail} messages, {audit} events); nothing was copied.";
    CopyMismatch => "La copia no coincide con el origen (esperado {expected}, copiado {got}); no se guardó nada.",
        "The copy does not match the source (expected {expected}, copied {got}); nothing was saved.";

    // --- prompts ---
    PromptType => "Tipo", "Type";
    PromptNit => "NIT (sin dígito verificador)", "NIT (without check digit)";
    PromptNitOrUser => "NIT o Usuario", "NIT or username";
    PromptEmail => "Email", "Email";
    PromptCode => "Código", "Code";
    PromptIdentConfirm => "NIT, Usuario o email (Proveedor)", "NIT, username or email (supplier)";
    PromptUser => "USUARIO (NIT sin dígito verificador)", "USER (NIT without check digit)";
    PromptPassword => "CONTRASEÑA", "PASSWORD";
    PromptNewPassword => "Nueva contraseña", "New password";
    PromptConfirmPassword => "Confirme contraseña", "Confirm password";
    PromptContinue => "¿Continuar ahora con el código? (el cliente lo lee de su correo)", "Continue with the code now? (the customer reads it from their inbox)";
    PromptLoginNow => "¿Iniciar sesión ahora?", "Log in now?";
    PromptUsername => "Usuario (opcional)", "Username (optional)";
    PromptName => "Nombre (opcional)", "Name (optional)";
    PromptWhoSetsPassword => "Contraseña", "Password";
    OptCustomerSetsPassword => "La crea el cliente con un código (así usted no la conoce)", "The customer sets it with a code (so you never learn it)";
    OptTypePasswordNow => "Escribirla ahora", "Type it now";

    // --- demo ---
    DemoIntro => "Demostración del manual de recuperación de contraseña, pasos 01–07, en una base temporal: {dir}",
        "Walk-through of the password-recovery manual, steps 01–07, on a throwaway database: {dir}";
    DemoRegister => "Registro (REGISTRARSE): se crea la cuenta {type} {nit}, {email}, sin contraseña.",
        "Sign-up (REGISTRARSE): account {type} {nit}, {email} is created, without a password.";
    Demo01 => "01. ¿Olvidaste tu contraseña?", "01. Forgot your password?";
    Demo02 => "02. Tipo: {type} · NIT o Usuario: {nit} · Email: {email} · Enviar código",
        "02. Type: {type} · NIT or username: {nit} · Email: {email} · Send code";
    Demo03 => "03. {message}", "03. {message}";
    Demo04 => "04. Correo recibido ({file}), asunto «{subject}»:", "04. Mail received ({file}), subject «{subject}»:";
    Demo05 => "05. Código, NIT, nueva contraseña (generada, {len} caracteres) y confirmación · Actualizar contraseña",
        "05. Code, NIT, new password (generated, {len} characters) and confirmation · Update password";
    Demo06 => "06. {message}", "06. {message}";
    Demo07 => "07. ACCEDER con el NIT {nit} y la nueva contraseña: {message}", "07. ACCEDER with NIT {nit} and the new password: {message}";
    DemoOldCode => "    El mismo código otra vez: {message}", "    The same code again: {message}";
    DemoDone => "Fin de la demostración. La base y el correo temporales se borran al salir.", "End of the walk-through. The throwaway database and mail are deleted on exit.";

    // --- settings from the environment that clap refused (exit 78) ---
    EnvEmpty => "La variable {var} está vacía: dele un valor o quítela del entorno (unset {var}).",
        "The variable {var} is empty: give it a value or remove it from the environment (unset {var}).";
    EnvBadValue => "La variable {var} tiene un valor no válido: «{value}».", "The variable {var} has an invalid value: «{value}».";
    EnvBadChoice => "La variable {var} tiene un valor no válido: «{value}»; valores posibles: {valid}.",
        "The variable {var} has an invalid value: «{value}»; possible values: {valid}.";
    EnvNotUtf8 => "La variable {var} no es texto UTF-8 válido.", "The variable {var} is not valid UTF-8 text.";
    EnvLang => "La variable RECUPERA_LANG vale «{value}»; valores posibles: es, en.",
        "The variable RECUPERA_LANG is «{value}»; possible values: es, en.";

    // --- usage errors (clap) ---
    UsageUtf8 => "Un argumento no es texto UTF-8 válido; escríbalo de nuevo sin caracteres extraños.",
        "An argument is not valid UTF-8 text; type it again without stray characters.";
    UsageExtraArg => "Sobra «{arg}»: esta orden no toma más palabras (entre comillas si es un solo valor con espacios).",
        "«{arg}» is one word too many: this command takes no more (quote a single value with spaces).";
    UsageUnknownArg => "Opción desconocida: {arg}.", "Unknown option: {arg}.";
    UsageUnknownCommand => "Orden desconocida: {cmd}.", "Unknown command: {cmd}.";
    UsageInvalidValue => "Valor no válido «{value}» para {arg}; valores posibles: {valid}.",
        "Invalid value «{value}» for {arg}; possible values: {valid}.";
    UsageMissingValue => "Falta el valor de {arg}.", "{arg} needs a value.";
    UsageBadValue => "Valor no válido para {arg}: «{value}».", "Invalid value for {arg}: «{value}».";
    UsageMissingArg => "Falta {arg}.", "Missing {arg}.";
    UsageMissingCommand => "Falta la orden después de {cmd}: {commands}.", "{cmd} needs a command: {commands}.";
    UsageConflict => "{arg} no se puede usar junto con {other}.", "{arg} cannot be used with {other}.";
    UsageDidYouMean => "¿Quiso decir «{suggestion}»?", "Did you mean «{suggestion}»?";
    UsageMoreHelp => "Más información: recupera --help", "For more information, try: recupera --help";

    // --- tables ---
    ColType => "Tipo", "Type";
    ColUsername => "Usuario", "Username";
    ColEmail => "Email", "Email";
    ColName => "Nombre", "Name";
    ColPassword => "Contraseña", "Password";
    ColLocked => "Bloqueada hasta", "Locked until";
    ColLockedUntil => "Inicio de sesión bloqueado hasta", "Login locked until";
    ColMailLang => "Idioma de los correos", "Email language";
    ColRecovery => "Recuperación", "Recovery";
    RecoveryEnabled => "habilitada", "enabled";
    RecoveryDisabled => "no (cuenta deshabilitada: recupera user enable)", "no (account disabled: recupera user enable)";
    ColFailedLogins => "Inicios de sesión fallidos", "Failed logins";
    ColFailedConfirms => "Confirmaciones fallidas", "Failed confirmations";
    ColPendingCodes => "Códigos pendientes", "Pending codes";
    ColLastLogin => "Último inicio de sesión", "Last login";
    ColCreated => "Creada", "Created";
    ColAccount => "Cuenta", "Account";
    ColCodeCreated => "Creado", "Created";
    ColExpires => "Caduca", "Expires";
    ColAttempts => "Intentos", "Attempts";
    ColState => "Estado", "State";
    ColRecipient => "Destinatario", "Recipient";
    ColKind => "Clase", "Kind";
    ColLastError => "Último error", "Last error";
    ColWhen => "Fecha (hora de Colombia)", "When (Colombia time)";
    ColAgent => "Agente", "Agent";
    ColEvent => "Evento", "Event";
    ColOutcome => "Resultado", "Outcome";
    ColDetail => "Detalle", "Detail";
    Empty => "(ninguno)", "(none)";
    ColDisabled => "Deshabilitada", "Disabled";
    CodePending => "pendiente", "pending";
    CodeExpired => "caducado", "expired";
    CodeUsed => "usado", "used";
    CodeReplaced => "reemplazado", "replaced";
    CodeExhausted => "agotado (5 intentos)", "exhausted (5 tries)";
    MailStateQueued => "en cola", "queued";
    MailStateSent => "enviado", "sent";
    MailStateDropped => "descartado", "dropped";
    MailKindReset => "código de recuperación", "recovery code";
    MailKindChanged => "aviso: contraseña cambiada", "notice: password changed";
    MailKindEmailOld => "aviso: email cambiado (dirección anterior)", "notice: email changed (old address)";
    MailKindEmailNew => "aviso: email cambiado (dirección nueva)", "notice: email changed (new address)";
    MailKindSuspended => "aviso: recuperación suspendida", "notice: recovery suspended";
    DbStatus => "Motor: {engine} ({where})\nEsquema: versión {version}\nCuentas: {accounts} · códigos pendientes: {codes} · correos en cola: {mail} · eventos de auditoría: {audit}",
        "Engine: {engine} ({where})\nSchema: version {version}\nAccounts: {accounts} · pending codes: {codes} · queued mail: {mail} · audit events: {audit}";
    DbCopied => "Copiado de {from} a {to} ({target}) y verificado: {accounts} cuentas, {codes} códigos, {mail} correos, {audit} eventos de auditoría.",
        "Copied from {from} to {to} ({target}) and verified: {accounts} accounts, {codes} codes, {mail} messages, {audit} audit events.";
    ProgressCopy => "Copiando", "Copying";
    ProgressValidate => "Validando", "Checking";
    ProgressWrite => "Escribiendo", "Writing";
    ImportNotUtf8 => "El archivo no es UTF-8 (línea {line}). En Excel, guárdelo como «CSV UTF-8 (delimitado por comas)», o indique --encoding windows-1252.",
        "The file is not UTF-8 (line {line}). In Excel, save it as \"CSV UTF-8 (Comma delimited)\", or pass --encoding windows-1252.";
    ImportBadCsv => "CSV mal formado: {err}", "Malformed CSV: {err}";
    ImportEmpty => "El archivo no tiene línea de encabezados.", "The file has no header line.";
    ImportPlainPassword => "El archivo tiene una columna de contraseñas en claro ({column}): recupera nunca importa contraseñas. Quítela (los clientes crean la suya con un código, --invite) o exporte password_hash.",
        "The file has a plain-text password column ({column}): recupera never imports passwords. Remove it (customers set theirs with a code, --invite) or export password_hash.";
    ImportDuplicateColumn => "La columna {column} aparece dos veces (también la columna {n}).", "The column {column} appears twice (also column {n}).";
    ImportUnknownColumns => "Columnas desconocidas: {columns}. Se admiten tipo|type, nit, email, usuario|username, nombre|name, idioma|lang, estado|state, motivo|reason, password_hash.",
        "Unknown columns: {columns}. Accepted: tipo|type, nit, email, usuario|username, nombre|name, idioma|lang, estado|state, motivo|reason, password_hash.";
    ImportMissingColumn => "Falta la columna {column}.", "The column {column} is missing.";
    ImportFieldCount => "la fila tiene {got} campos y el encabezado {want}", "the row has {got} fields and the header {want}";
    ImportTypeMissing => "falta el tipo (cliente o proveedor)", "the type is missing (cliente or proveedor)";
    ImportTypeBad => "tipo desconocido {value}: use cliente (Cliente Factura) o proveedor", "unknown type {value}: use cliente (Cliente Factura) or proveedor";
    ImportLangBad => "idioma desconocido {value}: es o en", "unknown language {value}: es or en";
    ImportStateBad => "estado desconocido {value}: activa o deshabilitada", "unknown state {value}: active or disabled";
    ImportReasonActive => "un motivo solo va con el estado deshabilitada", "a reason goes only with the state disabled";
    ImportHashUnknown => "no es un hash de contraseña (se admiten argon2id, argon2i y bcrypt $2y$, $2b$, $2a$)",
        "not a password hash (argon2id, argon2i and bcrypt $2y$, $2b$, $2a$ are accepted)";
    ImportHashMalformed => "hash de contraseña mal formado", "malformed password hash";
    ImportHashAlgorithm => "algoritmo de hash no admitido (solo argon2id, argon2i y bcrypt)", "unsupported hash algorithm (only argon2id, argon2i and bcrypt)";
    ImportHashCost => "el hash cuesta más de lo que se admite (argon2: hasta 262144 KiB, 16 pasadas, 8 hilos y 1048576 KiB × pasadas; bcrypt: coste hasta 14): cada inicio de sesión ocuparía el equipo", "the hash costs more than accepted (argon2: up to 262144 KiB, 16 passes, 8 lanes and 1048576 KiB × passes; bcrypt: cost up to 14): every login would tie the machine up";
    ImportDuplicateRow => "la misma cuenta ya está en la línea {line}", "the same account is already on line {line}";
    ImportDuplicateUsername => "el mismo usuario ya está en la línea {line}", "the same username is already on line {line}";
    ImportInvalid => "El archivo tiene {errors} errores; no se importó nada.", "The file has {errors} errors; nothing was imported.";
    ImportRowError => "línea {line}: {column}: {message}", "line {line}: {column}: {message}";
    ImportDone => "Importación terminada: {created} cuentas creadas, {skipped} omitidas (ya existían), {invited} invitaciones en cola.",
        "Import done: {created} accounts created, {skipped} skipped (already there), {invited} invitations queued.";
    ImportDry => "Sin escribir nada (--dry-run): se crearían {created} cuentas, se omitirían {skipped}, se invitaría a {invited}.",
        "Nothing written (--dry-run): {created} accounts would be created, {skipped} skipped, {invited} invited.";
    ImportInvitesQueued => "Las invitaciones salen con el próximo recupera mail retry (cron).", "The invitations go out with the next recupera mail retry (cron).";
    ImportCannotRead => "No se puede leer {file}: {err}", "Cannot read {file}: {err}";
    ImportBadDelimiter => "Separador {value} no admitido: use ; , o tab.", "Separator {value} not supported: use ; , or tab.";
    ExportHashesNeedFile => "Los hashes de contraseña no van a la salida estándar: indique --output ARCHIVO (se crea con permisos 600).",
        "Password hashes never go to standard output: give --output FILE (created with mode 600).";
    ExportExists => "{file} ya existe; use --force para sobrescribirlo.", "{file} already exists; use --force to overwrite it.";
    ExportCannotWrite => "No se puede crear {file}: {err}", "Cannot create {file}: {err}";
    ExportNotFile => "{file} no es un archivo normal (es un enlace simbólico, una carpeta, un dispositivo o una tubería); --force solo sobrescribe archivos, y no se tocó.",
        "{file} is not a regular file (it is a symbolic link, a folder, a device or a pipe); --force only overwrites files, and it was not touched.";
    ExportDone => "{count} cuentas exportadas a {file}.", "{count} accounts exported to {file}.";
    UsageBadEvent => "--event espera uno de estos eventos, o lo que va antes de su punto (user, reset…): {events}; no «{value}».",
        "--event takes one of these events, or what comes before its dot (user, reset…): {events}; not «{value}».";
    UsageBadDate => "{flag} espera una fecha AAAA-MM-DD (hora de Colombia) o RFC 3339 (2026-12-01T08:00:00-05:00), no «{value}».",
        "{flag} takes a date YYYY-MM-DD (Colombia time) or RFC 3339 (2026-12-01T08:00:00-05:00), not «{value}».";
    ColRequests => "Solicitudes de código (24 h)", "Code requests (24 h)";
    StateActive => "activa", "active";
    StateDisabled => "DESHABILITADA", "DISABLED";
    StateLocked => "bloqueada", "locked";
    StateSuspended => "recuperación suspendida", "recovery suspended";
    RecoverySuspendedUntil => "suspendida hasta {until}", "suspended until {until}";
    RequestsUsed => "{used} de {limit}", "{used} of {limit}";
    RequestsUsedUntil => "{used} de {limit}; la próxima se permite desde {at}", "{used} of {limit}; the next is allowed from {at}";

    // --- exit codes (error::EXIT_CODES) ---
    ExitCodesTitle => "Códigos de salida:", "Exit codes:";
    ExitOkShort => "hecho", "done";
    ExitOk => "hecho", "done";
    ExitRefusedShort => "rechazado", "refused";
    ExitRefused => "rechazado: inicio de sesión fallido, código no aceptado", "refused: login failed, code rejected";
    ExitUsageShort => "uso", "usage";
    ExitUsage => "uso: faltan argumentos o están mal escritos (sin terminal, un valor que falta nombra su opción)",
        "usage: missing or malformed arguments (without a terminal, a missing value names its flag)";
    ExitDataShort => "dato no válido", "bad data";
    ExitData => "dato no válido: NIT, email o contraseña no válidos, confirmación distinta, la cuenta ya existe, un archivo de importación con errores; mail retry: el servidor rechazó algunos mensajes",
        "bad data: invalid NIT, email or password, confirmation mismatch, account exists, an import file with errors; mail retry: the server refused some messages";
    ExitUnavailableShort => "servidor no disponible", "server unavailable";
    ExitUnavailable => "servidor no disponible: el de correo (mail retry) o el de PostgreSQL (nombrando servidor y puerto)",
        "server unavailable: the mail server (mail retry) or the PostgreSQL server (naming host and port)";
    ExitSoftwareShort => "error interno", "internal error";
    ExitSoftware => "error interno (un fallo del programa; nunca 1)", "internal error (a bug; never 1)";
    ExitDbShort => "base de datos inutilizable", "database unusable";
    ExitDb => "la base de datos no se puede abrir, está dañada o es más nueva que el programa (no se modifica); o hecho y guardado pero sin poder escribir la respuesta",
        "the database cannot be opened, is damaged or newer than this program (left untouched); or done and saved but the answer could not be written";
    ExitBusyShort => "base de datos ocupada", "database busy";
    ExitBusy => "base de datos ocupada más allá de su espera (o conflictos de PostgreSQL tras los reintentos)",
        "database busy past its timeout (or PostgreSQL conflicts after the retries)";
    ExitConfigShort => "configuración errónea", "bad configuration";
    ExitConfig => "configuración errónea (variables, URL, TLS, credenciales del servidor)", "bad configuration (variables, URLs, TLS, server credentials)";
    ExitInterruptedShort => "cancelado", "cancelled";
    ExitInterrupted => "cancelado en una pregunta (Ctrl-C) antes del resultado; tras el resultado, Ctrl-C termina con 0",
        "cancelled at a prompt (Ctrl-C) before the result; after the result is shown, Ctrl-C ends with 0";
    HelpValues => "Valores: {values}.", "Values: {values}.";
    HelpDefault => "[por omisión: {default}]", "[default: {default}]";
    HelpEnv => "[variable: {env}]", "[variable: {env}]";
    HelpAlias => "[también {alias}]", "[also {alias}]";
    HelpOptions => "OPCIONES", "OPTIONS";
    HelpCommand => "ORDEN", "COMMAND";

    // --- misc ---
    Yes => "sí", "yes";
    YesOption => "Sí", "Yes";
    NoOption => "No", "No";
    No => "no", "no";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn placeholders(s: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = s;
        while let Some(start) = rest.find('{') {
            let after = &rest[start + 1..];
            let Some(end) = after.find('}') else { break };
            out.insert(after[..end].to_string());
            rest = &after[end + 1..];
        }
        out
    }

    /// The system's common errors in the catalog's words (lib tests run in
    /// Spanish), with the error number; others as the system says them.
    #[test]
    fn os_errors_in_our_words() {
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(os_error(&e), "no existe (error 2 del sistema)");
        let e = std::io::Error::from_raw_os_error(libc::EISDIR);
        assert_eq!(os_error(&e), "es una carpeta (error 21 del sistema)");
        let e = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(os_error(&e), "permiso denegado");
        let e = std::io::Error::other("raro\u{1b}[2J");
        assert_eq!(os_error(&e), "raro\\u{1b}[2J");
        assert_eq!(
            crate::error::Error::Io(std::io::Error::from_raw_os_error(libc::ENOSPC)).to_string(),
            "no queda espacio en el disco (error 28 del sistema)"
        );
    }

    /// Invisible characters are shown as escapes (and refused in names),
    /// letters and ordinary spaces are not.
    #[test]
    fn invisible_characters_are_hazards() {
        for c in [
            '\u{1b}',
            '\u{202E}',
            '\u{200D}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{2066}',
            '\u{034F}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{180E}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{E0001}',
            '\u{E01EF}',
            '\u{1D173}',
        ] {
            assert!(is_hazard(c), "U+{:04X}", c as u32);
        }
        assert_eq!(visible("Ana\u{E0041}Gómez"), "Ana\\u{e0041}Gómez");
        for c in [
            'a', 'ñ', 'Ó', ' ', '\u{00A0}', '-', '.', '한', '\u{1100}', '\u{0301}',
        ] {
            assert!(!is_hazard(c), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn every_message_exists_in_both_languages_with_the_same_placeholders() {
        assert!(M::ALL.len() > 50);
        for m in M::ALL {
            let es = m.text(Lang::Es);
            let en = m.text(Lang::En);
            assert!(!es.trim().is_empty(), "{m:?} has no Spanish text");
            assert!(!en.trim().is_empty(), "{m:?} has no English text");
            assert_eq!(
                placeholders(es),
                placeholders(en),
                "{m:?}: placeholders differ between languages"
            );
        }
    }

    /// The labels a listing shows: one word of the catalog per state or
    /// kind, no two alike. Lib tests run in the default language (Spanish:
    /// only `main` sets another).
    #[test]
    fn every_state_and_kind_has_its_own_label_from_the_catalog() {
        use crate::domain::account::AccountType;
        use crate::store::{MailKind, MailState, ShownCodeState};
        assert_eq!(lang(), Lang::Es);
        let codes: Vec<(&str, M)> = ShownCodeState::ALL
            .into_iter()
            .map(|s| (code_state_label(s), s))
            .map(|(l, s)| {
                let m = match s {
                    ShownCodeState::Pending => M::CodePending,
                    ShownCodeState::Expired => M::CodeExpired,
                    ShownCodeState::Used => M::CodeUsed,
                    ShownCodeState::Replaced => M::CodeReplaced,
                    ShownCodeState::Exhausted => M::CodeExhausted,
                };
                (l, m)
            })
            .collect();
        let mails = [
            (mail_state_label(MailState::Queued), M::MailStateQueued),
            (mail_state_label(MailState::Sent), M::MailStateSent),
            (mail_state_label(MailState::Dropped), M::MailStateDropped),
        ];
        let kinds = [
            (mail_kind_label(MailKind::ResetCode), M::MailKindReset),
            (
                mail_kind_label(MailKind::PasswordChanged),
                M::MailKindChanged,
            ),
            (
                mail_kind_label(MailKind::EmailChangedOld),
                M::MailKindEmailOld,
            ),
            (
                mail_kind_label(MailKind::EmailChangedNew),
                M::MailKindEmailNew,
            ),
            (
                mail_kind_label(MailKind::ChannelSuspended),
                M::MailKindSuspended,
            ),
        ];
        for group in [&codes[..], &mails[..], &kinds[..]] {
            let labels: BTreeSet<&str> = group.iter().map(|(l, _)| *l).collect();
            assert_eq!(labels.len(), group.len(), "two alike in {group:?}");
            for (label, m) in group {
                assert_eq!(*label, m.text(Lang::Es), "{m:?}");
            }
        }
        for lang in [Lang::Es, Lang::En] {
            let c = type_label_in(AccountType::Cliente, lang);
            let p = type_label_in(AccountType::Proveedor, lang);
            assert_eq!(c, M::TypeCliente.text(lang));
            assert_eq!(p, M::TypeProveedor.text(lang));
            assert_ne!(c, p);
        }
        assert_eq!(
            type_label(AccountType::Cliente),
            "Cliente Factura",
            "the manual's words"
        );
        assert_eq!(
            type_label(AccountType::Proveedor),
            M::TypeProveedor.text(Lang::Es)
        );
    }

    #[test]
    fn a_quoted_value_is_cut_only_past_its_length() {
        let sixty = "a".repeat(60);
        assert_eq!(quote(&sixty), sixty, "exactly 60 characters stay whole");
        assert_eq!(quote(&"a".repeat(61)), format!("{sixty}…"));
        let three_hundred = "b".repeat(300);
        assert_eq!(quote_long(&three_hundred), three_hundred);
        assert_eq!(quote_long(&"b".repeat(301)), format!("{three_hundred}…"));
    }

    #[test]
    fn fill_and_quote() {
        assert_eq!(
            fill("a {x} b {y}", &[("x", &1), ("y", &"z")]),
            "a 1 b z".to_string()
        );
        let long = "a".repeat(10_000);
        assert_eq!(quote(&long).chars().count(), 61);
        assert_eq!(quote("a\nb"), "a\\u{a}b");
        // One pass: a value that looks like a placeholder stays as it is.
        assert_eq!(
            fill("{path}: {err}", &[("path", &"/x-{err}/"), ("err", &"boom")]),
            "/x-{err}/: boom"
        );
        assert_eq!(fill("{unknown} {x}", &[("x", &1)]), "{unknown} 1");
    }
}
