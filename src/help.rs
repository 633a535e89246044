//! Help texts for every command and flag, in Spanish and English.
//!
//! Invariants:
//! - Keys are command paths (`"reset confirm"`), a flag under its command
//!   (`"reset confirm --code"`, globals as `"--db"`), a positional by its
//!   id (`"user show <ident>"`), and `"… #after"` for a command's examples.
//! - A unit test walks the clap tree and fails if any command or flag lacks
//!   a text here, or if a text here names nothing.
//! - Written for a support agent: what it does in one line, then an example.

use crate::i18n::Lang;
use clap::{Arg, ArgAction, Command};

pub const HELP: &[(&str, &str, &str)] = &[
    (
        "",
        "Recuperación de contraseña de la plataforma de facturación, sobre un archivo SQLite local o un servidor PostgreSQL compartido.",
        "Password recovery for the e-invoicing platform, over a local SQLite file or a shared PostgreSQL server.",
    ),
    (
        " #after",
        "Ejemplos:\n  recupera user add --type cliente --nit 900102030 --email ana@empresa.co --no-password\n  recupera reset request --nit 900102030 --email ana@empresa.co\n  recupera reset confirm --user 900102030 --code 7Zx2f\n  recupera login --user 900102030",
        "Examples:\n  recupera user add --type cliente --nit 900102030 --email ana@company.co --no-password\n  recupera reset request --nit 900102030 --email ana@company.co\n  recupera reset confirm --user 900102030 --code 7Zx2f\n  recupera login --user 900102030",
    ),
    // ---- global flags
    ("--help", "Muestra esta ayuda", "Show this help"),
    ("--version", "Muestra la versión", "Show the version"),
    (
        "--db",
        "Archivo SQLite, o URL de un servidor PostgreSQL (postgresql://usuario@servidor/base; la contraseña en PGPASSWORD o en RECUPERA_DB, nunca en la línea de órdenes) [por omisión: ~/.local/share/recupera/recupera.db]",
        "SQLite file, or the URL of a PostgreSQL server (postgresql://user@host/db; the password in PGPASSWORD or RECUPERA_DB, never on the command line) [default: ~/.local/share/recupera/recupera.db]",
    ),
    (
        "--db-ca-file",
        "Certificado de CA adicional (PEM) en el que confiar para el TLS de PostgreSQL",
        "Extra CA certificate (PEM) to trust for PostgreSQL's TLS",
    ),
    (
        "--json",
        "Imprime un documento JSON en la salida estándar en vez de texto",
        "Print one JSON document on stdout instead of text",
    ),
    (
        "--lang",
        "Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]",
        "Language of messages [default: RECUPERA_LANG, else the locale's; Spanish unless it says English]",
    ),
    (
        "--agent",
        "Quién actúa, para la auditoría [por omisión: $USER]",
        "Who is acting, for the audit log [default: $USER]",
    ),
    (
        "--outbox",
        "Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]",
        "Folder for .eml files when no SMTP server is set [default: outbox/ beside the database]",
    ),
    (
        "--smtp-url",
        "Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)",
        "SMTP server: smtps://user:pass@host[:port] or smtp://host:587?tls=required (credentials only through the environment variable, never on the command line)",
    ),
    (
        "--smtp-ca-file",
        "Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP",
        "Extra CA certificate (PEM) to trust for the SMTP server",
    ),
    (
        "--smtp-timeout",
        "Segundos de espera al servidor SMTP antes de desistir",
        "Seconds to wait for the SMTP server before giving up",
    ),
    (
        "--mail-from",
        "Remitente de los correos, p. ej. \"Soporte <no-reply@empresa.co>\"",
        "Sender of every message, e.g. \"Support <no-reply@company.co>\"",
    ),
    (
        "--mail-footer",
        "Línea de pie de los correos (empresa, teléfonos de soporte)",
        "Footer line of every message (company, support phones)",
    ),
    (
        "--code-ttl-hours",
        "Horas de validez de un código de recuperación (1–24)",
        "Hours a recovery code stays valid (1–24)",
    ),
    (
        "--min-password-length",
        "Longitud mínima de la contraseña en caracteres (8–256)",
        "Minimum password length in characters (8–256)",
    ),
    (
        "--pepper-file",
        "Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base",
        "File with a secret pepper mixed into every hash; keep it out of the database's backups",
    ),
    (
        "--request-min-ms",
        "Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)",
        "Minimum duration of \"reset request\" in milliseconds: the answer takes as long whether or not the account exists (0 turns it off)",
    ),
    (
        "--busy-timeout-ms",
        "Milisegundos de espera si la base está ocupada antes de desistir (salida 75)",
        "Milliseconds to wait for a busy database before giving up (exit 75)",
    ),
    // ---- user
    (
        "user",
        "Cuentas: crear, listar, ver, desbloquear, deshabilitar, editar, borrar, importar, exportar",
        "Accounts: create, list, show, unlock, disable, edit, delete, import, export",
    ),
    (
        "user add",
        "Crea una cuenta (el «REGISTRARSE» de la pantalla de inicio)",
        "Create an account (the login screen's \"REGISTRARSE\")",
    ),
    (
        "user add #after",
        "Ejemplos:\n  recupera user add --type cliente --nit 900.102.030-4 --email ana@empresa.co --no-password\n  printf '%s\\n' \"$CLAVE\" | recupera user add --type proveedor --nit 800003122 \\\n      --username acme --email ventas@acme.co --password-stdin",
        "Examples:\n  recupera user add --type cliente --nit 900.102.030-4 --email ana@company.co --no-password\n  printf '%s\\n' \"$PASS\" | recupera user add --type proveedor --nit 800003122 \\\n      --username acme --email sales@acme.co --password-stdin",
    ),
    (
        "user add --type",
        "Tipo de cuenta: cliente (Cliente Factura) o proveedor [por omisión: cliente; en una terminal sin --nit, se pregunta]",
        "Account type: cliente (invoice client) or proveedor (supplier) [default: cliente; asked in a terminal without --nit]",
    ),
    (
        "user add --nit",
        "NIT, con o sin dígito verificador (900102030 o 900.102.030-4)",
        "NIT, with or without check digit (900102030 or 900.102.030-4)",
    ),
    (
        "user add --email",
        "Email registrado: los códigos se envían solo a esta dirección",
        "Registered email: codes go only to this address",
    ),
    (
        "user add --username",
        "Usuario (proveedor): 3–64 letras, dígitos, «.», «_» o «-», con al menos una letra",
        "Username (proveedor): 3–64 letters, digits, '.', '_' or '-', at least one letter",
    ),
    (
        "user add --name",
        "Nombre de la persona o empresa",
        "Person or company name",
    ),
    (
        "user add --mail-lang",
        "Idioma de los correos de la cuenta [por omisión: --lang si se escribió, si no es]",
        "Language of the account's emails [default: --lang when typed, else es]",
    ),
    (
        "user add --password-stdin",
        "Lee la contraseña de la entrada estándar (primera línea; una segunda línea, si la hay, debe coincidir)",
        "Read the password from standard input (first line; a second line, if any, must match)",
    ),
    (
        "user add --no-password",
        "Crea la cuenta sin contraseña: el cliente pone la primera con un código",
        "Create without a password: the customer sets the first one with a code",
    ),
    ("user list", "Lista las cuentas", "List accounts"),
    (
        "user list #after",
        "Ejemplo:\n  recupera user list --type proveedor --json",
        "Example:\n  recupera user list --type proveedor --json",
    ),
    ("user list --type", "Solo este tipo", "Only this type"),
    (
        "user show",
        "Muestra una cuenta: bloqueos, códigos pendientes, último acceso",
        "Show one account: locks, pending codes, last login",
    ),
    (
        "user show #after",
        "Ejemplo:\n  recupera user show 900102030",
        "Example:\n  recupera user show 900102030",
    ),
    (
        "user show <ident>",
        "NIT, o usuario o email de un proveedor",
        "NIT, or a proveedor's username or email",
    ),
    (
        "user show --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor",
        "Account type, when the NIT has both a cliente and a proveedor",
    ),
    (
        "user unlock",
        "Quita el bloqueo de inicio de sesión y rehabilita la recuperación de una cuenta",
        "Clear an account's login lock and re-enable its recovery channel",
    ),
    (
        "user unlock #after",
        "Ejemplo:\n  recupera user unlock 900102030 --type cliente",
        "Example:\n  recupera user unlock 900102030 --type cliente",
    ),
    (
        "user unlock <ident>",
        "NIT, o usuario o email de un proveedor",
        "NIT, or a proveedor's username or email",
    ),
    (
        "user unlock --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor",
        "Account type, when the NIT has both a cliente and a proveedor",
    ),
    (
        "user disable",
        "Bloquea una cuenta: no inicia sesión ni recibe códigos (sus códigos pendientes mueren)",
        "Block an account: no login, no codes (its pending codes die)",
    ),
    (
        "user disable #after",
        "Ejemplo:\n  recupera user disable 900102030 --reason \"cuenta comprometida, ticket 4521\"",
        "Example:\n  recupera user disable 900102030 --reason \"compromised account, ticket 4521\"",
    ),
    (
        "user disable <ident>",
        "NIT, o usuario o email de un proveedor (se pregunta en una terminal)",
        "NIT, or a proveedor's username or email (asked in a terminal)",
    ),
    (
        "user disable --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor",
        "Account type, when the NIT has both a cliente and a proveedor",
    ),
    (
        "user disable --reason",
        "Motivo, para la auditoría y user show",
        "Reason, for the audit log and user show",
    ),
    (
        "user enable",
        "Deshace user disable (los códigos anteriores siguen sin valer)",
        "Undo user disable (earlier codes stay dead)",
    ),
    (
        "user enable <ident>",
        "NIT, o usuario o email de un proveedor (se pregunta en una terminal)",
        "NIT, or a proveedor's username or email (asked in a terminal)",
    ),
    (
        "user enable --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor",
        "Account type, when the NIT has both a cliente and a proveedor",
    ),
    (
        "user edit",
        "Cambia el email, nombre, usuario o idioma de los correos de una cuenta; un email nuevo anula los códigos pendientes y se avisa a la dirección anterior y a la nueva",
        "Change an account's email, name, username or mail language; a new email kills pending codes and both the old and the new address are told",
    ),
    (
        "user edit #after",
        "Ejemplo:\n  recupera user edit 900102030 --email nueva@empresa.co",
        "Example:\n  recupera user edit 900102030 --email new@company.co",
    ),
    (
        "user edit <ident>",
        "NIT, o usuario o email de un proveedor (se pregunta en una terminal)",
        "NIT, or a proveedor's username or email (asked in a terminal)",
    ),
    (
        "user edit --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor",
        "Account type, when the NIT has both a cliente and a proveedor",
    ),
    (
        "user edit --email",
        "Email registrado nuevo",
        "New registered email",
    ),
    (
        "user edit --name",
        "Nombre nuevo (vacío: sin nombre)",
        "New name (empty: no name)",
    ),
    (
        "user edit --username",
        "Usuario nuevo de un proveedor (vacío: sin usuario)",
        "A proveedor's new username (empty: none)",
    ),
    (
        "user edit --mail-lang",
        "Idioma de los correos de la cuenta",
        "Language of the account's emails",
    ),
    (
        "user delete",
        "Borra una cuenta para siempre (Ley 1581 de 2012, habeas data): cuenta, códigos, correos y límites; la auditoría queda con un seudónimo",
        "Delete an account for good (Ley 1581 de 2012, habeas data): account, codes, mail and limits; the audit log keeps a pseudonym",
    ),
    (
        "user delete #after",
        "En una terminal muestra la cuenta y pide confirmación; sin terminal exige --yes.\nEjemplo:\n  recupera user delete 900102030 --yes",
        "In a terminal it shows the account and asks; without one it needs --yes.\nExample:\n  recupera user delete 900102030 --yes",
    ),
    (
        "user delete <ident>",
        "NIT, o usuario o email de un proveedor (se pregunta en una terminal)",
        "NIT, or a proveedor's username or email (asked in a terminal)",
    ),
    (
        "user delete --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor",
        "Account type, when the NIT has both a cliente and a proveedor",
    ),
    (
        "user delete --yes",
        "Confirma el borrado sin preguntar (scripts)",
        "Confirm the deletion without asking (scripts)",
    ),
    (
        "user import",
        "Crea cuentas desde un CSV exportado de la plataforma (UTF-8 con o sin BOM, o Windows-1252; separador ; , o tabulador): tipo, nit, email, usuario, nombre, idioma, estado, motivo, password_hash. Se valida todo antes de escribir; si hay errores no se escribe nada",
        "Create accounts from a CSV exported by the platform (UTF-8 with or without BOM, or Windows-1252; separator ; , or tab): tipo, nit, email, usuario, nombre, idioma, estado, motivo, password_hash. Everything is checked before writing; with any error nothing is written",
    ),
    (
        "user import #after",
        "Columnas (en cualquier orden, español o inglés): tipo|type (cliente, proveedor, Cliente Factura), nit (con o sin puntos y dígito verificador), email, usuario|username, nombre|name, idioma|lang, estado|state (activa, deshabilitada), motivo|reason (de la deshabilitación), password_hash (argon2id/argon2i o bcrypt $2y$/$2b$/$2a$). Nunca contraseñas en claro.\nEjemplos:\n  recupera user import clientes.csv --dry-run\n  recupera user import clientes.csv --on-conflict skip --invite\n  recupera user import viejo.csv --encoding windows-1252",
        "Columns (any order, Spanish or English): tipo|type (cliente, proveedor, Cliente Factura), nit (with or without dots and check digit), email, usuario|username, nombre|name, idioma|lang, estado|state (activa, deshabilitada; active, disabled), motivo|reason (why it was disabled), password_hash (argon2id/argon2i or bcrypt $2y$/$2b$/$2a$). Never plain-text passwords.\nExamples:\n  recupera user import customers.csv --dry-run\n  recupera user import customers.csv --on-conflict skip --invite\n  recupera user import old.csv --encoding windows-1252",
    ),
    (
        "user import <file>",
        "El archivo CSV, o - para la entrada estándar",
        "The CSV file, or - for standard input",
    ),
    (
        "user import --dry-run",
        "Valida y cuenta, sin escribir nada",
        "Check and count; write nothing",
    ),
    (
        "user import --on-conflict",
        "Una fila cuya cuenta ya existe: fail (error, no se importa nada) o skip (se salta y se cuenta)",
        "A row whose account exists: fail (an error, nothing is imported) or skip (skipped and counted)",
    ),
    (
        "user import --delimiter",
        "Fuerza el separador: ; , o tab [por omisión: el de la línea de encabezados]",
        "Force the separator: ; , or tab [default: the header line's]",
    ),
    (
        "user import --encoding",
        "Codificación del archivo; windows-1252 para CSV de Excel antiguos",
        "The file's encoding; windows-1252 for older Excel CSV files",
    ),
    (
        "user import --invite",
        "A cada cuenta nueva sin contraseña, el correo del manual con un código (por la cola: recupera mail retry)",
        "To each new account without a password, the manual's email with a code (through the queue: recupera mail retry)",
    ),
    (
        "user export",
        "Escribe todas las cuentas con las columnas de user import, en CSV (UTF-8, separador ,) o JSON por líneas",
        "Write every account with user import's columns, as CSV (UTF-8, separator ,) or JSON lines",
    ),
    (
        "user export #after",
        "Ejemplos:\n  recupera user export > cuentas.csv\n  recupera user export --with-hashes --output respaldo.csv",
        "Examples:\n  recupera user export > accounts.csv\n  recupera user export --with-hashes --output backup.csv",
    ),
    ("user export --format", "Formato de salida", "Output format"),
    (
        "user export --with-hashes",
        "Añade password_hash (solo con --output: los hashes nunca van a la salida estándar)",
        "Add password_hash (only with --output: hashes never go to standard output)",
    ),
    (
        "user export --output",
        "Archivo nuevo (permisos 600) en vez de la salida estándar",
        "A new file (mode 600) instead of standard output",
    ),
    (
        "user export --force",
        "Sobrescribe el archivo de --output si existe",
        "Overwrite the --output file if it exists",
    ),
    // ---- login
    (
        "login",
        "Inicia sesión con NIT (o usuario/email de proveedor) y contraseña (paso 07 del manual)",
        "Log in with NIT (or a proveedor's username/email) and password (manual step 07)",
    ),
    (
        "login #after",
        "Ejemplos:\n  recupera login --user 900102030\n  printf '%s\\n' \"$CLAVE\" | recupera login --user 900102030 --password-stdin",
        "Examples:\n  recupera login --user 900102030\n  printf '%s\\n' \"$PASS\" | recupera login --user 900102030 --password-stdin",
    ),
    (
        "login --type",
        "Tipo de cuenta [por omisión: cliente; en una terminal sin --user, se pregunta]",
        "Account type [default: cliente; asked in a terminal without --user]",
    ),
    (
        "login --user",
        "USUARIO: el NIT sin dígito verificador (un proveedor también puede usar su usuario o email)",
        "USER: the NIT without check digit (a proveedor may also use username or email)",
    ),
    (
        "login --password-stdin",
        "Lee la contraseña de la entrada estándar en vez de preguntarla",
        "Read the password from standard input instead of a hidden prompt",
    ),
    // ---- reset
    (
        "reset",
        "Recuperación de contraseña: pedir un código, confirmarlo con una contraseña nueva",
        "Password recovery: request a code, confirm it with a new password",
    ),
    (
        "reset request",
        "Envía un código de recuperación al email registrado de la cuenta (pasos 01–04 del manual)",
        "Send a recovery code to the account's registered email (manual steps 01–04)",
    ),
    (
        "reset request #after",
        "Ejemplo:\n  recupera reset request --type cliente --nit 900102030 --email ana@empresa.co\n\nLa respuesta es la misma exista o no la cuenta: no sirve para averiguar cuentas.",
        "Example:\n  recupera reset request --type cliente --nit 900102030 --email ana@company.co\n\nThe answer is the same whether or not the account exists, so it cannot be used to probe accounts.",
    ),
    (
        "reset request --type",
        "Tipo de cuenta («Tipo»: Cliente Factura o Proveedor) [por omisión: cliente; en una terminal sin --user ni --email, se pregunta]",
        "Account type (\"Tipo\": invoice client or supplier) [default: cliente; asked in a terminal without --user and --email]",
    ),
    (
        "reset request --user",
        "«NIT o Usuario»: NIT sin dígito verificador, o el usuario de un proveedor",
        "\"NIT o Usuario\": NIT without check digit, or a proveedor's username",
    ),
    (
        "reset request --email",
        "El email registrado en la cuenta",
        "The email registered on the account",
    ),
    (
        "reset request --no-continue",
        "En una terminal, termina tras el envío en vez de ofrecer seguir con el código",
        "In a terminal, stop after sending instead of offering to go on to the code",
    ),
    (
        "reset confirm",
        "Pone una contraseña nueva con el código recibido por email (pasos 05–06 del manual)",
        "Set a new password with the emailed code (manual steps 05–06)",
    ),
    (
        "reset confirm #after",
        "Ejemplos:\n  recupera reset confirm --user 900102030 --code 7Zx2f\n  printf '%s\\n' \"$NUEVA\" | recupera reset confirm --user 900102030 --code 7Zx2f --password-stdin",
        "Examples:\n  recupera reset confirm --user 900102030 --code 7Zx2f\n  printf '%s\\n' \"$NEW\" | recupera reset confirm --user 900102030 --code 7Zx2f --password-stdin",
    ),
    (
        "reset confirm --user",
        "«NIT, Usuario o email (Proveedor)»",
        "\"NIT, Usuario o email (Proveedor)\": NIT, or a proveedor's username or email",
    ),
    (
        "reset confirm --code",
        "El código de 5 caracteres del email (distingue mayúsculas); un script puede pasarlo en RECUPERA_CODE para que no aparezca en la lista de procesos",
        "The 5-character code from the email (case-sensitive); a script can pass it in RECUPERA_CODE to keep it out of the process list",
    ),
    (
        "reset confirm --type",
        "Tipo de cuenta, si el NIT tiene cliente y proveedor con código pendiente",
        "Account type, when the NIT has both a cliente and a proveedor with a pending code",
    ),
    (
        "reset confirm --password-stdin",
        "Lee la contraseña nueva de la entrada estándar (primera línea; una segunda línea, si la hay, debe coincidir)",
        "Read the new password from standard input (first line; a second line, if any, must match)",
    ),
    (
        "reset confirm --no-login",
        "En una terminal, no ofrece iniciar sesión después",
        "In a terminal, do not offer to log in afterwards",
    ),
    // ---- codes
    (
        "codes",
        "Códigos de recuperación: borrar los terminados (cron), listarlos",
        "Recovery codes: purge finished ones (cron), list them",
    ),
    (
        "codes purge",
        "Borra los códigos caducados, usados y muertos (para cron)",
        "Delete expired, used and dead codes (for cron)",
    ),
    (
        "codes purge #after",
        "Ejemplo (crontab, cada 15 minutos):\n  */15 * * * * recupera --db /srv/recupera/recupera.db codes purge",
        "Example (crontab, every 15 minutes):\n  */15 * * * * recupera --db /srv/recupera/recupera.db codes purge",
    ),
    (
        "codes purge --dry-run",
        "Cuenta lo que se borraría, sin cambiar nada",
        "Count what would be deleted; change nothing",
    ),
    (
        "codes list",
        "Lista los códigos guardados (nunca los códigos en sí)",
        "List stored codes (never the codes themselves)",
    ),
    // ---- mail
    (
        "mail",
        "Cola de correo: listarla, reintentar el envío (cron)",
        "The mail queue: list it, retry delivery (cron)",
    ),
    (
        "mail list",
        "Lista la cola de correo",
        "List the mail queue",
    ),
    (
        "mail retry",
        "Envía ya el correo en cola (para cron; salida 69 si el servidor no responde)",
        "Deliver queued mail now (for cron; exit 69 if the server is unreachable)",
    ),
    (
        "mail retry #after",
        "Ejemplo (crontab, cada 5 minutos):\n  */5 * * * * recupera mail retry",
        "Example (crontab, every 5 minutes):\n  */5 * * * * recupera mail retry",
    ),
    // ---- audit
    (
        "audit",
        "Muestra la auditoría, lo más reciente primero",
        "Show the audit log, newest first",
    ),
    (
        "audit #after",
        "Eventos: user.add, user.import, user.edit, user.disable, user.enable, user.unlock, user.delete, login, reset.request, reset.confirm, recovery.suspend, mail.deliver, codes.purge.\nEjemplos:\n  recupera audit --user 900102030 --limit 20\n  recupera audit --since 2026-11-01 --until 2026-11-30 --event reset --format csv > noviembre.csv\n  recupera audit --agent maria --event user",
        "Events: user.add, user.import, user.edit, user.disable, user.enable, user.unlock, user.delete, login, reset.request, reset.confirm, recovery.suspend, mail.deliver, codes.purge.\nExamples:\n  recupera audit --user 900102030 --limit 20\n  recupera audit --since 2026-11-01 --until 2026-11-30 --event reset --format csv > november.csv\n  recupera audit --agent maria --event user",
    ),
    (
        "audit --user",
        "Solo los eventos de esta cuenta (NIT, usuario/email de proveedor, o el seudónimo borrado-N de una cuenta borrada). En audit, --agent filtra por agente",
        "Only events of this account (NIT, a proveedor's username/email, or the borrado-N pseudonym of a deleted account). On audit, --agent filters by agent",
    ),
    (
        "audit --type",
        "Tipo de cuenta para --user, si el NIT tiene ambos",
        "Account type for --user, when the NIT has both",
    ),
    ("audit --limit", "Como mucho N eventos", "At most N events"),
    (
        "audit --since",
        "Desde esta fecha: AAAA-MM-DD (hora de Colombia, desde las 00:00) o RFC 3339",
        "From this date: YYYY-MM-DD (Colombia time, from 00:00) or RFC 3339",
    ),
    (
        "audit --until",
        "Hasta esta fecha: AAAA-MM-DD (hora de Colombia, el día entero incluido) o RFC 3339 (excluido)",
        "Until this date: YYYY-MM-DD (Colombia time, the whole day included) or RFC 3339 (excluded)",
    ),
    (
        "audit --event",
        "Solo este evento (login, reset.confirm…) o grupo (reset, user)",
        "Only this event (login, reset.confirm…) or group (reset, user)",
    ),
    (
        "audit --format",
        "Formato de salida; csv para informes de cumplimiento",
        "Output format; csv for compliance reports",
    ),
    // ---- db
    (
        "db",
        "La base de datos: estado, copia a otro motor o archivo",
        "The database: status, copy to another engine or file",
    ),
    (
        "db status",
        "Motor, versión del esquema y cuentas, códigos pendientes, correo en cola y eventos",
        "Engine, schema version and counts of accounts, pending codes, queued mail and events",
    ),
    (
        "db copy",
        "Copia todo (cuentas con sus hashes, códigos, límites, correo, auditoría) a una base vacía, SQLite o PostgreSQL, en una transacción, y verifica las cuentas",
        "Copy everything (accounts with their hashes, codes, limits, mail, audit) into an empty database, SQLite or PostgreSQL, in one transaction, and verify the counts",
    ),
    (
        "db copy #after",
        "Ejemplos:\n  recupera --db recupera.db db copy --to 'postgresql://recupera@db.empresa.co/recupera?sslmode=verify-full'\n  recupera db copy --to /respaldos/recupera.db",
        "Examples:\n  recupera --db recupera.db db copy --to 'postgresql://recupera@db.company.co/recupera?sslmode=verify-full'\n  recupera db copy --to /backups/recupera.db",
    ),
    (
        "db copy --to",
        "Destino vacío: archivo SQLite o URL de PostgreSQL (sin contraseña: PGPASSWORD)",
        "Empty target: a SQLite file or a PostgreSQL URL (no password in it: PGPASSWORD)",
    ),
    // ---- demo
    (
        "demo",
        "Recorre los pasos 01–07 del manual en una base temporal e imprime cada uno",
        "Run the manual's steps 01–07 on a throwaway database and print each one",
    ),
];

