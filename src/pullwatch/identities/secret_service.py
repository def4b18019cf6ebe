"""Many secrets from the Secret Service at once, the way keyring would find each of them.

keyring's SecretService backend reads one secret per call and pays for it each time: a new D-Bus
connection, the collection's lock state, a search, an unlock request, a new encrypted session
(a Diffie-Hellman exchange) and the secret itself - about 15 ms, so a round of 100 identities
spent 1.5 s in the keyring. `read_secrets` does the same work once per batch:

1. the collection keyring would use, from the backend's own `get_preferred_collection()` (the
   `preferred_collection` property, `KEYRING_PROPERTY_PREFERRED_COLLECTION`, else the default
   collection; a locked one is unlocked as keyring does it, and keyring's own exceptions -
   `KeyringLocked`, `InitError`, ... - propagate unchanged): one connection;
2. one `SearchItems` for every item of the service, then whichever is fewer: each item's
   `Attributes` to learn its username, or keyring's own search (service and username) for each
   label - pipelined, a few dozen requests in flight. For each label the item is the one
   keyring's own search would find first;
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
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jeepney import (
    DBusAddress,
    DBusErrorResponse,
    HeaderFields,
    MessageType,
    Properties,
    new_method_call,
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
# Requests in flight at once: enough to keep the daemon busy, under the cap the bus
# puts on pending replies per connection (beyond it dbus-daemon answers an error, and the batch
# would fall back to one-at-a-time reads).
WINDOW = 64
# An item deleted between the search and the read of its attributes answers one of these.
_GONE = frozenset({DBUS_NO_SUCH_OBJECT, DBUS_UNKNOWN_OBJECT, DBUS_UNKNOWN_METHOD})
_GONE_REPLY = object()
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
    # only keyring's SecretService.Keyring gets here (_reads_in_batches), typed as its base
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
    items = _find_items(backend, connection, collection_path, service, wanted)
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


def _find_items(
    backend: KeyringBackend,
    connection: Any,
    collection_path: str,
    service: str,
    wanted: list[str],
) -> dict[str, str]:
    """label -> item path: the item keyring's own query finds first, for each label with one.

    One search finds every item of the service. To learn which is whose takes one more request
    per item (its attributes) or one per label (keyring's own query, service and username):
    whichever is fewer, so a round that needs 100 secrets out of 1000 stored asks 100 times.
    A label with two items (another tool wrote one) is searched for on its own, as keyring
    does: the daemon orders the results of different searches differently.
    """
    collection = DBusAddressWrapper(collection_path, COLLECTION_IFACE, connection)
    (everything,) = collection.call("SearchItems", "a{ss}", _query(backend, service))
    paths = [str(path) for path in everything]
    if len(wanted) < len(paths):
        return _search_each(backend, connection, collection_path, service, wanted)

    username_key = _username_key(backend)
    reads = [
        Properties(DBusAddress(path, BUS_NAME, ITEM_IFACE)).get("Attributes") for path in paths
    ]
    wanted_set = set(wanted)
    matches: dict[str, list[str]] = {}
    for path, body in zip(paths, _pipelined(connection, reads), strict=True):
        if body is _GONE_REPLY:
            continue  # deleted since the search
        ((signature, value),) = body
        if signature != "a{ss}" or not isinstance(value, dict):
            raise TypeError(f"Attributes of type {signature!r}")
        owner = value.get(username_key)
        if owner in wanted_set:
            matches.setdefault(owner, []).append(path)
    items = {label: found[0] for label, found in matches.items() if len(found) == 1}
    twice = [label for label, found in matches.items() if len(found) > 1]
    if twice:
        items.update(_search_each(backend, connection, collection_path, service, twice))
    return items


def _search_each(
    backend: KeyringBackend,
    connection: Any,
    collection_path: str,
    service: str,
    labels: list[str],
) -> dict[str, str]:
    """keyring's own search for each label (pipelined): label -> the first item it finds."""
    address = DBusAddress(collection_path, BUS_NAME, COLLECTION_IFACE)
    searches = [
        new_method_call(address, "SearchItems", "a{ss}", (_query(backend, service, label),))
        for label in labels
    ]
    items: dict[str, str] = {}
    for label, body in zip(labels, _pipelined(connection, searches), strict=True):
        if body is _GONE_REPLY:
            raise LookupError("the collection went away")
        (result,) = body
        if result:
            items[label] = str(result[0])  # keyring takes the first
    return items


def _query(backend: KeyringBackend, service: str, username: str | None = None) -> dict[str, str]:
    """The attributes keyring searches for, in the backend's scheme (`scheme` property)."""
    # keyring's own (private) query builder: the items found are the ones keyring would find
    query: dict[str, str] = backend._query(service, username)  # type: ignore[attr-defined]
    return query


def _username_key(backend: KeyringBackend) -> str:
    """The name of the attribute that holds the username in the backend's scheme."""
    # SecretService.Keyring's schemes, typed as its base KeyringBackend
    scheme: dict[str, str] = backend.schemes[backend.scheme]  # type: ignore[attr-defined]
    return scheme["username"]


def _pipelined(connection: Any, messages: list[Any]) -> list[Any]:
    """The replies' bodies, in order, with a window of requests in flight.

    Requests go out in bursts (one write for many), so the bus and the daemon wake up once per
    burst rather than once per request. A reply saying the object is gone is `_GONE_REPLY`;
    any other error raises.
    """
    todo = deque(enumerate(messages))
    pending: dict[int, int] = {}  # serial -> index
    bodies: list[Any] = [None] * len(messages)
    while todo or pending:
        if todo and len(pending) <= WINDOW // 2:
            burst = []
            while todo and len(pending) < WINDOW:
                index, message = todo.popleft()
                serial = next(connection.outgoing_serial)
                burst.append(message.serialise(serial=serial))
                pending[serial] = index
            connection.sock.sendall(b"".join(burst))
        reply = connection.receive()
        serial = reply.header.fields.get(HeaderFields.reply_serial)
        if serial not in pending:
            continue  # a signal (nothing of ours waits for one now)
        index = pending.pop(serial)
        if reply.header.message_type == MessageType.error:
            if reply.header.fields.get(HeaderFields.error_name) not in _GONE:
                raise DBusErrorResponse(reply)
            bodies[index] = _GONE_REPLY
        else:
            bodies[index] = reply.body
    return bodies


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
