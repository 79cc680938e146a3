"""Hypothesis strategies for everything a stranger can send the bot, and how each is sent.

A drawn :class:`Case` is a plan: which app (signed or demo), the method, the path and query,
extra headers, how the ``Authorization`` header is made, the body, and how it is framed. It is
turned into bytes against the running target (:meth:`Case.render`), because a genuine token
must be signed with the emulated channel's key and name the target's app id, and a click must
name reviewers, reviews and items the target knows. Plans are plain data, so Hypothesis can
shrink a failure to its smallest form and print it.

Families (``Case.family``): ``activity`` (every field of an activity, invoke names and values,
``adaptiveCard/action`` data of every shape, ``signin/*``), ``jwt`` (every header field and
claim wrong, every ``alg``, the channel's key, a key from elsewhere, the public key as an HMAC
secret, endorsements), ``headers`` (``Authorization`` with invalid bytes, content types, any
header), ``notification`` (bodies and signatures), ``admin`` (query strings, methods and
credentials of ``/``, ``/admin/*``, ``/readyz``, ``/metrics``, ``/healthz``).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fuzz.rig import ADMIN_TOKEN, NOTIFICATIONS_SECRET, Target, TargetName

# ---------------------------------------------------------------------- values
NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "\ud800",  # a lone surrogate: valid in JSON (\ud800), not encodable as UTF-8
    "\udfff\ud800",
    "\u202eevil",
    "\ufeff",
    "𝕏" * 40,
    "a" * 5000,
    "../../etc/passwd",
    "%00%0d%0a",
    "' OR 1=1 --",
    '=HYPERLINK("http://x")',
    "<script>alert(1)</script>",
    "${jndi:ldap://x}",
    "\r\nX-Injected: 1",
    "null",
    "NaN",
    "00000000-0000-0000-0000-000000000000",
    "8:orgid:" + "f" * 36,
    "29:" + "x" * 300,
]

texts = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), max_size=3),
)
numbers = st.one_of(
    st.integers(min_value=-(2**31), max_value=2**31),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([0, -1, 2**53 + 1, 2**63, -(2**63) - 1, 10**300]),
    st.floats(allow_nan=False, allow_infinity=False),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(texts, children, max_size=4),
    ),
    max_leaves=12,
)


class Raw:
    """A JSON fragment written as is (NaN, a 5,000-digit number, deep nesting)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Raw({self.text[:60]!r}{'…' if len(self.text) > 60 else ''})"


raw_fragments = st.sampled_from(
    [
        Raw("NaN"),
        Raw("-Infinity"),
        Raw("1" * 5000),
        Raw("[" * 3000 + "]" * 3000),
        Raw('{"a":' * 70 + "1" + "}" * 70),
        Raw("[" * 64 + "]" * 64),
        Raw('"\\ud800"'),
        Raw("1e999"),
    ]
)
any_values = st.one_of(json_values, raw_fragments)