/// Headings and fixed words of the help screen.
fn word(lang: Lang, key: &str) -> &'static str {
    match (lang, key) {
        (Lang::Es, "usage") => "Uso:",
        (Lang::En, "usage") => "Usage:",
        (Lang::Es, "options") => "Opciones",
        (Lang::En, "options") => "Options",
        (Lang::Es, "arguments") => "Argumentos",
        (Lang::En, "arguments") => "Arguments",
        (Lang::Es, "commands") => "Órdenes",
        (Lang::En, "commands") => "Commands",
        (Lang::Es, "Mail") => "Correo",
        (Lang::Es, "Policy") => "Política",
        (Lang::En, "Mail") => "Mail",
        (Lang::En, "Policy") => "Policy",
        _ => "",
    }
}

pub fn lookup(key: &str, lang: Lang) -> Option<&'static str> {
    HELP.iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, es, en)| match lang {
            Lang::Es => *es,
            Lang::En => *en,
        })
}

/// The help text of `key` as shown: the catalog's, plus, for the root, the
/// exit codes generated from `error::EXIT_CODES`.
fn shown(key: &str, lang: Lang) -> Option<String> {
    let text = lookup(key, lang)?;
    if key == " #after" {
        return Some(format!("{text}\n\n{}", crate::error::exit_codes_line(lang)));
    }
    Some(text.to_string())
}

