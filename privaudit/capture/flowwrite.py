"""A faster road to mitmproxy flow-file records, byte for byte the same.

The recorder serialises every flow on mitmproxy's event loop, so its cost is
paid by the traffic. ``mitmproxy.io.FlowWriter`` spends it in two places:
``Client``/``Server.get_state`` (``SerializableDataclass``), which work out
each field's type annotation anew for every flow, and the pure-Python
tnetstring writer. This module does the same work with the type analysis done
once per class and a tighter writer: requests and responses are written
straight from their attributes, without their state dicts, and header lines,
which an app's requests mostly repeat, are encoded once (:data:`PAIRS_SIZE`
of them remembered). :func:`record` returns exactly the bytes
``FlowWriter(buf).add(flow)`` writes.

"Exactly" is checked three ways: tests compare both roads on every kind of
flow with mitmproxy 11 and 12; :class:`RecordWriter` compares them on the
first flows of every session (and on one flow in every
:data:`CHECK_EVERY`), and goes back to mitmproxy's own writer for good at the
first difference; and any exception on the fast road falls back to
mitmproxy's road for that flow. Flows other than plain ``HTTPFlow`` always
take mitmproxy's road.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import logging
import typing
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any

from mitmproxy import http
from mitmproxy.coretypes.serializable import SerializableDataclass
from mitmproxy.io import tnetstring
from mitmproxy.version import FLOW_FORMAT_VERSION

logger = logging.getLogger(__name__)

#: Flows of a session checked against mitmproxy's own writer before the fast road is trusted.
CHECK_FIRST = 16
#: After that, one flow in this many is checked again.
CHECK_EVERY = 500


# --- tnetstring -------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """``mitmproxy.io.tnetstring.dumps(value)``, faster.

    Same bytes: dict items come out last first (mitmproxy's writer builds its
    output back to front), floats as ``repr``; any value not of an exact
    built-in type (a subclass of int, say) is written by mitmproxy's writer.
    """
    return _enc(value)


#: Encoded dict keys: flow states repeat the same few dozen.
_KEYS: dict[str, bytes] = {}


def _enc(v: Any) -> bytes:
    t = type(v)
    if t is bytes:
        return b"%d:%s," % (len(v), v)
    if t is str:
        b = v.encode("utf8")
        return b"%d:%s;" % (len(b), b)
    if t is dict:
        parts = []
        for k, x in reversed(v.items()):
            kb = _KEYS.get(k) if type(k) is str else None
            if kb is None:
                kb = _enc(k)
                if type(k) is str and len(_KEYS) < 1024:
                    _KEYS[k] = kb
            parts.append(kb)
            parts.append(_enc(x))
        body = b"".join(parts)
        return b"%d:%s}" % (len(body), body)
    if v is None:
        return b"0:~"
    if t is int:
        d = b"%d" % v
        return b"%d:%s#" % (len(d), d)
    if t is list or t is tuple:
        body = b"".join([_enc(x) for x in v])
        return b"%d:%s]" % (len(body), body)
    if v is True:
        return b"4:true!"
    if v is False:
        return b"5:false!"
    if t is float:
        d = repr(v).encode()
        return b"%d:%s^" % (len(d), d)
    return tnetstring.dumps(v)


#: Encoded header lines: an app's requests repeat most of theirs (host,
#: user agent, content type, tokens). Cleared when full.
_PAIRS: dict[tuple[bytes, bytes], bytes] = {}
PAIRS_SIZE = 4096


def _enc_list(v: Any) -> bytes:
    """``_enc`` of a list or tuple, with pairs of bytes (the ``fields`` of
    headers) written without a call per item."""
    if type(v) is not tuple and type(v) is not list:
        return _enc(v)
    parts = []
    for x in v:
        if type(x) is tuple and len(x) == 2:
            a, b = x
            if type(a) is bytes and type(b) is bytes:
                enc = _PAIRS.get(x)
                if enc is None:
                    item = b"%d:%s,%d:%s," % (len(a), a, len(b), b)
                    enc = b"%d:%s]" % (len(item), item)
                    if len(_PAIRS) >= PAIRS_SIZE:
                        _PAIRS.clear()
                    _PAIRS[x] = enc
                parts.append(enc)
                continue
        parts.append(_enc(x))
    body = b"".join(parts)
    return b"%d:%s]" % (len(body), body)


_MESSAGE_GET_STATE = http.Message.get_state
_DATA_GET_STATE = http.MessageData.get_state


def encoded_message(m: Any) -> bytes:
    """``dumps(m.get_state())`` of a ``Request``/``Response``, without building
    the state dict (``MessageData.get_state``: the data's attributes in order,
    headers and trailers as their ``fields``)."""
    d = m.data
    if type(m).get_state is not _MESSAGE_GET_STATE or type(d).get_state is not _DATA_GET_STATE:
        return _enc(m.get_state())
    parts = []
    for k, v in reversed(vars(d).items()):
        kb = _KEYS.get(k)
        if kb is None:
            kb = _enc(k)
            if len(_KEYS) < 1024:
                _KEYS[k] = kb
        parts.append(kb)
        t = type(v)
        if k == "headers" or (k == "trailers" and v is not None):
            parts.append(_enc_list(v.get_state()))
        elif t is bytes:
            parts.append(b"%d:%s," % (len(v), v))
        elif v is None:
            parts.append(b"0:~")
        elif t is float:
            x = repr(v).encode()
            parts.append(b"%d:%s^" % (len(x), x))
        elif t is int:
            x = b"%d" % v
            parts.append(b"%d:%s#" % (len(x), x))
        else:
            parts.append(_enc(v))
    body = b"".join(parts)
    return b"%d:%s}" % (len(body), body)


# --- flow state --------------------------------------------------------------------------

_Conv = Callable[[Any], Any]
_STATE: dict[type, Callable[[Any], dict]] = {}


def state_of(obj: Any) -> Any:
    """``obj.get_state()``, with ``SerializableDataclass`` classes' per-field
    conversion compiled once per class (same result, same errors)."""
    cls = type(obj)
    fn = _STATE.get(cls)
    if fn is None:
        fn = _STATE[cls] = _compile_class(cls)
    return fn(obj)


_ENCODE: dict[type, Callable[[Any], bytes]] = {}


def encoded_state_of(obj: Any) -> bytes:
    """``dumps(state_of(obj))``, without building the state dict for ``SerializableDataclass`` classes."""
    cls = type(obj)
    fn = _ENCODE.get(cls)
    if fn is None:
        fn = _ENCODE[cls] = _compile_encoder(cls)
    return fn(obj)


#: Connections whose record bytes are remembered (see _compile_encoder), per class.
CACHE_SIZE = 256


def _compile_encoder(cls: type) -> Callable[[Any], bytes]:
    """``encoded_state_of`` for one class.

    A connection's state is written into every flow that used it (all the
    requests of a keep-alive connection) and rarely changes, so for classes
    whose fields hold only values that do not change in place (strings,
    numbers, certificates, tuples of those) and lists of such values, the
    bytes are remembered with the field values they were made from and
    reused while those compare equal. The list fields' contents are compared
    too, so a list changed in place is noticed."""
    if not (issubclass(cls, SerializableDataclass) and cls.get_state is SerializableDataclass.get_state):
        return lambda obj: _enc(obj.get_state())
    import operator

    fields: tuple[dataclasses.Field, ...] = cls._SerializableDataclass__fields()  # type: ignore[attr-defined]
    # the state dict's items, last first (see dumps)
    plan = tuple((f.name, _enc(f.name), _compile(f.type, f.name)) for f in reversed(fields))

    def encode(obj: Any) -> bytes:
        body = b"".join([key + _enc(conv(getattr(obj, name))) for name, key, conv in plan])
        return b"%d:%s}" % (len(body), body)

    kinds = [_kind(f.type) for f in fields]
    if None in kinds or len(fields) < 2:
        return encode
    values = operator.attrgetter(*(f.name for f in fields))
    lists = tuple(i for i, k in enumerate(kinds) if k == "list")
    cache: dict[int, tuple[tuple, bytes]] = {}

    def cached(obj: Any) -> bytes:
        vals = values(obj)
        if lists:
            vals = vals + tuple(tuple(vals[i]) for i in lists)
        hit = cache.get(id(obj))
        if hit is not None and hit[0] == vals:
            return hit[1]
        data = encode(obj)
        if len(cache) >= CACHE_SIZE:
            cache.clear()
        cache[id(obj)] = (vals, data)
        return data

    return cached


def _kind(tp: Any) -> str | None:
    """"value" for a type whose values never change in place, "list" for a
    list of those, None for anything else."""
    import collections.abc

    from mitmproxy.certs import Cert
    from mitmproxy.proxy.mode_specs import ProxyMode

    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal or tp in (str, bytes, bool, int, float, NoneType, Cert, ProxyMode):
        return "value"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "value"
    if origin in (UnionType, typing.Union, tuple):
        return "value" if all(_kind(a) == "value" for a in args if a is not Ellipsis) else None
    if origin in (list, collections.abc.Sequence) and len(args) == 1 and _kind(args[0]) == "value":
        return "list"
    return None


def _compile_class(cls: type) -> Callable[[Any], Any]:
    if not (issubclass(cls, SerializableDataclass) and cls.get_state is SerializableDataclass.get_state):
        return cls.get_state
    fields: tuple[dataclasses.Field, ...] = cls._SerializableDataclass__fields()  # type: ignore[attr-defined]
    convs = tuple((f.name, _compile(f.type, f.name)) for f in fields)

    def get_state(obj: Any) -> dict:
        return {name: conv(getattr(obj, name)) for name, conv in convs}

    return get_state


def _compile(tp: Any, name: str) -> _Conv:
    """A converter doing what ``serializable._process(value, tp, name, make=False)`` does."""
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        allowed = typing.get_args(tp)

        def literal(v):
            if v not in allowed:
                raise ValueError(f"Invalid value for {name}: {v!r} does not match any literal value.")
            return v

        return literal
    if origin in (UnionType, typing.Union):
        inner_tp, nt = typing.get_args(tp)
        if nt is not NoneType:
            raise TypeError(f"{name}: only `x | None` union types are supported")
        inner = _compile(inner_tp, name)
        return lambda v: None if v is None else inner(v)
    base = _compile_value(tp, origin, name)

    def not_none(v):
        if v is None:
            raise ValueError(f"Attribute {name} must not be None.")
        return base(v)

    return not_none


def _compile_value(tp: Any, origin: Any, name: str) -> _Conv:
    import collections.abc

    if hasattr(tp, "get_state"):
        if isinstance(tp, type) and issubclass(tp, SerializableDataclass):
            return state_of
        return lambda v: v.get_state()
    if origin in (list, collections.abc.Sequence):
        (T,) = typing.get_args(tp)
        item = _compile(T, name)
        return lambda v: [item(x) for x in v]
    if origin is tuple:
        if name in ("peername", "sockname"):
            items = [_compile(T, name) for T in (str, int, int, int)]
            return lambda v: tuple(c(x) for x, c in zip(v, items))
        Ts = typing.get_args(tp)
        convs = [_compile(T, name) for T in Ts]

        def tup(v):
            if len(Ts) != len(v):
                raise ValueError(f"Invalid data for {name}. Expected {Ts}, got {v}.")
            return tuple(c(x) for c, x in zip(convs, v))

        return tup
    if origin is dict:
        kc, vc = (_compile(T, name) for T in typing.get_args(tp))
        return lambda v: {kc(k): vc(x) for k, x in v.items()}
    if tp in (int, float):

        def number(v):
            if not isinstance(v, (int, float)):
                raise ValueError(f"Invalid value for {name}. Expected {tp}, got {v} ({type(v)}).")
            return tp(v)

        return number
    if tp in (str, bytes, bool):

        def exact(v):
            if not isinstance(v, tp):
                raise ValueError(f"Invalid value for {name}. Expected {tp}, got {v} ({type(v)}).")
            return tp(v)

        return exact
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda v: v.value
    raise TypeError(f"Unexpected type for {name}: {tp!r}")


def http_flow_state(f: http.HTTPFlow) -> dict:
    """``f.get_state()`` of an ``HTTPFlow`` (``Flow.get_state`` and
    ``HTTPFlow.get_state``, with the connections' state from :func:`state_of`)."""
    state = {
        "version": FLOW_FORMAT_VERSION,
        "type": f.type,
        "id": f.id,
        "error": state_of(f.error) if f.error else None,
        "client_conn": state_of(f.client_conn),
        "server_conn": state_of(f.server_conn),
        "intercepted": f.intercepted,
        "is_replay": f.is_replay,
        "marked": f.marked,
        "metadata": copy.deepcopy(f.metadata),
        "comment": f.comment,
        "timestamp_created": f.timestamp_created,
    }
    backup = f._backup
    state["backup"] = copy.deepcopy(backup) if backup != state else None
    state["request"] = f.request.get_state()
    state["response"] = f.response.get_state() if f.response else None
    state["websocket"] = state_of(f.websocket) if f.websocket else None
    return state


_K = {k: _enc(k) for k in ("websocket", "response", "request", "backup", "timestamp_created", "comment", "metadata",
                            "marked", "is_replay", "intercepted", "server_conn", "client_conn", "error", "id", "type",
                            "version")}
_NONE = b"0:~"


def record(f: Any) -> bytes:
    """The flow-file record of ``f``: ``FlowWriter(buf).add(f)``'s bytes."""
    if type(f) is not http.HTTPFlow:
        return mitmproxy_record(f)
    if f._backup is not None:  # a modified flow: its backup is compared with its state
        return _enc(http_flow_state(f))
    ws, resp, err, k = f.websocket, f.response, f.error, _K
    # http_flow_state(f)'s items, last first; deepcopy(metadata) is written as metadata itself
    body = b"".join([
        k["websocket"], encoded_state_of(ws) if ws else _NONE,
        k["response"], encoded_message(resp) if resp else _NONE,
        k["request"], encoded_message(f.request),
        k["backup"], _NONE,
        k["timestamp_created"], _enc(f.timestamp_created),
        k["comment"], _enc(f.comment),
        k["metadata"], _enc(f.metadata),
        k["marked"], _enc(f.marked),
        k["is_replay"], _enc(f.is_replay),
        k["intercepted"], _enc(f.intercepted),
        k["server_conn"], encoded_state_of(f.server_conn),
        k["client_conn"], encoded_state_of(f.client_conn),
        k["error"], encoded_state_of(err) if err else _NONE,
        k["id"], _enc(f.id),
        k["type"], _enc(f.type),
        k["version"], _enc(FLOW_FORMAT_VERSION),
    ])
    return b"%d:%s}" % (len(body), body)


def mitmproxy_record(f: Any) -> bytes:
    """mitmproxy's own road (``FlowWriter.add``) to the record of ``f``."""
    return tnetstring.dumps(f.get_state())


class RecordWriter:
    """Serialises flows for the flow file by :func:`record`, checked against
    mitmproxy's own writer on the first :data:`CHECK_FIRST` flows and one in
    :data:`CHECK_EVERY` after; at the first difference (a mitmproxy version
    whose flow state this module does not know) it logs it and uses
    mitmproxy's writer from then on."""

    def __init__(self) -> None:
        self.fast = True
        self.n = 0

    def __call__(self, f: Any) -> bytes:
        if not self.fast or type(f) is not http.HTTPFlow:
            return mitmproxy_record(f)
        self.n += 1
        try:
            data = record(f)
        except Exception as e:  # same errors as mitmproxy's road: let it say so
            logger.debug("privaudit: fast flow serialiser: %s: %s", type(e).__name__, e)
            return mitmproxy_record(f)
        if self.n <= CHECK_FIRST or self.n % CHECK_EVERY == 0:
            theirs = mitmproxy_record(f)
            if theirs != data:
                self.fast = False
                logger.warning("privaudit: the fast flow serialiser differs from mitmproxy's on this mitmproxy "
                               "version; using mitmproxy's own (slower) from now on")
                return theirs
        return data
