"""Spanish for the serial, optical and RFC 2217 codes (merged into ``i18n``'s tables).

General wording, as in ``i18n``: the recorded evidence carries this run's specifics (rates,
device, PID of the program holding the line).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dlmsdoctor.session import ConnectionProfile, Session

STRINGS = {
    "sum_run_serial": {
        "en": "dlmsdoctor tested {host} on {date} for {duration} s: {frames} frames on the "
        "serial line.",
        "es": "dlmsdoctor probó {host} el {date} durante {duration} s: {frames} tramas por la "
        "línea serial.",
    },
}


_KIND = {
    "serial": {"en": "serial line", "es": "línea serial"},
    "optical": {"en": "optical head", "es": "cabezal óptico"},
    "rfc2217": {"en": "RFC 2217 bridge", "es": "puente RFC 2217"},
}


def target_where(target: dict[str, Any], lang: str = "en") -> str:
    """A report's title target: ``HOST:PORT``, or the serial device and its kind."""
    link = target.get("link")
    if not link:
        return f"{target['host']}:{target['port']}"
    kind = _KIND.get(str(link), _KIND["serial"])
    return f"{target.get('device') or target['host']} ({kind.get(lang) or kind['en']})"


def serial_target(session: Session) -> dict[str, Any]:
    """The report's target keys for a serial link (none for TCP: its reports stay as they
    were): the link and how to name the target in titles."""
    target = session.target
    if target.link in ("tcp", None):
        return {}
    return {"link": target.link, "device": target.device or target.host}

LAYER = {
    "serial": {"en": "Serial line", "es": "Línea serial"},
    "optical": {"en": "Optical port", "es": "Puerto óptico"},
}

STEP_TITLE_ES = {
    "serial.line": "Línea serial (apertura, velocidad, formato)",
    "optical.mode_e": "Puerto óptico: protocolo de modo E (IEC 62056-21)",
}

FIGURE = {
    "baud": {"en": "baud rate", "es": "velocidad (baudios)"},
    "format": {"en": "format", "es": "formato"},
    "rates": {"en": "rates tried", "es": "velocidades probadas"},
    "identification": {"en": "identification", "es": "identificación"},
    "manufacturer": {"en": "manufacturer", "es": "fabricante"},
    "mode": {"en": "mode", "es": "modo"},
}

FINDING_ES = {
    "serial.no_device": "El dispositivo serial no existe",
    "serial.permission": "Sin permiso para abrir el dispositivo serial",
    "serial.held": "Otro programa tiene abierta la línea serial: no se envió nada",
    "serial.locked": "Un archivo de bloqueo indica que otro programa usa la línea serial",
    "serial.open_failed": "No se pudo abrir la línea serial",
    "serial.holders_unchecked": "No se pudo revisar si procesos de otros usuarios tienen la "
    "línea abierta (hace falta root)",
    "serial.line": "Parámetros de la línea serial aplicados",
    "serial.pty_format": "Una pseudo-terminal no admite ese formato: se usó 8N1 a la misma "
    "velocidad",
    "serial.echo": "El adaptador devuelve lo que enviamos (eco): se reconoce y se descarta",
    "serial.rates": "Resultado de cada velocidad probada",
    "serial.rate_found": "El medidor responde a esta velocidad",
    "serial.garbage": "A una velocidad llegaron bytes que no son tramas, a las demás nada",
    "serial.silent": "No volvió ningún byte a ninguna de las velocidades probadas",
    "rfc2217.settings": "Parámetros seriales que tenía el puente",
    "rfc2217.rate_mismatch": "El puente está configurado a otra velocidad o formato que el "
    "medidor",
    "rfc2217.unsupported": "El puente no habla RFC 2217 en ese puerto",
    "optical.identification": "Identificación IEC 62056-21 recibida por el puerto óptico",
    "optical.mode_e": "Modo E acordado: HDLC a la velocidad convenida",
    "optical.no_identification": "Sin identificación al pedido de inicio por el puerto óptico",
    "optical.garbled": "Llegaron bytes al pedido de inicio, pero no una identificación",
    "optical.no_mode_e": "La identificación no ofrece el modo E: solo lectura de datos (modo C)",
}