/// What clap would print in English after a flag's help ([env: …],
/// [default: …], [possible values: …]), written in `lang` instead.
fn suffixes(a: &Arg, lang: Lang) -> String {
    use crate::i18n::M;
    let mut out = Vec::new();
    let values: Vec<String> = a
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_string())
        .collect();
    if !values.is_empty() && a.get_action().takes_values() {
        out.push(crate::i18n::tl(
            M::HelpValues,
            lang,
            &[("values", &values.join(", "))],
        ));
    }
    let defaults: Vec<String> = a
        .get_default_values()
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect();
    if !defaults.is_empty() && a.get_action().takes_values() {
        out.push(crate::i18n::tl(
            M::HelpDefault,
            lang,
            &[("default", &defaults.join(", "))],
        ));
    }
    let aliases: Vec<String> = a
        .get_all_aliases()
        .unwrap_or_default()
        .iter()
        .filter(|al| al.len() > 1)
        .map(|al| format!("--{al}"))
        .collect();
    if !aliases.is_empty() {
        out.push(crate::i18n::tl(
            M::HelpAlias,
            lang,
            &[("alias", &aliases.join(", "))],
        ));
    }
    if let Some(env) = a.get_env() {
        out.push(crate::i18n::tl(
            M::HelpEnv,
            lang,
            &[("env", &env.to_string_lossy())],
        ));
    }
    out.join(" ")
}

