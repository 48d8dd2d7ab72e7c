"""COSEM and xDLMS names: interface classes, well-known OBIS codes, xDLMS enumerations.

Sources: DLMS UA Blue Book (classes, OBIS) and Green Book clause 9 (xDLMS ASN.1).

Used by the APDU decoder to turn a class id and a 6-byte instance id into words a
person reads. Plain dict look-ups: this sits in the decode hot path.
"""

from __future__ import annotations

# Interface class ids (Blue Book, DLMS UA 1000-1, clause 4 "Interface classes").
CLASS_NAMES: dict[int, str] = {
    1: "Data",
    3: "Register",
    4: "Extended register",
    5: "Demand register",
    6: "Register activation",
    7: "Profile generic",
    8: "Clock",
    9: "Script table",
    10: "Schedule",
    11: "Special days table",
    12: "Association SN",
    15: "Association LN",
    17: "SAP assignment",
    18: "Image transfer",
    19: "IEC local port setup",
    20: "Activity calendar",
    21: "Register monitor",
    22: "Single action schedule",
    23: "IEC HDLC setup",
    24: "IEC twisted pair setup",
    25: "M-Bus slave port setup",
    26: "Utility tables",
    27: "Modem configuration",
    28: "Auto answer",
    29: "Auto connect",
    30: "Data protection",
    40: "Push setup",
    41: "TCP-UDP setup",
    42: "IPv4 setup",
    43: "MAC address setup",
    44: "PPP setup",
    45: "GPRS modem setup",
    46: "SMTP setup",
    47: "GSM diagnostic",
    48: "IPv6 setup",
    50: "S-FSK PHY&MAC setup",
    51: "S-FSK active initiator",
    52: "S-FSK MAC synchronization timeouts",
    53: "S-FSK MAC counters",
    55: "IEC 61334-4-32 LLC setup",
    56: "S-FSK reporting system list",
    57: "ISO/IEC 8802-2 LLC type 1 setup",
    58: "ISO/IEC 8802-2 LLC type 2 setup",
    59: "ISO/IEC 8802-2 LLC type 3 setup",
    61: "Register table",
    62: "Compact data",
    63: "Status mapping",
    64: "Security setup",
    65: "Parameter monitor",
    66: "Measurement data monitoring",
    67: "Sensor manager",
    68: "Arbitrator",
    70: "Disconnect control",
    71: "Limiter",
    72: "M-Bus client",
    73: "Wireless mode Q channel",
    74: "M-Bus master port setup",
    80: "LLC SSCS setup",
    90: "G3-PLC MAC layer counters",
    91: "G3-PLC MAC setup",
    92: "G3-PLC 6LoWPAN adaptation layer setup",
    100: "NTP setup",
    111: "Account",
    112: "Credit",
    113: "Charge",
    115: "Token gateway",
    122: "Function control",
    123: "Array manager",
    124: "Communication port protection",
    151: "LTE monitoring",
}

