# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_recupera_global_optspecs
    string join \n V/version db= json lang= agent= outbox= smtp-url= smtp-ca-file= smtp-timeout= mail-from= mail-footer= code-ttl-hours= min-password-length= pepper-file= request-min-ms= busy-timeout-ms= h/help
end

function __fish_recupera_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_recupera_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_recupera_using_subcommand
    set -l cmd (__fish_recupera_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c recupera -n "__fish_recupera_needs_command" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_needs_command" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_needs_command" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_needs_command" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_needs_command" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_needs_command" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_needs_command" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_needs_command" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_needs_command" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_needs_command" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_needs_command" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_needs_command" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_needs_command" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_needs_command" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_needs_command" -s V -l version -d 'Muestra la versión'
complete -c recupera -n "__fish_recupera_needs_command" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_needs_command" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "user" -d 'Cuentas: crear, listar, ver, desbloquear'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "login" -d 'Inicia sesión con NIT (o usuario/email de proveedor) y contraseña (paso 07 del manual)'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "reset" -d 'Recuperación de contraseña: pedir un código, confirmarlo con una contraseña nueva'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "codes" -d 'Códigos de recuperación: borrar los terminados (cron), listarlos'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "mail" -d 'Cola de correo: listarla, reintentar el envío (cron)'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "audit" -d 'Muestra la auditoría, lo más reciente primero'
complete -c recupera -n "__fish_recupera_needs_command" -f -a "demo" -d 'Recorre los pasos 01–07 del manual en una base temporal e imprime cada uno'
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -f -a "add" -d 'Crea una cuenta (el «REGISTRARSE» de la pantalla de inicio)'
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -f -a "list" -d 'Lista las cuentas'
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -f -a "show" -d 'Muestra una cuenta: bloqueos, códigos pendientes, último acceso'
complete -c recupera -n "__fish_recupera_using_subcommand user; and not __fish_seen_subcommand_from add list show unlock" -f -a "unlock" -d 'Quita el bloqueo de inicio de sesión y rehabilita la recuperación de una cuenta'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l type -d 'Tipo de cuenta: cliente (Cliente Factura) o proveedor [por omisión: cliente; en una terminal sin --nit, se pregunta]' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l nit -d 'NIT, con o sin dígito verificador (900102030 o 900.102.030-4)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l email -d 'Email registrado: los códigos se envían solo a esta dirección' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l username -d 'Usuario (proveedor): 3–64 letras, dígitos, «.», «_» o «-», con al menos una letra' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l name -d 'Nombre de la persona o empresa' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l mail-lang -d 'Idioma de los correos de la cuenta [por omisión: --lang si se escribió, si no es]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l password-stdin -d 'Lee la contraseña de la entrada estándar (primera línea; una segunda línea, si la hay, debe coincidir)'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l no-password -d 'Crea la cuenta sin contraseña: el cliente pone la primera con un código'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from add" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l type -d 'Solo este tipo' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from list" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l type -d 'Tipo de cuenta, si el NIT tiene cliente y proveedor' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from show" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l type -d 'Tipo de cuenta, si el NIT tiene cliente y proveedor' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand user; and __fish_seen_subcommand_from unlock" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand login" -l type -d 'Tipo de cuenta [por omisión: cliente; en una terminal sin --user, se pregunta]' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand login" -l user -l nit -d 'USUARIO: el NIT sin dígito verificador (un proveedor también puede usar su usuario o email)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand login" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand login" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand login" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand login" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand login" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand login" -l password-stdin -d 'Lee la contraseña de la entrada estándar en vez de preguntarla'
complete -c recupera -n "__fish_recupera_using_subcommand login" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand login" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -f -a "request" -d 'Envía un código de recuperación al email registrado de la cuenta (pasos 01–04 del manual)'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and not __fish_seen_subcommand_from request confirm" -f -a "confirm" -d 'Pone una contraseña nueva con el código recibido por email (pasos 05–06 del manual)'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l type -d 'Tipo de cuenta («Tipo»: Cliente Factura o Proveedor) [por omisión: cliente; en una terminal sin --user ni --email, se pregunta]' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l user -l nit -d '«NIT o Usuario»: NIT sin dígito verificador, o el usuario de un proveedor' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l email -d 'El email registrado en la cuenta' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l no-continue -d 'En una terminal, termina tras el envío en vez de ofrecer seguir con el código'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from request" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l user -l nit -d '«NIT, Usuario o email (Proveedor)»' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l code -d 'El código de 5 caracteres del email (distingue mayúsculas); un script puede pasarlo en RECUPERA_CODE para que no aparezca en la lista de procesos' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l type -d 'Tipo de cuenta, si el NIT tiene cliente y proveedor con código pendiente' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l password-stdin -d 'Lee la contraseña nueva de la entrada estándar (primera línea; una segunda línea, si la hay, debe coincidir)'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l no-login -d 'En una terminal, no ofrece iniciar sesión después'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand reset; and __fish_seen_subcommand_from confirm" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -f -a "purge" -d 'Borra los códigos caducados, usados y muertos (para cron)'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and not __fish_seen_subcommand_from purge list" -f -a "list" -d 'Lista los códigos guardados (nunca los códigos en sí)'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l dry-run -d 'Cuenta lo que se borraría, sin cambiar nada'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from purge" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand codes; and __fish_seen_subcommand_from list" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -f -a "list" -d 'Lista la cola de correo'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -f -a "retry" -d 'Envía ya el correo en cola (para cron; salida 69 si el servidor no responde)'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and not __fish_seen_subcommand_from list retry deliver" -f -a "deliver"
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from list" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from retry" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l id -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand mail; and __fish_seen_subcommand_from deliver" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l user -d 'Solo los eventos de esta cuenta (NIT, o usuario/email de proveedor)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l type -d 'Tipo de cuenta para --user, si el NIT tiene ambos' -r -f -a "cliente\t''
proveedor\t''"
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l limit -d 'Como mucho N eventos' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand audit" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand audit" -s h -l help -d 'Muestra esta ayuda'
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l db -d 'Archivo de la base de datos [por omisión: ~/.local/share/recupera/recupera.db]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l lang -d 'Idioma de los mensajes [por omisión: RECUPERA_LANG, si no el del sistema; español salvo que diga inglés]' -r -f -a "es\t''
en\t''"
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l agent -d 'Quién actúa, para la auditoría [por omisión: $USER]' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l outbox -d 'Carpeta de los .eml cuando no hay servidor SMTP [por omisión: outbox/ junto a la base]' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l smtp-url -d 'Servidor SMTP: smtps://usuario:clave@servidor[:puerto] o smtp://servidor:587?tls=required (las credenciales solo por la variable de entorno, nunca en la línea de órdenes)' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l smtp-ca-file -d 'Certificado de CA adicional (PEM) en el que confiar para el servidor SMTP' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l smtp-timeout -d 'Segundos de espera al servidor SMTP antes de desistir' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l mail-from -d 'Remitente de los correos, p. ej. "Soporte <no-reply@empresa.co>"' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l mail-footer -d 'Línea de pie de los correos (empresa, teléfonos de soporte)' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l code-ttl-hours -d 'Horas de validez de un código de recuperación (1–24)' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l min-password-length -d 'Longitud mínima de la contraseña en caracteres (8–256)' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l pepper-file -d 'Archivo con un secreto (pepper) que entra en cada hash; guárdelo fuera de las copias de la base' -r -F
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l request-min-ms -d 'Duración mínima de «reset request» en milisegundos: iguala el tiempo de respuesta exista o no la cuenta (0 lo desactiva)' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l busy-timeout-ms -d 'Milisegundos de espera si la base está ocupada antes de desistir (salida 75)' -r
complete -c recupera -n "__fish_recupera_using_subcommand demo" -l json -d 'Imprime un documento JSON en la salida estándar en vez de texto'
complete -c recupera -n "__fish_recupera_using_subcommand demo" -s h -l help -d 'Muestra esta ayuda'