/// A value's placeholder in `lang` (`<FILE>` is `<ARCHIVO>` in Spanish).
fn value_name(name: &str, lang: Lang) -> String {
    if lang == Lang::En {
        return name.to_string();
    }
    match name {
        "FILE" => "ARCHIVO",
        "NAME" => "NOMBRE",
        "HOURS" => "HORAS",
        "SECS" => "SEGUNDOS",
        "TYPE" => "TIPO",
        "LANG" => "IDIOMA",
        "MAILBOX" => "REMITENTE",
        "TEXT" => "TEXTO",
        "USER" => "USUARIO",
        "DIR" => "CARPETA",
        "PATH|URL" => "RUTA|URL",
        "CODE" => "CÓDIGO",
        "DATE" => "FECHA",
        "EVENT" => "EVENTO",
        "FORMAT" => "FORMATO",
        "WHAT" => "QUÉ",
        "ENCODING" => "CODIFICACIÓN",
        other => other,
    }
    .to_string()
}

/// The usage line in `lang`: clap's has English tokens ([OPTIONS],
/// <COMMAND>).
fn usage(cmd: &Command, path: &str, lang: Lang) -> String {
    use crate::i18n::M;
    let mut s = if path.is_empty() {
        "recupera".to_string()
    } else {
        format!("recupera {path}")
    };
    s.push_str(&format!(" [{}]", M::HelpOptions.text(lang)));
    for a in cmd.get_positionals() {
        let name = a.get_value_names().and_then(|v| v.first()).map_or_else(
            || a.get_id().to_string().to_uppercase(),
            |v| value_name(v, lang),
        );
        if a.is_required_set() {
            s.push_str(&format!(" <{name}>"));
        } else {
            s.push_str(&format!(" [{name}]"));
        }
    }
    if cmd.has_subcommands() {
        s.push_str(&format!(" <{}>", M::HelpCommand.text(lang)));
    }
    s
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_string()
    } else {
        format!("{path} {part}")
    }
}