# Well-known instances (Blue Book clause 7 / the DLMS UA OBIS list), keyed by the 6 raw bytes.
OBIS_NAMES: dict[bytes, str] = {
    bytes((0, 0, 1, 0, 0, 255)): "clock",
    bytes((0, 0, 10, 0, 0, 255)): "global meter reset script table",
    bytes((0, 0, 13, 0, 0, 255)): "activity calendar",
    bytes((0, 0, 15, 0, 0, 255)): "single action schedule",
    bytes((0, 0, 20, 0, 0, 255)): "IEC optical port setup",
    bytes((0, 0, 22, 0, 0, 255)): "IEC HDLC setup",
    bytes((0, 0, 25, 0, 0, 255)): "TCP-UDP setup",
    bytes((0, 0, 25, 1, 0, 255)): "IPv4 setup",
    bytes((0, 0, 25, 4, 0, 255)): "GPRS modem setup",
    bytes((0, 0, 25, 9, 0, 255)): "push setup",
    bytes((0, 0, 40, 0, 0, 255)): "current association",
    bytes((0, 0, 40, 0, 1, 255)): "association 1",
    bytes((0, 0, 40, 0, 2, 255)): "association 2",
    bytes((0, 0, 40, 0, 3, 255)): "association 3",
    bytes((0, 0, 41, 0, 0, 255)): "SAP assignment",
    bytes((0, 0, 42, 0, 0, 255)): "logical device name",
    bytes((0, 0, 43, 0, 0, 255)): "security setup",
    bytes((0, 0, 43, 1, 0, 255)): "invocation counter",
    bytes((0, 0, 44, 0, 0, 255)): "image transfer",
    bytes((0, 0, 96, 1, 0, 255)): "serial number",
    bytes((0, 0, 96, 1, 1, 255)): "manufacturing number",
    bytes((0, 0, 96, 1, 2, 255)): "parameters file",
    bytes((0, 0, 96, 3, 10, 255)): "disconnect control",
    bytes((0, 0, 96, 11, 0, 255)): "standard event log code",
    bytes((0, 0, 96, 14, 0, 255)): "current tariff",
    bytes((0, 0, 99, 98, 0, 255)): "standard event log",
    bytes((1, 0, 0, 0, 0, 255)): "meter id",
    bytes((1, 0, 0, 2, 0, 255)): "active firmware identifier",
    bytes((1, 0, 0, 2, 8, 255)): "active firmware signature",
    bytes((1, 0, 0, 9, 1, 255)): "local time",
    bytes((1, 0, 0, 9, 2, 255)): "local date",
    bytes((1, 0, 1, 7, 0, 255)): "active power import",
    bytes((1, 0, 2, 7, 0, 255)): "active power export",
    bytes((1, 0, 1, 8, 0, 255)): "active energy import",
    bytes((1, 0, 1, 8, 1, 255)): "active energy import tariff 1",
    bytes((1, 0, 1, 8, 2, 255)): "active energy import tariff 2",
    bytes((1, 0, 2, 8, 0, 255)): "active energy export",
    bytes((1, 0, 3, 8, 0, 255)): "reactive energy import",
    bytes((1, 0, 4, 8, 0, 255)): "reactive energy export",
    bytes((1, 0, 14, 7, 0, 255)): "frequency",
    bytes((1, 0, 31, 7, 0, 255)): "L1 current",
    bytes((1, 0, 51, 7, 0, 255)): "L2 current",
    bytes((1, 0, 71, 7, 0, 255)): "L3 current",
    bytes((1, 0, 32, 7, 0, 255)): "L1 voltage",
    bytes((1, 0, 52, 7, 0, 255)): "L2 voltage",
    bytes((1, 0, 72, 7, 0, 255)): "L3 voltage",
    bytes((1, 0, 99, 1, 0, 255)): "load profile 1",
    bytes((1, 0, 99, 2, 0, 255)): "load profile 2",
    bytes((1, 0, 98, 1, 0, 255)): "billing profile",
}


def format_obis(raw: bytes) -> str:
    """``A-B:C.D.E*F`` for 6 bytes; plain hex for anything else (never raises)."""
    if len(raw) != 6:
        return raw.hex(" ").upper()
    return f"{raw[0]}-{raw[1]}:{raw[2]}.{raw[3]}.{raw[4]}*{raw[5]}"


def dotted_obis(raw: bytes) -> str:
    """``A.B.C.D.E.F``, the form gurux and most tools print."""
    return ".".join(str(b) for b in raw)


def obis_name(raw: bytes) -> str:
    return OBIS_NAMES.get(bytes(raw), "")


def class_name(class_id: int) -> str:
    return CLASS_NAMES.get(class_id, f"class {class_id}")


# Data-Access-Result and Action-Result (Green Book 9.5, xDLMS ASN.1) agree up to 14.
_RESULTS_UP_TO_14: dict[int, str] = {
    0: "success",
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    14: "data-block-unavailable",
}

DATA_ACCESS_RESULTS: dict[int, str] = {
    **_RESULTS_UP_TO_14,
    15: "long-get-aborted",
    16: "no-long-get-in-progress",
    17: "long-set-aborted",
    18: "no-long-set-in-progress",
    19: "data-block-number-invalid",
    250: "other-reason",
}

ACTION_RESULTS: dict[int, str] = {
    **_RESULTS_UP_TO_14,
    15: "long-action-aborted",
    16: "no-long-action-in-progress",
    250: "other-reason",
}

# Conformance block bits, bit 0 first (Green Book 9.4.6.1).
CONFORMANCE_BITS: tuple[str, ...] = (
    "reserved-zero",
    "general-protection",
    "general-block-transfer",
    "read",
    "write",
    "unconfirmed-write",
    "delta-value-encoding",
    "reserved-seven",
    "attribute0-supported-with-set",
    "priority-mgmt-supported",
    "attribute0-supported-with-get",
    "block-transfer-with-get-or-read",
    "block-transfer-with-set-or-write",
    "block-transfer-with-action",
    "multiple-references",
    "information-report",
    "data-notification",
    "access",
    "parameterized-access",
    "get",
    "set",
    "selective-access",
    "event-notification",
    "action",
)