CAUSE_ES: dict[str, tuple[str, str, list[tuple[str, str]]]] = {
    "serial.no_device": (
        "El dispositivo serial indicado no existe",
        "La ruta no corresponde a ningún dispositivo: el adaptador USB o el cabezal óptico no "
        "está conectado, tiene otro nombre o su controlador no cargó.",
        [("now", "Conecte el adaptador y use el nombre que recibe (ls /dev/ttyUSB* "
                 "/dev/ttyACM*; en Windows, el número COM del Administrador de dispositivos)."),
         ("later", "Use el nombre estable /dev/serial/by-id/..., que no cambia al "
                   "reconectar.")],
    ),
    "serial.permission": (
        "Sin permiso para abrir el dispositivo serial",
        "El dispositivo pertenece a un grupo (dialout) al que este usuario no pertenece, y el "
        "sistema operativo se negó a abrirlo. No se envió nada al medidor.",
        [("now", "Agregue su usuario al grupo: sudo usermod -aG dialout $USER, y vuelva a "
                 "iniciar sesión (o ejecute una vez con sudo).")],
    ),
    "serial.held": (
        "Otro programa tiene ocupada la línea serial",
        "Dos programas sobre una misma línea serial se roban los bytes y se corrompen las "
        "tramas, por eso dlmsdoctor no envió nada. La evidencia indica el PID y el comando.",
        [("now", "Detenga ese programa (o pause el servicio de lectura) y vuelva a probar."),
         ("later", "Si es ModemManager, indíquele que ignore el adaptador (regla udev "
                   "ENV{ID_MM_DEVICE_IGNORE}=\"1\") o deténgalo.")],
    ),
    "serial.locked": (
        "Un archivo de bloqueo indica que otro programa usa la línea serial",
        "Un proceso vivo tiene el archivo de bloqueo (/var/lock/LCK..) de este dispositivo; "
        "dlmsdoctor lo respeta y no envió nada.",
        [("now", "Cierre el programa indicado en la evidencia y vuelva a probar.")],
    ),
    "rfc2217.unsupported": (
        "El puente no habla RFC 2217 en ese puerto",
        "No hubo negociación telnet COM-PORT-OPTION (RFC 2217): el puerto es un puente TCP "
        "crudo (aceptador 'tcp' de ser2net) o no es un puente.",
        [("now", "Pruébelo como TCP: dlmsdoctor probe HOST:PUERTO."),
         ("later", "Para controlar la velocidad por TCP, configure en ser2net un aceptador "
                   "'telnet(rfc2217),tcp,...'.")],
    ),
    "serial.rate_differs": (
        "El puerto serial del medidor trabaja a otra velocidad que la esperada",
        "Los SNRM seguros a las primeras velocidades no tuvieron respuesta; a la velocidad "
        "indicada en la evidencia el medidor respondió. Un medidor a otra velocidad que el "
        "cliente solo oye ruido y calla, lo que parece un medidor muerto.",
        [("now", "Configure su cliente (sistema de lectura, puente, programa del cabezal) a "
                 "la velocidad que respondió."),
         ("later", "Anote la velocidad de cada medidor: cambia según marca y configuración.")],
    ),
    "rfc2217.bridge_settings": (
        "El puerto serial del puente está a otra velocidad o formato que el medidor",
        "Por RFC 2217 dlmsdoctor fijó la velocidad y el medidor respondió; un cliente que no "
        "puede fijarla (su sistema de lectura en el puerto TCP del puente) usa la del puente, "
        "a la que el medidor solo oye ruido. Se restauró la configuración original del "
        "puente.",
        [("now", "En la configuración de ser2net cambie la velocidad del conector "
                 "(connector: serialdev,DISPOSITIVO,19200n81,local, con los valores de la "
                 "evidencia) y reinicie ser2net.")],
    ),
    "serial.format_mismatch": (
        "Basura a una velocidad y silencio a las demás: el formato (paridad o bits de datos) "
        "no coincide con el del medidor",
        "A esa velocidad volvieron bytes que no son tramas HDLC; a las demás, nada. El medidor "
        "nos oye a esa velocidad pero sus respuestas no llegan íntegras: usa otro formato "
        "(una respuesta 8E1 leída como 8N1 pierde cada byte con un número par de unos) o una "
        "velocidad cercana.",
        [("now", "Repita con --baud a esa velocidad y --serial-format 8E1 (luego 7E1, 8N2)."),
         ("later", "Consulte los parámetros seriales del medidor en su placa o en el programa "
                   "del fabricante.")],
    ),
    "serial.no_answer": (
        "El medidor no responde en la línea serial",
        "Un medidor ignora las tramas que no puede leer o que no son para su dirección: una "
        "dirección equivocada, otra velocidad o formato, A/B invertidos en RS-485 o sin tierra "
        "común, o el puerto serial deshabilitado se ven igual desde aquí.",
        [("now", "Pruebe todas las velocidades: --baud auto."),
         ("now", "Revise el cableado (A/B, tierra, terminación en tramos largos de RS-485) y "
                 "que parpadeen los LED TX/RX del adaptador."),
         ("now", "Indique la dirección de servidor si la conoce (--server-address, "
                 "--serial-number)."),
         ("later", "Verifique en el programa del fabricante que el puerto serial esté "
                   "habilitado.")],
    ),
    "optical.no_identification": (
        "El medidor no respondió al pedido de inicio por el puerto óptico",
        "No llegó identificación a '/?!' a 300 baudios 7E1. El cabezal no está sobre el "
        "puerto óptico o está al revés, el puerto óptico está deshabilitado, o el medidor "
        "espera otra paridad. Si el cabezal devolvió el eco, el cabezal y su cable funcionan.",
        [("now", "Coloque el cabezal sobre el puerto óptico con el cable hacia abajo y vuelva "
                 "a probar."),
         ("now", "Protéjalo de la luz del sol; pruebe otro cabezal si tiene."),
         ("later", "Verifique en el programa del fabricante que el puerto óptico esté "
                   "habilitado.")],
    ),
    "optical.garbled": (
        "El puerto óptico responde, pero no a 300 baudios 7E1",
        "Al pedido de inicio volvieron bytes que no son una identificación IEC 62056-21: el "
        "puerto responde a otra velocidad o formato (algunos puertos ópticos están fijos, por "
        "ejemplo a 9600 8N1, sin modo IEC).",
        [("now", "Pruebe el cabezal como línea serial común: dlmsdoctor probe DISPOSITIVO "
                 "--baud auto (sin --optical).")],
    ),
    "optical.no_mode_e": (
        "El medidor solo ofrece la lectura de datos IEC 62056-21 por su puerto óptico",
        "Su identificación no trae la secuencia '\\2', así que no ofrece el modo E "
        "(HDLC/DLMS) en este puerto: solo la lectura de datos del modo C.",
        [("now", "Use el puerto eléctrico del medidor (RS-485/RS-232) o su módem para DLMS."),
         ("later", "Consulte al fabricante si se puede habilitar el modo E en el puerto "
                   "óptico.")],
    ),
    "optical.no_hdlc": (
        "El medidor aceptó el modo E y luego no respondió en HDLC",
        "La identificación y el acuse pasaron, así que el cabezal y el puerto óptico "
        "funcionan; los SNRM después del cambio de velocidad no tuvieron respuesta. El medidor "
        "puede pasar a otra velocidad que la ofrecida, necesitar más tiempo para cambiar, o "
        "estar en otra dirección HDLC.",
        [("now", "Repita con una velocidad menor (--baud 9600 o --baud 4800): el acuse la "
                 "pide."),
         ("now", "Indique la dirección de servidor si la conoce (--server-address).")],
    ),
}


def profile_line(profile: ConnectionProfile, lang: str = "en") -> str:
    """The working profile's line: ``/dev/ttyUSB0 (serial line), 19200 8N1`` (optical: mode E
    and the identification)."""
    kind = _KIND.get(profile.link, _KIND["serial"])
    out = f"{profile.device or profile.host} ({kind.get(lang) or kind['en']})"
    if profile.baud:
        out += f", {profile.baud} {profile.format or ''}".rstrip()
    if profile.mode:
        mode = "modo" if lang == "es" else "mode"
        out += f", {mode} {profile.mode} ({profile.identification})"
    return out