/// The key of an argument under a command path.
pub fn arg_key(path: &str, a: &Arg) -> String {
    match a.get_long() {
        Some(long) => join(path, &format!("--{long}")),
        None => join(path, &format!("<{}>", a.get_id())),
    }
}

fn template(lang: Lang) -> String {
    format!(
        "{{before-help}}{{about-with-newline}}\n{} {{usage}}\n\n{{all-args}}{{after-help}}",
        word(lang, "usage")
    )
}

fn apply(mut cmd: Command, path: &str, lang: Lang) -> Command {
    if let Some(t) = lookup(path, lang) {
        cmd = cmd.about(t);
    }
    if let Some(t) = shown(&format!("{path} #after"), lang) {
        cmd = cmd.after_help(t);
    }
    let usage_line = usage(&cmd, path, lang);
    cmd = cmd
        .help_template(template(lang))
        .override_usage(usage_line)
        .subcommand_help_heading(word(lang, "commands"))
        .subcommand_value_name(crate::i18n::M::HelpCommand.text(lang))
        .disable_help_subcommand(true);
    let args: Vec<(String, String, Option<String>, bool, String)> = cmd
        .get_arguments()
        .map(|a| {
            (
                a.get_id().to_string(),
                arg_key(path, a),
                a.get_help_heading().map(str::to_string),
                a.is_positional(),
                suffixes(a, lang),
            )
        })
        .collect();
    for (id, key, heading, positional, extra) in args {
        let help = lookup(&key, lang).map(|h| match extra.as_str() {
            "" => h.to_string(),
            // The values are a sentence ("Values: a, b."; the other
            // suffixes are in brackets): the help before them ends as one.
            _ if !extra.starts_with('[') && !h.ends_with(['.', ':', '?', '!']) => {
                format!("{h}. {extra}")
            }
            _ => format!("{h} {extra}"),
        });
        let heading = match heading.as_deref() {
            Some(h) => word(lang, h),
            None if positional => word(lang, "arguments"),
            None => word(lang, "options"),
        };
        // Configuration flags stay out of `-h` (still in `--help`).
        let config = heading == word(lang, "Mail") || heading == word(lang, "Policy");
        cmd = cmd.mut_arg(id, |a| {
            // clap's own English tokens are replaced by the suffixes above.
            let takes = a.get_action().takes_values();
            let names: Vec<String> = a
                .get_value_names()
                .unwrap_or_default()
                .iter()
                .map(|v| value_name(v, lang))
                .collect();
            let a = if names.is_empty() {
                a
            } else {
                a.value_names(names)
            };
            let a = a
                .help_heading(heading)
                .hide_short_help(config)
                .hide_env(true);
            let a = if takes {
                a.hide_possible_values(true).hide_default_value(true)
            } else {
                a
            };
            match help {
                Some(h) => a.help(h),
                None => a,
            }
        });
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for s in subs {
        let p = join(path, &s);
        cmd = cmd.mut_subcommand(s, |sc| apply(sc, &p, lang));
    }
    cmd
}

/// Puts the help texts of `lang` on a command tree, and replaces clap's
/// English `--help` / `--version` flags with ours.
pub fn localize(cmd: Command, lang: Lang) -> Command {
    let cmd = structure(cmd);
    // Global flags after each command's own flags in every help screen.
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().to_string())
        .collect();
    let mut cmd = cmd;
    for (i, id) in globals.into_iter().enumerate() {
        cmd = cmd.mut_arg(id, |a| a.display_order(1000 + i));
    }
    apply(cmd, "", lang)
}