EXCEPTION_STATE_ERRORS: dict[int, str] = {1: "service-not-allowed", 2: "service-unknown"}
EXCEPTION_SERVICE_ERRORS: dict[int, str] = {
    1: "operation-not-possible",
    2: "service-not-supported",
    3: "other-reason",
    4: "pdu-too-long",
    5: "deciphering-error",
    6: "invocation-counter-error",
}

# ConfirmedServiceError: which service failed.
CONFIRMED_SERVICE_ERRORS: dict[int, str] = {
    1: "initiateError",
    2: "getStatus",
    3: "getNameList",
    4: "getVariableAttribute",
    5: "read",
    6: "write",
    7: "getDataSetAttribute",
    8: "getTIAttribute",
    9: "changeScope",
    10: "start",
    11: "stop",
    12: "resume",
    13: "makeUsable",
    14: "initiateLoad",
    15: "loadSegment",
    16: "terminateLoad",
    17: "initiateUpLoad",
    18: "upLoadSegment",
    19: "terminateUpLoad",
}

# ServiceError CHOICE and the enumeration under each choice.
SERVICE_ERROR_KINDS: dict[int, str] = {
    0: "application-reference",
    1: "hardware-resource",
    2: "vde-state-error",
    3: "service",
    4: "definition",
    5: "access",
    6: "initiate",
    7: "load-data-set",
    8: "change-scope",
    9: "task",
    10: "other",
}
SERVICE_ERROR_VALUES: dict[int, dict[int, str]] = {
    0: {
        0: "other",
        1: "time-elapsed",
        2: "application-unreachable",
        3: "application-reference-invalid",
        4: "application-context-unsupported",
        5: "provider-communication-error",
        6: "deciphering-error",
    },
    1: {
        0: "other",
        1: "memory-unavailable",
        2: "processor-resource-unavailable",
        3: "mass-storage-unavailable",
        4: "other-resource-unavailable",
    },
    2: {
        0: "other",
        1: "no-dlms-context",
        2: "loading-data-set",
        3: "status-nochange",
        4: "status-inoperable",
    },
    3: {0: "other", 1: "pdu-size", 2: "service-unsupported"},
    4: {
        0: "other",
        1: "object-undefined",
        2: "object-class-inconsistent",
        3: "object-attribute-inconsistent",
    },
    5: {
        0: "other",
        1: "scope-of-access-violated",
        2: "object-access-violated",
        3: "hardware-fault",
        4: "object-unavailable",
    },
    6: {
        0: "other",
        1: "dlms-version-too-low",
        2: "incompatible-conformance",
        3: "pdu-size-too-short",
        4: "refused-by-the-VDE-Handler",
    },
    7: {
        0: "other",
        1: "primitive-out-of-sequence",
        2: "not-loadable",
        3: "dataset-size-too-large",
        4: "not-awaited-segment",
        5: "interpretation-failure",
        6: "storage-failure",
        7: "data-set-not-ready",
    },
    8: {0: "other"},
    9: {0: "other", 1: "no-remote-control", 2: "ti-stopped", 3: "ti-running", 4: "ti-unusable"},
    10: {0: "other"},
}

# Ciphered APDU tags (Green Book 9.5: glo-, ded-, general- ciphering).
CIPHER_TAGS: dict[int, str] = {
    0x21: "glo-initiateRequest",
    0x25: "glo-readRequest",
    0x26: "glo-writeRequest",
    0x28: "glo-initiateResponse",
    0x2C: "glo-readResponse",
    0x2D: "glo-writeResponse",
    0x2E: "glo-confirmedServiceError",
    0x36: "glo-unconfirmedWriteRequest",
    0x38: "glo-informationReportRequest",
    0x41: "ded-initiateRequest",
    0x45: "ded-readRequest",
    0x46: "ded-writeRequest",
    0x48: "ded-initiateResponse",
    0x4C: "ded-readResponse",
    0x4D: "ded-writeResponse",
    0x4E: "ded-confirmedServiceError",
    0x56: "ded-unconfirmedWriteRequest",
    0x58: "ded-informationReportRequest",
    0xC8: "glo-get-request",
    0xC9: "glo-set-request",
    0xCA: "glo-event-notification-request",
    0xCB: "glo-action-request",
    0xCC: "glo-get-response",
    0xCD: "glo-set-response",
    0xCF: "glo-action-response",
    0xD0: "ded-get-request",
    0xD1: "ded-set-request",
    0xD2: "ded-event-notification-request",
    0xD3: "ded-action-request",
    0xD4: "ded-get-response",
    0xD5: "ded-set-response",
    0xD7: "ded-action-response",
    0xDB: "general-glo-ciphering",
    0xDC: "general-ded-ciphering",
    0xDD: "general-ciphering",
}
