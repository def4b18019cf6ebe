"""Many secrets from the Secret Service at once, the way keyring would find each of them.

keyring's SecretService backend reads one secret per call and pays for it each time: a new D-Bus
connection, the collection's lock state, a search, an unlock request, a new encrypted session
(a Diffie-Hellman exchange) and the secret itself - about 15 ms, so a round of 100 identities
spent 1.5 s in the keyring. `read_secrets` does the same work once per batch:

1. the collection keyring would use, from the backend's own `get_preferred_collection()` (the
   `preferred_collection` property, `KEYRING_PROPERTY_PREFERRED_COLLECTION`, else the default
   collection; a locked one is unlocked as keyring does it, and keyring's own exceptions -
   `KeyringLocked`, `InitError`, ... - propagate unchanged): one connection;
2. one `SearchItems` for every item of the service, then each item's `Attributes` (pipelined,
   a few dozen requests in flight) to learn its username - the first item per username wins,
   in search order, as keyring takes the first match;
3. one `Service.Unlock` for the items wanted (keyring asks for each item in turn); an item that
   stays locked is reported as such;
4. one encrypted session (`OpenSession`) and one `Service.GetSecrets` for all of them, decrypted
   as secretstorage's `Item.get_secret` does.

Anything unexpected after step 1 (a reply of the wrong shape, a D-Bus error, a secret that does
not decode) is not a failure of the batch: the labels concerned come back as `retry`, to be read
one at a time through keyring's own API. No secret is logged or put in an exception.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    DBusErrorResponse,
    HeaderFields,
    MessageType,
    Properties,
)
from keyring.backend import KeyringBackend
from secretstorage.defines import (
    DBUS_NO_SUCH_OBJECT,
    DBUS_UNKNOWN_METHOD,
    DBUS_UNKNOWN_OBJECT,
    SS_PATH,
    SS_PREFIX,
)
from secretstorage.dhcrypto import Session
from secretstorage.util import BUS_NAME, DBusAddressWrapper, exec_prompt, open_session

__all__ = ["BatchRead", "read_secrets"]

log = logging.getLogger(__name__)

SERVICE_IFACE = SS_PREFIX + "Service"
COLLECTION_IFACE = SS_PREFIX + "Collection"
ITEM_IFACE = SS_PREFIX + "Item"
# Attribute requests in flight at once: enough to keep the daemon busy, under the cap the bus
# puts on pending replies per connection (beyond it dbus-daemon answers an error, and the batch
# would fall back to one-at-a-time reads).
WINDOW = 64
# An item deleted between the search and the read of its attributes answers one of these.
_GONE = frozenset({DBUS_NO_SUCH_OBJECT, DBUS_UNKNOWN_OBJECT, DBUS_UNKNOWN_METHOD})
_AES_BLOCK = 16


@dataclass(frozen=True, slots=True)
class BatchRead:
    """What one batch found, by label. A label in none of the sets has no item (no secret)."""

    secrets: dict[str, str] = field(default_factory=dict, repr=False)  # label -> secret
    locked: frozenset[str] = frozenset()  # an item exists but stayed locked
    retry: frozenset[str] = frozenset()  # read these one at a time through keyring's API

    def __repr__(self) -> str:  # never show a secret, not even in a debugger or a log
        return (
            f"BatchRead(secrets=<{len(self.secrets)} hidden>, locked={sorted(self.locked)!r}, "
            f"retry={sorted(self.retry)!r})"
        )


def read_secrets(backend: KeyringBackend, service: str, labels: Sequence[str]) -> BatchRead:
    """The secrets of `labels` under `service`, from keyring's SecretService `backend`.

    Raises what keyring's own `get_password` would raise before it reaches any item (no bus,
    no collection, a locked collection that could not be unlocked). Everything after that is
    answered in the result: `retry` holds the labels to read one at a time.
    """
    wanted = list(dict.fromkeys(labels))
    # keyring's own choice of collection, unlocked as keyring unlocks it, on a new connection.
    collection = backend.get_preferred_collection()  # type: ignore[attr-defined]
    with closing(collection.connection):
        try:
            return _read(
                backend, collection.connection, collection.collection_path, service, wanted
            )
        except Exception as exc:  # unexpected: not the batch's failure, read them one at a time
            log.debug("batch read from the Secret Service failed (%s)", type(exc).__name__)
            return BatchRead(retry=frozenset(wanted))


def _read(
    backend: KeyringBackend,
    connection: Any,
    collection_path: str,
    service: str,
    wanted: list[str],
) -> BatchRead:
    scheme: dict[str, str] = backend.schemes[backend.scheme]  # type: ignore[attr-defined]
    query: dict[str, str] = backend._query(service)  # type: ignore[attr-defined]
    username_key = scheme["username"]

    collection = DBusAddressWrapper(collection_path, COLLECTION_IFACE, connection)
    (found,) = collection.call("SearchItems", "a{ss}", query)
    paths = [str(path) for path in found]
    attributes = _attributes(connection, paths)
    wanted_set = set(wanted)
    items: dict[str, str] = {}  # label -> item path: the first match, as keyring takes it
    for path in paths:
        label = attributes.get(path, {}).get(username_key)
        if label in wanted_set and label not in items:
            items[label] = path
    if not items:
        return BatchRead()

    unlocked = _unlock(connection, list(items.values()))
    locked = frozenset(label for label, path in items.items() if path not in unlocked)
    readable = [path for label, path in items.items() if label not in locked]
    secrets: dict[str, str] = {}
    retry: set[str] = set()
    if readable:
        session = open_session(connection)
        service_object = DBusAddressWrapper(SS_PATH, SERVICE_IFACE, connection)
        (answers,) = service_object.call("GetSecrets", "aoo", readable, session.object_path)
        for label, path in items.items():
            if label in locked:
                continue
            answer = answers.get(path)
            secret = None if answer is None else _decode(session, answer)
            if secret is None:  # not answered (gone, locked meanwhile) or undecodable
                retry.add(label)
            else:
                secrets[label] = secret
        del answers
    return BatchRead(secrets, locked, frozenset(retry))


def _attributes(connection: Any, paths: Iterable[str]) -> dict[str, dict[str, str]]:
    """Each item's attributes, a window of requests in flight; items gone meanwhile omitted.

    Requests go out in bursts (one write for many), so the bus and the daemon wake up once per
    burst rather than once per item.
    """
    todo = deque(paths)
    pending: dict[int, str] = {}  # serial -> item path
    result: dict[str, dict[str, str]] = {}
    while todo or pending:
        if todo and len(pending) <= WINDOW // 2:
            burst = []
            while todo and len(pending) < WINDOW:
                path = todo.popleft()
                message = Properties(DBusAddress(path, BUS_NAME, ITEM_IFACE)).get("Attributes")
                serial = next(connection.outgoing_serial)
                burst.append(message.serialise(serial=serial))
                pending[serial] = path
            connection.sock.sendall(b"".join(burst))
        reply = connection.receive()
        serial = reply.header.fields.get(HeaderFields.reply_serial)
        if serial not in pending:
            continue  # a signal (nothing of ours waits for one now)
        path = pending.pop(serial)
        if reply.header.message_type == MessageType.error:
            if reply.header.fields.get(HeaderFields.error_name) in _GONE:
                continue
            raise DBusErrorResponse(reply)
        ((signature, value),) = reply.body
        if signature != "a{ss}" or not isinstance(value, dict):
            raise TypeError(f"Attributes of type {signature!r}")
        result[path] = {str(key): str(item) for key, item in value.items()}
    return result


def _unlock(connection: Any, paths: list[str]) -> set[str]:
    """Ask to unlock `paths` (one request, as keyring asks for each item): those unlocked."""
    service = DBusAddressWrapper(SS_PATH, SERVICE_IFACE, connection)
    unlocked, prompt = service.call("Unlock", "ao", paths)
    done = {str(path) for path in unlocked}
    if len(prompt) > 1:  # "/" means no prompt is needed
        dismissed, (signature, more) = exec_prompt(connection, prompt)
        if not dismissed and signature == "ao":
            done.update(str(path) for path in more)
    return done


def _decode(session: Session, answer: Any) -> str | None:
    """The secret of a GetSecrets answer, as text; None when it cannot be decoded."""
    _, parameters, value, _ = answer
    if not session.encrypted:
        raw = bytes(value)
    else:
        if session.aes_key is None or len(value) == 0 or len(value) % _AES_BLOCK:
            return None
        cipher = Cipher(algorithms.AES(session.aes_key), modes.CBC(bytes(parameters)))
        decryptor = cipher.decryptor()
        padded = decryptor.update(bytes(value)) + decryptor.finalize()
        padding = padded[-1]
        if not 1 <= padding <= _AES_BLOCK:
            return None
        raw = padded[:-padding]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:  # keyring would raise; let it, on the one-at-a-time read
        return None