def dumps(value: Any) -> str:
    """JSON text of ``value`` with :class:`Raw` fragments spliced in."""
    fragments: dict[str, str] = {}

    def swap(item: Any) -> Any:
        if isinstance(item, Raw):
            marker = f"@@raw{len(fragments)}@@"
            fragments[marker] = item.text
            return marker
        if isinstance(item, dict):
            return {str(k): swap(v) for k, v in item.items()}
        if isinstance(item, list):
            return [swap(v) for v in item]
        return item

    text = json.dumps(swap(value))
    for marker, fragment in fragments.items():
        text = text.replace(json.dumps(marker), fragment)
    return text


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@functools.cache
def _foreign_key() -> Any:
    """An RSA key the channel never published ("a key from elsewhere")."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# Picks: an index into one of the target's id lists, or a made-up value.
@dataclass(frozen=True)
class Pick:
    what: Literal["reviewers", "instances", "items"]
    index: int

    def resolve(self, target: Target) -> str:
        values: list[str] = getattr(target, self.what)
        return values[self.index % len(values)] if values else str(uuid.uuid4())


def picks(what: Literal["reviewers", "instances", "items"]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(Pick, st.just(what), st.integers(min_value=0, max_value=200)),
        any_values,
    )


def resolve(value: Any, target: Target) -> Any:
    if isinstance(value, Pick):
        return value.resolve(target)
    if isinstance(value, dict):
        return {k: resolve(v, target) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, target) for v in value]
    return value


# ---------------------------------------------------------------------- activities
DELETE = "<delete>"

ACTIVITY_PATHS: list[tuple[str, ...]] = [
    (name,)
    for name in (
        "type id timestamp localTimestamp localTimezone channelId serviceUrl from conversation "
        "recipient channelData locale entities text textFormat value name replyToId action "
        "membersAdded membersRemoved attachments attachmentLayout deliveryMode relatesTo "
        "callerId expiration importance valueType label semanticAction suggestedActions "
        "speak inputHint summary topicName historyDisclosed reactionsAdded code listenFor"
    ).split()
] + [
    ("from", "id"),
    ("from", "aadObjectId"),
    ("from", "name"),
    ("from", "role"),
    ("conversation", "id"),
    ("conversation", "tenantId"),
    ("conversation", "conversationType"),
    ("conversation", "isGroup"),
    ("recipient", "id"),
    ("channelData", "tenant"),
    ("channelData", "tenant", "id"),
    ("channelData", "postBack"),
    ("channelData", "source"),
    ("value", "action"),
    ("value", "action", "type"),
    ("value", "action", "verb"),
    ("value", "action", "data"),
    ("value", "trigger"),
    ("value", "authentication"),
    ("value", "authentication", "token"),
    ("value", "authentication", "id"),
    ("value", "state"),
    ("value", "id"),
    ("value", "token"),
    ("value", "connectionName"),
    ("value", "verb"),
]

# Mostly the emulated connector; now and then a URL nothing answers at (a reply to it takes
# the SDK's retries, about 5 s) or one that is not an http(s) URL at all.
SERVICE_URLS = [
    *["<connector>"] * 24,
    "http://127.0.0.1:9/",  # nothing listens there
    "https://smba.trafficmanager.net/amer/",
    "ftp://127.0.0.1/",
    "javascript:alert(1)",
    "http://[::1",
    "http://127.0.0.1:0/",
    "http://" + "a" * 3000 + "/",
    "//127.0.0.1/",
    "",
    # A service URL of its own per case (the connector answers 404 under it): the bot must not
    # keep something per service URL it was ever sent.
    "<connector>x/<unique>/",
    "<connector>x/<unique>/",
]

VERBS = [
    "refresh",
    "page",
    "open_review",
    "decide",
    "decide_bulk",
    "accept_recommendations_preview",
    "accept_recommendations",
    "snooze",
    "nudge",
]
INVOKE_NAMES = [
    "adaptiveCard/action",
    "signin/tokenExchange",
    "signin/verifyState",
    "signin/failure",
    "composeExtension/query",
    "task/fetch",
    "config/fetch",
    "actionableMessage/executeAction",
    "fileConsent/invoke",
    "healthCheck",
    "",
]
ACTIVITY_KINDS = [
    "message",
    "submit",
    "card_action",
    "token_exchange",
    "verify_state",
    "other_invoke",
    "install",
    "uninstall",
    "conversation_update",
    "other_type",
]


@st.composite
def card_data(draw: st.DrawFn) -> Any:
    """``Action.Execute`` data of every shape: the real keys with good and bad values, extras."""
    if draw(st.integers(0, 9)) == 0:
        return draw(any_values)  # not even an object
    data: dict[str, Any] = {}
    choices: dict[str, st.SearchStrategy[Any]] = {
        "instanceId": picks("instances"),
        "itemId": picks("items"),
        "reviewerId": picks("reviewers"),
        "decision": st.one_of(st.sampled_from(["Approve", "Deny", "DontKnow"]), any_values),
        "page": st.one_of(st.integers(-2, 300), any_values),
        "justification": st.one_of(texts, st.text(min_size=490, max_size=2100), any_values),
        "card": st.one_of(
            st.sampled_from(["review", "reminder", "escalation", "pending_list", "help"]),
            any_values,
        ),
        "until": st.one_of(st.sampled_from(["4h", "tomorrow", "1d", "-1h"]), any_values),
        "items": st.one_of(st.lists(picks("items"), max_size=30), any_values),
        "selected": any_values,
    }
    for key in draw(st.lists(st.sampled_from(sorted(choices)), unique=True, max_size=6)):
        data[key] = draw(choices[key])
    for key in draw(st.lists(texts, max_size=2)):
        data[key] = draw(any_values)
    # Per-item choice sets as an Input.ChoiceSet sends them ("item:<id>": "true").
    for item in draw(st.lists(picks("items"), max_size=3)):
        data[f"item:{item.index if isinstance(item, Pick) else item}"] = draw(
            st.one_of(st.just("true"), any_values)
        )
    return data


@st.composite
def sso_tokens(draw: st.DrawFn) -> Any:
    return draw(
        st.one_of(
            st.just("<sso>"),  # a genuine Teams SSO token for the actor
            st.just("<sso-other>"),  # a genuine one, for somebody else
            texts,
            st.just("a.b.c"),
            any_values,
        )
    )


@dataclass(frozen=True)
class ActivityPlan:
    kind: str
    actor: Any  # Pick of a reviewer, or a made-up value
    verb: Any = None
    data: Any = None
    sso: Any = None
    name: Any = None
    text: Any = None
    service_url: str = "<connector>"
    mutations: tuple[tuple[tuple[str, ...], Any], ...] = ()

    def build(self, target: Target) -> dict[str, Any]:
        actor = resolve(self.actor, target)
        # The emulator's Teams client derives ids from the oid; anything it cannot hash is put
        # into from.aadObjectId afterwards instead.
        usable = isinstance(actor, str) and actor.isprintable() and _utf8(actor)
        actor_oid = actor if usable else str(uuid.uuid4())
        teams = target.teams
        activity: dict[str, Any]
        kind = self.kind
        if kind in ("message", "submit", "other_type"):
            activity = teams.base_activity(actor_oid, "message")
            if kind == "message":
                activity["text"] = resolve(self.text, target)
            elif kind == "submit":
                data = resolve(self.data, target)
                activity["value"] = (
                    {"verb": resolve(self.verb, target), **data} if isinstance(data, dict) else data
                )
                activity["channelData"]["postBack"] = True
            else:
                activity["type"] = resolve(self.name, target)
        elif kind == "card_action":
            activity = teams.card_action_activity(
                actor_oid, "refresh", sso_token=self._sso(target, actor_oid)
            )
            activity["value"]["action"]["verb"] = resolve(self.verb, target)
            activity["value"]["action"]["data"] = resolve(self.data, target)
        elif kind in ("token_exchange", "verify_state", "other_invoke"):
            activity = teams.base_activity(actor_oid, "invoke")
            if kind == "token_exchange":
                activity["name"] = "signin/tokenExchange"
                activity["value"] = {
                    "id": str(uuid.uuid4()),
                    "connectionName": "graph-sso",
                    "token": self._sso(target, actor_oid),
                }
            elif kind == "verify_state":
                activity["name"] = "signin/verifyState"
                activity["value"] = {"state": resolve(self.text, target)}
            else:
                activity["name"] = resolve(self.name, target)
                activity["value"] = resolve(self.data, target)
        elif kind in ("install", "uninstall"):
            activity = teams.installation_update_activity(
                actor_oid, "add" if kind == "install" else "remove"
            )
        else:
            activity = teams.conversation_update_activity(actor_oid)
        if not usable:
            activity["from"]["aadObjectId"] = actor
        service_url = self.service_url.replace("<connector>", teams.connector_url).replace(
            "<unique>", uuid.uuid4().hex
        )
        activity["serviceUrl"] = service_url
        for path, value in self.mutations:
            _mutate(activity, path, resolve(value, target))
        return activity

    def _sso(self, target: Target, actor_oid: str) -> Any:
        if self.sso == "<sso>":
            if target.teams.identity.lookup_user(actor_oid) is None:
                return "no-such-user." + actor_oid  # the emulated Entra ID has nobody to sign for
            return target.teams.identity.issue_sso_token(
                user_oid=actor_oid, app_id=target.teams.bot_app_id
            )
        if self.sso == "<sso-other>":
            other = target.reviewers[0] if target.reviewers else str(uuid.uuid4())
            return target.teams.identity.issue_sso_token(
                user_oid=other, app_id=target.teams.bot_app_id
            )
        return self.sso


def _utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _mutate(activity: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node: Any = activity
    for key in path[:-1]:
        if not isinstance(node, dict):
            return
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    if not isinstance(node, dict):
        return
    if value == DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


@st.composite
def activity_plans(draw: st.DrawFn) -> ActivityPlan:
    kind = draw(st.sampled_from(ACTIVITY_KINDS))
    mutation_values = st.one_of(
        st.just(DELETE),
        any_values,
        picks("reviewers"),
        # Somebody other than the bot joining: botbuilder then looks the member up.
        st.just([{"id": "29:someone", "aadObjectId": str(uuid.UUID(int=7))}]),
    )
    return ActivityPlan(
        kind=kind,
        actor=draw(st.one_of(picks("reviewers"), picks("reviewers"), any_values)),
        verb=draw(st.one_of(st.sampled_from(VERBS), any_values)),
        data=draw(card_data()),
        sso=draw(st.one_of(st.none(), sso_tokens())),
        name=draw(st.one_of(st.sampled_from(INVOKE_NAMES), any_values)),
        text=draw(
            st.one_of(
                st.sampled_from(["help", "pending", "snooze 4h", "snooze", "snooze forever", "hi"]),
                any_values,
            )
        ),
        service_url=draw(st.sampled_from(SERVICE_URLS)),
        # Half keep Teams' envelope intact, so the bot's own handling is reached, not only
        # the envelope checks in front of it.
        mutations=tuple(
            draw(
                st.one_of(
                    st.just([]),
                    st.lists(
                        st.tuples(st.sampled_from(ACTIVITY_PATHS), mutation_values),
                        min_size=1,
                        max_size=4,
                    ),
                )
            )
        ),
    )


# ---------------------------------------------------------------------- tokens
ALGORITHMS = [
    "RS256",
    "RS384",
    "RS512",
    "none",
    "None",
    "NONE",
    "HS256",
    "HS384",
    "HS512",
    "PS256",
    "ES256",
    "ES512",
    "EdDSA",
    "",
    "rs256",
]
HEADER_FIELDS = ["alg", "kid", "typ", "x5t", "jku", "jwk", "x5u", "crit", "cty", "zip", "b64"]
CLAIMS = ["iss", "aud", "serviceurl", "nbf", "iat", "exp", "ver", "appid", "azp", "tid", "sub"]
ISSUERS = [
    "https://api.botframework.com",
    "https://api.botframework.example",
    # The issuers botbuilder classifies as the Bot Framework Emulator's (another code path).
    "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
    "https://login.microsoftonline.com/f8cdef31-a31e-4b4a-93e4-5f571e91255a/v2.0",
]


def _time_values(now: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.sampled_from([now - 7200, now + 7200, now - 299, now + 299, 0, -1, 2**53, 2**63]),
        st.sampled_from([str(now), float(now) + 0.5, True, None, [now]]),
        any_values,
    )


@dataclass(frozen=True)
class TokenPlan:
    """How the ``Authorization`` header is made (``"<valid>"``: a genuine channel token)."""

    scheme: str = "Bearer"
    separator: str = " "
    header_changes: tuple[tuple[str, Any], ...] = ()
    claim_changes: tuple[tuple[str, Any], ...] = ()
    key: Literal["channel", "foreign", "hmac-public", "none", "garbage"] = "channel"
    segments: Literal["ok", "header-raw", "claims-raw", "extra", "two", "padded", "huge"] = "ok"
    raw_segment: bytes = b""
    extra_bytes: bytes = b""

    def header_value(self, target: Target, activity: Any) -> bytes:
        teams = target.teams
        now = int(time.time())
        service_url = activity.get("serviceUrl") if isinstance(activity, dict) else None
        claims: dict[str, Any] = {
            "serviceurl": service_url if isinstance(service_url, str) else teams.connector_url,
            "nbf": now - 5,
            "iat": now - 5,
            "exp": now + 3600,
            "iss": "https://api.botframework.com",
            "aud": teams.bot_app_id,
        }
        jose: dict[str, Any] = {
            "alg": "RS256",
            "kid": teams.channel_key_id,
            "x5t": teams.channel_key_id,
            "typ": "JWT",
        }
        for name, value in self.header_changes:
            if value == DELETE:
                jose.pop(name, None)
            else:
                jose[name] = value
        for name, value in self.claim_changes:
            if value == DELETE:
                claims.pop(name, None)
            else:
                claims[name] = value
        encoded_header = _b64(dumps(jose).encode())
        encoded_claims = _b64(dumps(claims).encode())
        if self.segments == "header-raw":
            encoded_header = _b64(self.raw_segment)
        elif self.segments == "claims-raw":
            encoded_claims = _b64(self.raw_segment)
        signing_input = f"{encoded_header}.{encoded_claims}".encode()
        alg = jose.get("alg")
        signature: bytes
        if self.key == "channel":
            hash_name = {"RS384": "SHA384", "RS512": "SHA512"}.get(str(alg), "SHA256")
            signature = teams.sign_with_channel_key(signing_input, hash_name=hash_name)
        elif self.key == "foreign":
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import padding

            signature = _foreign_key().sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif self.key == "hmac-public":
            # The algorithm-confusion attack: HS256 keyed with the channel's public key.
            from cryptography.hazmat.primitives import serialization

            public = teams.identity.channel_key.private_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            signature = hmac.new(public, signing_input, hashlib.sha256).digest()
        elif self.key == "none":
            signature = b""
        else:
            signature = self.raw_segment or b"\x00" * 256
        token = f"{encoded_header}.{encoded_claims}.{_b64(signature)}"
        if self.segments == "extra":
            token += "." + _b64(self.raw_segment)
        elif self.segments == "two":
            token = f"{encoded_header}.{encoded_claims}"
        elif self.segments == "padded":
            token = token.replace(".", "=.", 1)
        elif self.segments == "huge":
            token = token + "A" * 9000
        return (
            self.scheme.encode("utf-8", "surrogatepass")
            + self.separator.encode("utf-8", "surrogatepass")
            + token.encode()
            + self.extra_bytes
        )


@st.composite
def token_plans(draw: st.DrawFn) -> TokenPlan:
    now = int(time.time())
    header_values = st.one_of(
        st.just(DELETE),
        st.sampled_from(ALGORITHMS),
        st.sampled_from(["", "k", "x" * 300]),
        any_values,
    )
    claim_values = st.one_of(
        st.just(DELETE),
        st.sampled_from(ISSUERS),
        st.sampled_from([str(uuid.uuid4()), "http://127.0.0.1:9/", "", "1.0", "2.0"]),
        _time_values(now),
    )
    header_changes = draw(
        st.lists(st.tuples(st.sampled_from(HEADER_FIELDS), header_values), max_size=3)
    )
    if draw(st.booleans()):
        header_changes.append(("alg", draw(st.sampled_from(ALGORITHMS))))
    return TokenPlan(
        scheme=draw(
            st.sampled_from(
                ["Bearer", "Bearer", "Bearer", "bearer", "Basic", "", "Token", "Bearér"]
            )
        ),
        separator=draw(st.sampled_from([" ", " ", " ", "  ", "\t", ""])),
        header_changes=tuple(header_changes),
        claim_changes=tuple(
            draw(st.lists(st.tuples(st.sampled_from(CLAIMS), claim_values), max_size=4))
        ),
        key=draw(
            st.sampled_from(["channel", "channel", "foreign", "hmac-public", "none", "garbage"])
        ),
        segments=draw(
            st.sampled_from(
                ["ok", "ok", "ok", "header-raw", "claims-raw", "extra", "two", "padded", "huge"]
            )
        ),
        raw_segment=draw(
            st.one_of(
                st.binary(max_size=64),
                st.sampled_from([b"[" * 3000, b"null", b"[]", b'"x"', b"{" * 10, b"\xff\xfe"]),
            )
        ),
        extra_bytes=draw(st.sampled_from([b"", b"", b"\x00", b" x", b"\xff", b"\x7f", b"\t"])),
    )


# ---------------------------------------------------------------------- headers and framing
HEADER_NAMES = [
    b"X-Request-Id",
    b"Accept",
    b"Accept-Encoding",
    b"User-Agent",
    b"X-Forwarded-For",
    b"Expect",
    b"Cookie",
    b"Origin",
    b"If-None-Match",
    b"X-Ms-Conversation-Id",
    b"Authorization",
]
header_bytes = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.sampled_from(
        [b"\x00", b"\xff\xfe", b"\x7f", b"a" * 9000, b"100-continue", b"gzip, br", b"\xc3\x28"]
    ),
)
CONTENT_TYPES = [
    b"application/json",
    b"application/json",
    b"application/json; charset=utf-8",
    b"application/json; charset=latin-1",
    b"Application/JSON",
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"application/json\x00",
    b"",
    None,
]
FRAMINGS = ["length"] * 8 + ["chunked", "bad-chunked", "short", "long"]


@dataclass(frozen=True)
class Framing:
    kind: str

    def encode(self, body: bytes) -> tuple[list[bytes], bytes, bool]:
        """(framing header lines, bytes after the headers, whether to half-close)."""
        if self.kind == "chunked":
            chunks = b"".join(
                f"{len(body[i : i + 100]):x}\r\n".encode() + body[i : i + 100] + b"\r\n"
                for i in range(0, len(body), 100)
            )
            return [b"Transfer-Encoding: chunked"], chunks + b"0\r\n\r\n", False
        if self.kind == "bad-chunked":
            return [b"Transfer-Encoding: chunked"], b"zz\r\n" + body + b"\r\n0\r\n\r\n", False
        if self.kind == "short":
            # Promises more than it sends, then closes its side: an incomplete body.
            return [f"Content-Length: {len(body) + 10}".encode()], body, True
        if self.kind == "long":
            return [b"Content-Length: 99999999999999999999"], body, True
        return [f"Content-Length: {len(body)}".encode()], body, False


# ---------------------------------------------------------------------- notifications
@dataclass(frozen=True)
class NotificationPlan:
    body: Any  # JSON value (Picks resolved), or bytes as is
    signing: Literal["valid", "wrong-secret", "stale", "future", "old-style", "none", "random"]
    timestamp: Any = None  # overrides X-Timestamp when set
    signature: Any = None  # overrides X-Signature when set

    def render(self, target: Target) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        body = (
            self.body
            if isinstance(self.body, bytes)
            else dumps(resolve(self.body, target)).encode("utf-8", "surrogatepass")
        )
        now = int(time.time())
        timestamp = {"stale": now - 400, "future": now + 400}.get(self.signing, now)
        secret = "wrong" if self.signing == "wrong-secret" else NOTIFICATIONS_SECRET
        message = str(timestamp).encode() + b"." + body
        signature = "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        headers: list[tuple[bytes, bytes]] = []
        if self.signing == "old-style":
            signature = (
                "sha256="
                + hmac.new(NOTIFICATIONS_SECRET.encode(), body, hashlib.sha256).hexdigest()
            )
            headers.append((b"X-Signature", signature.encode()))
            return body, headers
        if self.signing == "none":
            return body, headers
        if self.signing == "random":
            signature = "sha256=" + uuid.uuid4().hex * 2
        ts = self.timestamp if self.timestamp is not None else str(timestamp)
        sig = self.signature if self.signature is not None else signature
        headers.append((b"X-Timestamp", _header(ts)))
        headers.append((b"X-Signature", _header(sig)))
        return body, headers


def _header(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value.replace(b"\r", b"").replace(b"\n", b"")
    return str(value).encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")


@st.composite
def notification_plans(draw: st.DrawFn) -> NotificationPlan:
    body_object = st.fixed_dictionaries(
        {},
        optional={
            "definitionId": picks("instances"),
            "instanceId": picks("instances"),
            "clientState": st.one_of(st.just(NOTIFICATIONS_SECRET), any_values),
            "requestId": st.uuids().map(str),
        },
    )
    body = draw(
        st.one_of(
            body_object,
            body_object,
            any_values,
            st.binary(max_size=200),
            st.sampled_from([b"[" * 20000, b"x" * 17000, b"", b"\xff\xfe{}"]),
        )
    )
    return NotificationPlan(
        body=body,
        signing=draw(
            st.sampled_from(
                [
                    "valid",
                    "valid",
                    "valid",
                    "wrong-secret",
                    "stale",
                    "future",
                    "old-style",
                    "none",
                    "random",
                ]
            )
        ),
        timestamp=draw(
            st.one_of(
                st.none(),
                st.none(),
                st.sampled_from(["", "0", "-1", "1e9", "9" * 40, " 1", "\x00", b"\xff"]),
                texts,
            )
        ),
        signature=draw(
            st.one_of(
                st.none(),
                st.none(),
                st.sampled_from(["sha256=", "sha256=" + "é" * 64, "sha1=00", b"\xff" * 71]),
                texts,
            )
        ),
    )


# ---------------------------------------------------------------------- admin and operations
ADMIN_PATHS = ["/", "/admin/remind", "/admin/audit", "/readyz", "/metrics", "/healthz"]
METHODS = [b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"PATCH", b"TRACE", b"FOO"]


@st.composite
def query_strings(draw: st.DrawFn) -> bytes:
    pairs: list[bytes] = []
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from(["instance", "format", "instance", "x", "", "instance[]"]))
        value = draw(
            st.one_of(
                picks("instances"),
                st.sampled_from(["csv", "json", "xml", "", "a\r\nb", "x" * 70, '"; rm -rf /']),
                texts,
            )
        )
        encoded_value = (
            value
            if isinstance(value, Pick)
            else quote(str(value).encode("utf-8", "surrogatepass"), safe="")
        )
        pairs.append(
            f"{key}=".encode() + (b"<pick>" if isinstance(value, Pick) else encoded_value.encode())
        )
    raw_tail = draw(st.sampled_from([b"", b"", b"&%ff%fe", b"&instance=%00", b"&&==&", b"&%zz"]))
    return b"&".join(pairs) + raw_tail


@dataclass(frozen=True)
class AdminPlan:
    path: str
    method: bytes
    query: bytes
    credentials: Literal[
        "bearer", "basic", "wrong", "garbage", "bearer-bytes", "basic-bytes", "none"
    ]
    instance: Pick

    def render_target(self, target: Target) -> bytes:
        query = self.query.replace(b"<pick>", self.instance.resolve(target).encode())
        return self.path.encode() + (b"?" + query if query else b"")

    def authorization(self) -> bytes | None:
        return {
            "bearer": b"Bearer " + ADMIN_TOKEN.encode(),
            "basic": b"Basic " + base64.b64encode(b"admin:" + ADMIN_TOKEN.encode()),
            "wrong": b"Bearer nope",
            "garbage": b"Basic \xff\xfe%%%",
            "bearer-bytes": b"Bearer \xff\xfe" + ADMIN_TOKEN.encode(),
            "basic-bytes": b"Basic " + base64.b64encode(b"admin:\xff\xfe"),
            "none": None,
        }[self.credentials]


@st.composite
def admin_plans(draw: st.DrawFn) -> AdminPlan:
    return AdminPlan(
        path=draw(st.sampled_from(ADMIN_PATHS)),
        method=draw(st.sampled_from([b"GET", b"POST", *METHODS])),
        query=draw(query_strings()),
        credentials=draw(
            st.sampled_from(["bearer", "bearer", "basic", "wrong", "garbage", "none"])
        ),
        instance=Pick("instances", draw(st.integers(0, 50))),
    )


# ---------------------------------------------------------------------- the case
Family = Literal["activity", "jwt", "headers", "notification", "admin"]


@dataclass(frozen=True)
class Case:
    """One request: what to send to which target; :meth:`render` makes its bytes."""

    family: Family
    target: TargetName
    activity: ActivityPlan | None = None
    token: TokenPlan | None = None
    notification: NotificationPlan | None = None
    admin: AdminPlan | None = None
    method: bytes = b"POST"
    content_type: bytes | None = b"application/json"
    headers: tuple[tuple[bytes, bytes], ...] = ()
    raw_body: bytes | None = None
    framing: Framing = field(default_factory=lambda: Framing("length"))

    @property
    def half_close(self) -> bool:
        return self.framing.kind in ("short", "long")

    async def render(self, target: Target) -> bytes:
        path = b"/api/messages"
        auth: bytes | None = None
        extra: list[tuple[bytes, bytes]] = list(self.headers)
        body = b""
        method = self.method
        if self.admin is not None:
            path = self.admin.render_target(target)
            auth = self.admin.authorization()
            method = self.admin.method
        elif self.notification is not None:
            path = b"/api/notifications"
            body, signing_headers = self.notification.render(target)
            extra = signing_headers + extra
        else:
            activity = self.activity.build(target) if self.activity is not None else None
            if self.raw_body is not None:
                body = self.raw_body
            elif activity is not None:
                body = dumps(activity).encode("utf-8", "surrogatepass")
            if target.name == "signed" or self.token is not None:
                plan = self.token or TokenPlan()
                auth = plan.header_value(target, activity)
        lines = [
            method + b" " + path + b" HTTP/1.1",
            f"Host: 127.0.0.1:{target.port}".encode(),
            b"Connection: close",
        ]
        if self.content_type is not None:
            lines.append(b"Content-Type: " + self.content_type)
        if auth is not None:
            lines.append(b"Authorization: " + auth.replace(b"\r", b"").replace(b"\n", b""))
        lines.extend(name + b": " + value for name, value in extra)
        framing_lines, payload, _half_close = self.framing.encode(body)
        lines.extend(framing_lines)
        return b"\r\n".join(lines) + b"\r\n\r\n" + payload


targets = st.sampled_from(["signed", "demo"])
extra_headers = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_bytes), max_size=3).map(
    tuple
)


def activity_cases(target: TargetName | None = None) -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        family=st.just("activity"),
        target=st.just(target) if target else targets,
        activity=activity_plans(),
    )


def jwt_cases() -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        family=st.just("jwt"),
        target=st.sampled_from(["signed", "signed", "signed", "demo"]),
        activity=st.one_of(
            st.builds(
                ActivityPlan,
                kind=st.just("card_action"),
                actor=picks("reviewers"),
                verb=st.just("refresh"),
                data=st.just({}),
            ),
            # Endorsements: the channel's key is endorsed for msteams only.
            st.builds(
                ActivityPlan,
                kind=st.just("message"),
                actor=picks("reviewers"),
                text=st.just("help"),
                mutations=st.sampled_from(
                    [
                        ((("channelId",), "skype"),),
                        ((("channelId",), "emulator"),),
                        ((("channelId",), ""),),
                        ((("channelId",), DELETE),),
                        ((("channelId",), "msteams"),),
                    ]
                ),
            ),
        ),
        token=token_plans(),
    )


def header_cases() -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        family=st.just("headers"),
        target=targets,
        activity=st.builds(
            ActivityPlan, kind=st.just("message"), actor=picks("reviewers"), text=st.just("help")
        ),
        method=st.sampled_from([b"POST", b"POST", b"POST", *METHODS]),
        content_type=st.sampled_from(CONTENT_TYPES),
        headers=extra_headers,
        raw_body=st.one_of(
            st.none(),
            st.none(),
            st.binary(max_size=100),
            st.sampled_from(
                [
                    b"[" * 100000,
                    b'{"type": "message", "value": ' + b"[" * 3000,
                    b"\xef\xbb\xbf{}",
                    b"{" * 65,
                ]
            ),
        ),
        framing=st.sampled_from(FRAMINGS).map(Framing),
    )


def notification_cases() -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        family=st.just("notification"),
        target=targets,
        notification=notification_plans(),
        content_type=st.sampled_from(CONTENT_TYPES),
        headers=extra_headers,
        framing=st.sampled_from(FRAMINGS).map(Framing),
    )


def admin_cases() -> st.SearchStrategy[Case]:
    return st.builds(
        Case,
        family=st.just("admin"),
        target=targets,
        admin=admin_plans(),
        content_type=st.sampled_from([None, b"application/json", b"text/plain"]),
        headers=extra_headers,
    )


def any_case() -> st.SearchStrategy[Case]:
    """Every family, in the proportions the long run uses."""
    return st.one_of(
        activity_cases(),
        activity_cases(),
        jwt_cases(),
        header_cases(),
        notification_cases(),
        admin_cases(),
    )