/// The command tree as parsing needs it, without any help text: our
/// `--help`/`--version` flags in place of clap's. Putting two languages'
/// worth of texts on thirty commands costs a process a good part of its
/// start-up, and only a help screen (or an error) shows them; `main`
/// parses with this root and the one command the line names
/// (`cli::parse_hoisted`) and falls back to [`localize`]'s tree when it
/// must show something.
pub fn structure(cmd: Command) -> Command {
    cmd.disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .global(true)
                .action(ArgAction::Help),
        )
        .arg(
            Arg::new("version")
                .short('V')
                .long("version")
                .action(ArgAction::Version),
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use std::collections::BTreeSet;

    fn keys(cmd: &Command, path: &str, out: &mut BTreeSet<String>) {
        out.insert(path.to_string());
        for a in cmd.get_arguments() {
            // Globals are documented once, at the root.
            if a.is_global_set() && !path.is_empty() {
                continue;
            }
            out.insert(arg_key(path, a));
        }
        // Hidden (internal) commands have no help to show.
        for s in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            keys(s, &join(path, s.get_name()), out);
        }
    }

    #[test]
    fn every_command_and_flag_has_help_in_both_languages() {
        let cmd = localize(crate::cli::Cli::command(), Lang::Es);
        let mut needed = BTreeSet::new();
        keys(&cmd, "", &mut needed);
        for k in &needed {
            let es = lookup(k, Lang::Es).unwrap_or_else(|| panic!("no help for {k:?}"));
            let en = lookup(k, Lang::En).unwrap();
            assert!(!es.trim().is_empty() && !en.trim().is_empty(), "{k:?}");
        }
        // And nothing here is stale.
        for (k, _, _) in HELP {
            let base = k.trim_end_matches(" #after").trim_end_matches("#after");
            assert!(needed.contains(base), "help for {k:?} names nothing");
        }
    }

    /// Each heading in its language, where it belongs: the root's commands,
    /// options and its two configuration groups (in `--help`, not in `-h`),
    /// a command's arguments; the root's closing text with the exit codes.
    #[test]
    fn every_heading_of_the_help_is_in_its_language() {
        for (lang, words) in [
            (
                Lang::Es,
                [
                    "Uso:",
                    "Órdenes:",
                    "Opciones:",
                    "Argumentos:",
                    "Correo:",
                    "Política:",
                ],
            ),
            (
                Lang::En,
                [
                    "Usage:",
                    "Commands:",
                    "Options:",
                    "Arguments:",
                    "Mail:",
                    "Policy:",
                ],
            ),
        ] {
            let [usage, commands, options, arguments, mail, policy] = words;
            let mut root = localize(crate::cli::Cli::command(), lang);
            let long = root.render_long_help().to_string();
            let lines: Vec<&str> = long.lines().collect();
            assert!(long.contains(&format!("{usage} recupera")), "{long}");
            for heading in [commands, options, mail, policy] {
                assert!(
                    lines.contains(&heading),
                    "{lang:?}: no line {heading:?} in\n{long}"
                );
            }
            let at = |h: &str| lines.iter().position(|l| *l == h).unwrap();
            let smtp = lines.iter().position(|l| l.contains("--smtp-url")).unwrap();
            assert!(
                at(mail) < smtp && smtp < at(policy),
                "--smtp-url under {mail}"
            );
            let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                words(&long).ends_with(&words(&crate::error::exit_codes_line(lang))),
                "the root's help ends with the exit codes (wrapped): {long}"
            );
            let short = root.render_help().to_string();
            assert!(
                !short.contains("--smtp-url"),
                "configuration stays out of -h: {short}"
            );
            assert!(short.contains("--db "), "{short}");

            let show = long_help(lang, &["user", "show"]);
            assert!(show.lines().any(|l| l == arguments), "{lang:?}: {show}");
            assert!(show.lines().any(|l| l == options), "{lang:?}: {show}");
            assert!(!show.lines().any(|l| l == commands), "{show}");
        }
    }

    #[test]
    fn lookup_finds_a_key_s_text_in_each_language_and_nothing_else() {
        let (_, es, en) = HELP.iter().find(|(k, _, _)| *k == "demo").unwrap();
        assert_eq!(lookup("demo", Lang::Es), Some(*es));
        assert_eq!(lookup("demo", Lang::En), Some(*en));
        assert_ne!(es, en);
        assert_eq!(lookup("no such key", Lang::Es), None);
        assert_eq!(shown("no such key", Lang::En), None);
        assert_eq!(
            shown("demo", Lang::En).as_deref(),
            Some(*en),
            "only the root gets the exit codes"
        );
    }

    /// What follows a flag's help, in the flag's language: its values
    /// (hidden ones left out), its default, its long aliases and its
    /// variable, in that order; a switch (which takes no value) shows
    /// only its variable, never clap's `true`/`false` and `false` default.
    #[test]
    fn a_flag_s_values_default_aliases_and_variable_follow_its_help() {
        use crate::i18n::{M, tl};
        use clap::builder::PossibleValue;
        let format = Arg::new("format")
            .long("format")
            .value_parser([
                PossibleValue::new("csv"),
                PossibleValue::new("jsonl"),
                PossibleValue::new("internal").hide(true),
            ])
            .default_value("csv")
            .alias("fmt")
            .alias("f")
            .env("RECUPERA_FORMAT");
        let switch = Arg::new("quiet")
            .long("quiet")
            .action(ArgAction::SetTrue)
            .env("RECUPERA_QUIET");
        for lang in [Lang::Es, Lang::En] {
            let env = |name: &str| tl(M::HelpEnv, lang, &[("env", &name)]);
            assert_eq!(
                suffixes(&format, lang),
                [
                    tl(M::HelpValues, lang, &[("values", &"csv, jsonl")]),
                    tl(M::HelpDefault, lang, &[("default", &"csv")]),
                    tl(M::HelpAlias, lang, &[("alias", &"--fmt")]),
                    env("RECUPERA_FORMAT"),
                ]
                .join(" ")
            );
            assert_eq!(suffixes(&switch, lang), env("RECUPERA_QUIET"));
            assert_eq!(suffixes(&Arg::new("plain").long("plain"), lang), "");
        }
        // And on the real tree: `user export --format` in Spanish.
        let export = long_help(Lang::Es, &["user", "export"]);
        assert!(export.contains("Valores: csv, jsonl."), "{export}");
        assert!(export.contains("[por omisión: csv]"), "{export}");
    }

    /// A flag's values are a sentence after its help, which ends as one
    /// (after its own bracket too), in both languages; bracketed suffixes
    /// follow a help as they are.
    #[test]
    fn a_flag_s_values_read_as_a_sentence_of_their_own() {
        let words = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
        for (lang, list, lang_flag) in [
            (
                Lang::En,
                "Only this type. Values: cliente, proveedor.",
                "unless it says English]. Values: es, en.",
            ),
            (
                Lang::Es,
                "Solo este tipo. Valores: cliente, proveedor.",
                "salvo que diga inglés]. Valores: es, en.",
            ),
        ] {
            let help = words(&long_help(lang, &["user", "list"]));
            assert!(help.contains(list), "{help}");
            assert!(help.contains(lang_flag), "{help}");
            assert!(help.contains("$USER] [variable: RECUPERA_AGENT]"), "{help}");
            // A help with nothing after it is the catalog's text as it is.
            let json = lookup("--json", lang).unwrap();
            assert!(
                long_help(lang, &["user", "list"])
                    .lines()
                    .any(|l| l.trim_end() == format!("          {json}")),
                "{json:?}"
            );
        }
    }

    /// `recupera WORDS --help` in `lang`, as the binary prints it (globals
    /// propagated).
    fn long_help(lang: Lang, words: &[&str]) -> String {
        let line = ["recupera"].iter().chain(words).chain(&["--help"]);
        match localize(crate::cli::Cli::command(), lang).try_get_matches_from(line) {
            Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp => e.render().to_string(),
            other => panic!("{words:?}: {other:?}"),
        }
    }

    /// In every help screen the global flags come after the command's own,
    /// in the order `cli.rs` declares them.
    #[test]
    fn global_flags_follow_a_command_s_own_in_their_declared_order() {
        let globals: Vec<String> = crate::cli::Cli::command()
            .get_arguments()
            .filter(|a| a.is_global_set() && !a.is_hide_set())
            .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
            .collect();
        assert!(globals.len() >= 4, "{globals:?}");
        let help = long_help(Lang::En, &["user", "export"]);
        // The line that introduces a flag: `  -x, --flag <V>` or `      --flag`.
        let at = |flag: &str| {
            help.lines()
                .position(|l| {
                    let l = l.trim_start();
                    l.starts_with('-') && l.split([' ', ',']).any(|w| w == flag)
                })
                .unwrap_or_else(|| panic!("no {flag} in\n{help}"))
        };
        let own = at("--format");
        let places: Vec<usize> = globals.iter().map(|g| at(g)).collect();
        assert!(
            places.iter().all(|&p| p > own),
            "{globals:?} {places:?}\n{help}"
        );
        assert!(places.is_sorted(), "{globals:?} {places:?}\n{help}");
    }

    #[test]
    fn help_renders_in_both_languages() {
        for (lang, usage, heading) in [
            (Lang::Es, "Uso:", "Opciones"),
            (Lang::En, "Usage:", "Options"),
        ] {
            let mut cmd = localize(crate::cli::Cli::command(), lang);
            let out = cmd.render_help().to_string();
            assert!(out.contains(usage), "{out}");
            let mut sub = cmd.find_subcommand_mut("reset").unwrap().clone();
            let sub_help = sub
                .find_subcommand_mut("confirm")
                .unwrap()
                .render_help()
                .to_string();
            assert!(sub_help.contains(heading), "{sub_help}");
        }
    }
}
