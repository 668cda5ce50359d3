"""Who an entry is and what it is called: identity from SAYMON's ids, names from the address.

Everything Home Assistant keys on (the entry's unique id, entity unique ids, device identifiers)
is built from the id of the SAYMON user the entry follows plus SAYMON's object and link ids.
The address is left out on purpose: the same server reached by another name, port, scheme or
proxy is the same account, and must keep its devices, entity ids and history.

SAYMON's API documents no id of the server itself, so the user id is the whole account key.
SAYMON's user ids have the form of MongoDB object ids (creation time and a random part), so two
servers share one only when one was copied from the other (a restored backup, a cloned server,
an installation image with users in it); Home Assistant then treats them as the same account.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

OBJECT: Final = "object"
"""Middle part of an object device's identifier: ``<account>|object|<object id>``."""

BRAND: Final = "SAYMON"


def object_key(account: str, object_id: str) -> str:
    """Device identifier key of a SAYMON object's device."""
    return f"{account}|{OBJECT}|{object_id}"


def object_id_of(key: str, account: str | None = None) -> str | None:
    """The SAYMON object id in an object device's identifier key (of ``account`` if given)."""
    owner, separator, rest = key.partition(f"|{OBJECT}|")
    if not separator or not rest or (account is not None and owner != account):
        return None
    return rest


def server_host(url: str) -> str:
    """The host of a SAYMON address as people write it: ``host`` or ``host:port``."""
    return urlsplit(url).netloc or url


def default_title(url: str) -> str:
    """The entry's title, which is also the server device's name (entity ids follow from it).

    SAYMON's API offers no name of the server, so the name is built from the address and says
    SAYMON exactly once: ``saymon.example.com`` stays as it is, while an IP address or another
    host name gets the prefix (``SAYMON 10.0.0.5:8443``), so its entity ids read
    ``sensor.saymon_10_0_0_5_8443_active_incidents`` rather than ``sensor.10_0_0_5_8443_...``.
    """
    host = server_host(url)
    return host if BRAND.lower() in host.lower() else f"{BRAND} {host}"


# -- version 1 (config entry 1.1): identity built on the address ---------------------------


def legacy_title(url: str) -> str:
    """The title version 1 gave a new entry: the host name alone, without port."""
    return urlsplit(url).hostname or url


def rekey(key: str, old: str, new: str) -> str | None:
    """Move one unique id or identifier from the ``old`` account key to ``new``.

    Version 1 keys are ``<old>`` (the server device) or ``<old>|<rest>`` (everything else);
    keys that are neither are not this entry's and stay as they are (``None``).
    """
    if key == old:
        return new
    if key.startswith(f"{old}|"):
        return f"{new}{key[len(old) :]}"
    return None
