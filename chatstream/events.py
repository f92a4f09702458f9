"""The data model: finished items, their content parts, and the events of a stream.

Names follow the Chat Completions reducer that chatstream ports (``ResponseItem`` and
``ResponseEvent``), so code written against it reads the same here.

Every class serialises to and from JSON through dataclasses-json. The JSON object of an
item, a content part or an event carries a ``"type"`` tag naming its kind, so a stream of
events written with :meth:`~Serializable.to_json` can be read back with
:func:`event_from_json` without knowing the kinds in advance::

    >>> from chatstream import OutputTextDelta, event_from_json
    >>> OutputTextDelta("Hi").to_json()
    '{"type": "output_text_delta", "delta": "Hi", "choice_index": 0}'
    >>> event_from_json(_)
    OutputTextDelta(delta='Hi', choice_index=0)
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, NoReturn, TypeVar

from dataclasses_json import DataClassJsonMixin, config

__all__ = [
    "Audio",
    "AudioDelta",
    "Completed",
    "ContentPart",
    "Created",
    "FunctionCall",
    "FunctionCallArgumentsDelta",
    "Message",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputItemIncomplete",
    "OtherItem",
    "OutputText",
    "OutputTextDelta",
    "OutputElementDone",
    "OutputTextParsed",
    "RateLimits",
    "RawChunk",
    "Reasoning",
    "ReasoningContentDelta",
    "ReasoningSummaryDelta",
    "ReasoningSummaryPartAdded",
    "ReasoningText",
    "Refusal",
    "RefusalDelta",
    "ResponseEvent",
    "ResponseItem",
    "Serializable",
    "SummaryText",
    "TokenUsage",
    "event_from_dict",
    "event_from_json",
    "is_content",
    "item_from_dict",
]

_S = TypeVar("_S", bound="Serializable")
_T = TypeVar("_T")
_set = object.__setattr__

# type tag -> class, filled by ``_tagged``; one table for every kind so that a tag
# names exactly one class.
_KINDS: dict[str, type[Serializable]] = {}


class Serializable(DataClassJsonMixin):
    """Base of every item, part and event: JSON with a ``"type"`` tag.

    ``to_dict()`` / ``to_json()`` write the tag first; ``from_dict()`` / ``from_json()``
    on a concrete class read its own kind, and on :class:`Serializable` itself (or through
    :func:`event_from_json` and :func:`item_from_dict`) pick the class the tag names.
    """

    #: The tag naming this kind in JSON.
    type: ClassVar[str]

    def to_dict(self, encode_json: bool = False) -> dict[str, Any]:
        """This object as a JSON-ready dict, ``"type"`` first."""
        return {"type": self.type, **super().to_dict(encode_json=encode_json)}

    @classmethod
    def from_dict(cls: builtins.type[_S], kvs: Any, *, infer_missing: bool = False) -> _S:
        """Rebuild an object from :meth:`to_dict` output.

        Raises:
            ValueError: ``kvs`` is not an object, its tag names another kind, or a field
                is missing or malformed.
        """
        if not isinstance(kvs, Mapping):
            raise ValueError(f"expected a JSON object, got {type(kvs).__name__}")
        tag = kvs.get("type")
        target = _KINDS.get(tag) if isinstance(tag, str) else None
        if target is None or not issubclass(target, cls):
            want = cls.type if "type" in cls.__dict__ else cls.__name__
            raise ValueError(f"cannot read a {tag!r} object as {want}")
        if target is not cls:
            return target.from_dict(kvs, infer_missing=infer_missing)
        fields = {k: v for k, v in kvs.items() if k != "type"}
        try:
            # dataclasses-json builds the object (from_dict of the mixin, unbound here
            # because a classmethod's super() cannot be typed against a TypeVar).
            obj: _S = DataClassJsonMixin.from_dict.__func__(  # type: ignore[attr-defined]
                cls, fields, infer_missing=infer_missing
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"cannot read {tag!r}: missing or malformed field ({exc})") from exc
        return obj


def _tagged(tag: str) -> Callable[[type[_S]], type[_S]]:
    def register(cls: type[_S]) -> type[_S]:
        cls.type = tag
        _KINDS[tag] = cls
        return cls

    return register


#: The metadata of an optional field, ``field(default=None, metadata=_OPTIONAL)``: left
#: out of the JSON and the ``repr`` while it is ``None``, so the provider data that only
#: some streams carry costs nothing in the others.
_OPTIONAL: dict[str, Any] = {**config(exclude=lambda value: value is None), "optional": True}


def _compact_repr(self: Any) -> str:
    """The dataclass ``repr``, without the optional fields that are ``None``."""
    shown = []
    for f in fields(self):
        value = getattr(self, f.name)
        if f.repr and not (value is None and f.metadata.get("optional")):
            shown.append(f"{f.name}={value!r}")
    return f"{type(self).__qualname__}({', '.join(shown)})"


def _compact(cls: type[_T]) -> type[_T]:
    """Give a dataclass with optional fields :func:`_compact_repr`."""
    cls.__repr__ = _compact_repr  # type: ignore[method-assign]
    return cls


# --- the provider's own data, read-only ---------------------------------------------------


def _read_only(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(
        "provider data in a chatstream result is read-only; copy it to change it "
        "(dict(value) or list(value), or json.loads(json.dumps(value)) for a deep copy)"
    )


class _ReadOnlyDict(dict[str, Any]):
    """A JSON object of the provider's, inside a frozen result: a ``dict`` (so ``==``,
    ``json.dumps`` and ``isinstance(x, dict)`` work as on what ``json.loads`` gives)
    whose every change raises :class:`TypeError`, since the same object may be held by
    an event and by the finished response. ``dict(x)`` is a plain, changeable copy of
    the top level."""

    __slots__ = ()
    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[type[_ReadOnlyDict], tuple[dict[str, Any]]]:
        # copy and pickle rebuild it whole (their default fills a dict key by key).
        return (_ReadOnlyDict, (dict(self),))


class _ReadOnlyList(list[Any]):
    """A JSON array of the provider's, inside a frozen result: a ``list`` whose every
    change raises :class:`TypeError` (see :class:`_ReadOnlyDict`)."""

    __slots__ = ()
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _read_only
    append = extend = insert = pop = remove = clear = sort = reverse = _read_only

    def __reduce__(self) -> tuple[type[_ReadOnlyList], tuple[list[Any]]]:
        return (_ReadOnlyList, (list(self),))


# What _freeze returns unchanged: JSON's scalars, and what it made.
_FROZEN = frozenset({str, int, float, bool, type(None), _ReadOnlyDict, _ReadOnlyList})


def _freeze(value: Any) -> Any:
    """JSON data made read-only, deeply: objects become read-only dicts, arrays
    read-only lists, each equal to what it was made from. Data frozen already is
    returned as it is (a read-only container holds frozen data only), so freezing twice
    costs a look at the top level."""
    if type(value) in _FROZEN:
        return value
    try:
        return _frozen(value)
    except RecursionError:  # as deep as a JSON parser reads: without recursion
        return _rebuilt(value, _ReadOnlyDict, _ReadOnlyList)


def _frozen(value: Any) -> Any:
    kind = type(value)
    if kind in _FROZEN:
        return value
    if kind is dict:
        return _ReadOnlyDict({key: _frozen(item) for key, item in value.items()})
    if kind is list:
        return _ReadOnlyList([_frozen(item) for item in value])
    if isinstance(value, Mapping):
        return _ReadOnlyDict({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return _ReadOnlyList([_frozen(item) for item in value])
    return value


def _freeze_optional(value: Any) -> Any:
    return None if value is None else _freeze(value)


def _thaw(value: Any) -> Any:
    """Frozen JSON data as plain, changeable dicts and lists again (a deep copy)."""
    try:
        return _thawed(value)
    except RecursionError:
        return _rebuilt(value, dict, list)


def _thawed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _thawed(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_thawed(item) for item in value]
    return value


def _rebuilt(
    value: Any, as_map: Callable[[dict[Any, Any]], Any], as_seq: Callable[[list[Any]], Any]
) -> Any:
    """``value`` with its mappings made by ``as_map`` and its lists and tuples by
    ``as_seq``, at any depth, without recursion."""

    def children(node: Any) -> Any:
        return iter(list(node.items())) if isinstance(node, Mapping) else enumerate(node)

    if not isinstance(value, Mapping | list | tuple):
        return value
    # One frame per open container: its key in its parent, its children, what is built.
    stack: list[tuple[Any, Any, Any]] = [
        (None, children(value), {} if isinstance(value, Mapping) else [])
    ]
    while True:
        _, todo, built = stack[-1]
        for key, child in todo:
            if isinstance(child, Mapping | list | tuple):
                stack.append((key, children(child), {} if isinstance(child, Mapping) else []))
                break
            if type(built) is dict:
                built[key] = child
            else:
                built.append(child)
        else:
            key, _, built = stack.pop()
            done = as_map(built) if type(built) is dict else as_seq(built)
            if not stack:
                return done
            parent = stack[-1][2]
            if type(parent) is dict:
                parent[key] = done
            else:
                parent.append(done)


def _tuple(items: Iterable[_T]) -> tuple[_T, ...]:
    return items if type(items) is tuple else tuple(items)


#: A JSON object exactly as the provider sent it (a read-only dict in a result).
Raw = Mapping[str, Any]

#: The metadata of a field that holds the provider's data as sent: read back frozen, and
#: left out of the hash (it is compared, but a dict has no hash).
_RAW: dict[str, Any] = config(decoder=_freeze_optional)
#: Likewise, for an optional field (see ``_OPTIONAL``).
_RAW_OPTIONAL: dict[str, Any] = {
    **config(exclude=lambda value: value is None, decoder=_freeze_optional),
    "optional": True,
}


def _polymorphic(base: type[Serializable]) -> dict[str, Any]:
    """Field metadata that writes and reads one tagged object of ``base``'s kinds."""
    return config(encoder=lambda obj: obj.to_dict(), decoder=base.from_dict)


def _polymorphic_tuple(base: type[Serializable]) -> dict[str, Any]:
    """Field metadata that writes a tuple of tagged objects as a JSON array, and reads
    it back as a tuple."""
    return config(
        encoder=lambda objs: [obj.to_dict() for obj in objs],
        decoder=lambda raw: tuple([base.from_dict(obj) for obj in raw]),
    )


# --- content parts ---------------------------------------------------------------------


class _Part(Serializable):
    """A piece of content inside an item."""


@_tagged("output_text")
@_compact
@dataclass(frozen=True)
class OutputText(_Part):
    """Assistant text inside a :class:`Message`.

    On the Responses wire a part also keeps its ``annotations`` (URL and file citations)
    and ``logprobs`` as sent, when the provider sent them; otherwise they are ``None``.
    """

    text: str
    annotations: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    logprobs: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)

    def __post_init__(self) -> None:
        for name in ("annotations", "logprobs"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _freeze(value))


@_tagged("refusal")
@dataclass(frozen=True)
class Refusal(_Part):
    """The model's refusal to answer, inside a :class:`Message`."""

    text: str


@_tagged("reasoning_text")
@dataclass(frozen=True)
class ReasoningText(_Part):
    """Reasoning ("thinking") text inside a :class:`Reasoning` item."""

    text: str


@_tagged("summary_text")
@dataclass(frozen=True)
class SummaryText(_Part):
    """A reasoning summary inside a :class:`Reasoning` item."""

    text: str


#: A part of a :class:`Message`.
ContentPart = OutputText | Refusal


# --- items -----------------------------------------------------------------------------


class _Item(Serializable):
    """An output item: what a stream produces, in order."""


@_tagged("message")
@_compact
@dataclass(frozen=True)
class Message(_Item):
    """The assistant's answer: text and refusal parts, in the order they arrived.

    Consecutive fragments of the same kind are joined into one part.
    """

    role: str = "assistant"
    content: tuple[ContentPart, ...] = field(default=(), metadata=_polymorphic_tuple(_Part))
    id: str | None = None
    #: The ``delta.annotations`` entries (URL citations), as sent, or ``None``.
    annotations: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    #: The item's ``status`` on the Responses wire (``"completed"``, ...), or ``None``.
    status: str | None = field(default=None, metadata=_OPTIONAL)

    def __post_init__(self) -> None:
        _set(self, "content", _tuple(self.content))
        if self.annotations is not None:
            _set(self, "annotations", _freeze(self.annotations))

    @property
    def text(self) -> str:
        """All output text of the message, joined."""
        return "".join(p.text for p in self.content if isinstance(p, OutputText))


@_tagged("reasoning")
@_compact
@dataclass(frozen=True)
class Reasoning(_Item):
    """The model's reasoning, when the provider streams it.

    ``content`` holds the reasoning text. What a provider needs back on the next request
    is kept as it was sent: ``details`` are OpenRouter's ``reasoning_details`` entries
    and ``thinking_blocks`` the Anthropic-style blocks (with their ``signature``), each
    with the fragments of one entry joined. ``encrypted_content`` is the data of an
    encrypted entry (``reasoning.encrypted``, ``redacted_thinking``), and ``id`` the
    first entry's id. On the Chat Completions wire ``summary`` stays empty: those streams
    send summaries as ``reasoning_details`` entries, whose text is in ``content``. On the
    Responses wire ``id``, ``summary`` (one part per summary index), ``content`` and
    ``encrypted_content`` are the item's own, and ``status`` its status when sent.
    """

    id: str = ""
    summary: tuple[SummaryText, ...] = field(default=(), metadata=_polymorphic_tuple(_Part))
    content: tuple[ReasoningText, ...] = field(default=(), metadata=_polymorphic_tuple(_Part))
    encrypted_content: str | None = None
    details: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    thinking_blocks: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)

    status: str | None = field(default=None, metadata=_OPTIONAL)

    def __post_init__(self) -> None:
        _set(self, "summary", _tuple(self.summary))
        _set(self, "content", _tuple(self.content))
        if self.details is not None:
            _set(self, "details", _freeze(self.details))
        if self.thinking_blocks is not None:
            _set(self, "thinking_blocks", _freeze(self.thinking_blocks))

    @property
    def text(self) -> str:
        """All reasoning text, joined."""
        return "".join(p.text for p in self.content)


@_tagged("function_call")
@_compact
@dataclass(frozen=True)
class FunctionCall(_Item):
    """A tool call the model asks for.

    ``arguments`` is the JSON text exactly as streamed (it is not parsed, so a call whose
    arguments are not valid JSON still reaches you unchanged); the validated arguments
    are the tool's to give: :meth:`Tool.arguments <chatstream.tools.Tool.arguments>`.
    ``call_id`` is the
    provider's id, or ``tool-call-{index}`` when the provider sent none.

    ``custom`` is true for a call of a custom (free-text) tool, streamed as ``{"type":
    "custom", "custom": {"name", "input"}}``: its ``arguments`` hold the input text,
    which is not JSON.

    ``extra_content`` is the call's ``extra_content`` object as sent (Gemini puts its
    thought signature there, and needs it back on the next request), or ``None``.

    On the Responses wire ``id`` is the item's id (``fc_...``) beside its ``call_id``
    (``call_...``), a ``custom_tool_call`` item is a call with ``custom`` true, and
    ``status`` is the item's status when sent.
    """

    name: str
    arguments: str
    call_id: str
    id: str | None = None
    custom: bool = False
    extra_content: Raw | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)

    status: str | None = field(default=None, metadata=_OPTIONAL)

    def __post_init__(self) -> None:
        if self.extra_content is not None:
            _set(self, "extra_content", _freeze(self.extra_content))


@_tagged("other_item")
@dataclass(frozen=True)
class OtherItem(_Item):
    """An output item of any other type, kept whole: the Responses wire's hosted and
    server-side tools (``web_search_call``, ``file_search_call``,
    ``code_interpreter_call``, ``image_generation_call``, ``mcp_call``,
    ``local_shell_call``, ...) and types newer than this library.

    ``item_type`` is its ``type``; ``data`` the item exactly as the provider sent it
    (its ``response.output_item.done`` object, read-only); ``id`` its id, or ``None``.
    """

    item_type: str
    data: Raw = field(hash=False, metadata=_RAW)
    id: str | None = None

    def __post_init__(self) -> None:
        _set(self, "data", _freeze(self.data))


#: Any output item.
ResponseItem = Message | Reasoning | FunctionCall | OtherItem


def item_from_dict(kvs: Mapping[str, Any]) -> ResponseItem:
    """Rebuild any item from its ``to_dict()`` form, picked by its ``"type"`` tag."""
    return _Item.from_dict(kvs)  # type: ignore[return-value]


# --- usage -----------------------------------------------------------------------------


@_compact
@dataclass(frozen=True)
class TokenUsage(DataClassJsonMixin):
    """Token counts of a response, normalised across providers.

    The five counts are always there. The rest is what some providers add, as sent, or
    ``None``: ``cost`` and ``cost_details`` (OpenRouter), and the full
    ``prompt_tokens_details`` and ``completion_tokens_details`` (audio, cached,
    accepted and rejected prediction tokens, ...).
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0
    cost: float | None = field(default=None, metadata=_OPTIONAL)
    cost_details: Raw | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    prompt_tokens_details: Raw | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    completion_tokens_details: Raw | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)

    def __post_init__(self) -> None:
        for name in ("cost_details", "prompt_tokens_details", "completion_tokens_details"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _freeze(value))

    def counts(self) -> dict[str, int]:
        """The five normalised counts (the conformance format's ``usage``)."""
        return {
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_output_tokens": self.reasoning_output_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class Audio(DataClassJsonMixin):
    """The audio answer of a choice (``modalities: ["audio"]``), from ``delta.audio``.

    ``transcript`` and ``data`` (base64 audio) are the joined fragments; ``id`` and
    ``expires_at`` are the provider's. Send ``{"id": id}`` back to refer to it.
    """

    id: str | None = None
    transcript: str = ""
    data: str = ""
    expires_at: int | None = None


# --- events ----------------------------------------------------------------------------


class _Event(Serializable):
    """Something that happened in a stream."""


@_tagged("rate_limits")
@dataclass(frozen=True)
class RateLimits(_Event):
    """The provider's ``x-ratelimit-*`` response headers, sent before anything else.

    ``headers`` maps each header name (lower case, without the ``x-ratelimit-`` prefix)
    to its value, e.g. ``{"remaining-requests": "99", "reset-tokens": "6m0s"}``.
    """

    headers: Mapping[str, str] = field(hash=False, metadata=_RAW)

    def __post_init__(self) -> None:
        _set(self, "headers", _freeze(self.headers))


@_tagged("created")
@_compact
@dataclass(frozen=True)
class Created(_Event):
    """The server accepted the request and started the response (the Responses wire's
    ``response.created``; Chat Completions streams have no such event).

    ``response_id`` and ``model`` are those of its ``response`` object (``""`` and
    ``None`` when absent); ``sequence_number`` is the event's, when sent.
    """

    response_id: str = ""
    model: str | None = None
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


@_tagged("output_item_added")
@_compact
@dataclass(frozen=True)
class OutputItemAdded(_Event):
    """An item starts; deltas for it follow. ``item`` is its (empty) initial state.

    On the Responses wire ``output_index`` is the item's place in the response's
    output and ``sequence_number`` the event's, when sent; both are ``None`` otherwise.
    """

    item: ResponseItem = field(metadata=_polymorphic(_Item))
    choice_index: int = 0
    output_index: int | None = field(default=None, metadata=_OPTIONAL)
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


@_tagged("output_text_delta")
@_compact
@dataclass(frozen=True)
class OutputTextDelta(_Event):
    """More assistant text.

    ``logprobs`` are the ``choices[].logprobs.content`` entries of the chunk that carried
    it (when they were asked for), as sent, or ``None``.
    """

    delta: str
    choice_index: int = 0
    logprobs: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    #: The event's ``sequence_number`` on the Responses wire, when sent.
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)

    def __init__(
        self,
        delta: str,
        choice_index: int = 0,
        logprobs: Iterable[Raw] | None = None,
        sequence_number: int | None = None,
    ) -> None:
        # The most frequent event: a field left at its class default costs nothing here
        # (a frozen dataclass's own __init__ would set every field, one call each).
        _set(self, "delta", delta)
        _set(self, "choice_index", choice_index)
        if logprobs is not None:
            _set(self, "logprobs", _freeze(logprobs))
        if sequence_number is not None:
            _set(self, "sequence_number", sequence_number)


@_tagged("refusal_delta")
@_compact
@dataclass(frozen=True)
class RefusalDelta(_Event):
    """More refusal text; ``logprobs`` are the chunk's ``logprobs.refusal`` entries."""

    delta: str
    choice_index: int = 0
    logprobs: Sequence[Raw] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)

    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)

    def __post_init__(self) -> None:
        if self.logprobs is not None:
            _set(self, "logprobs", _freeze(self.logprobs))


@_tagged("audio_delta")
@dataclass(frozen=True)
class AudioDelta(_Event):
    """More of an audio answer (``delta.audio``): a piece of its ``transcript`` and of its
    base64 ``data``, with the provider's ``id`` and ``expires_at`` when the chunk had
    them. The whole answer is :attr:`ChoiceResult.audio <chatstream.ChoiceResult.audio>`.
    """

    transcript: str = ""
    data: str = ""
    id: str | None = None
    expires_at: int | None = None
    choice_index: int = 0


@_tagged("raw_chunk")
@dataclass(frozen=True)
class RawChunk(_Event):
    """A chunk exactly as the provider sent it (the parsed ``data:`` JSON), before the
    events made from it. Sent only when asked for (``raw_chunks=True``): every field,
    known or not, reaches the caller, so a new provider field needs no new release."""

    chunk: Raw = field(hash=False, metadata=_RAW)

    def __post_init__(self) -> None:
        _set(self, "chunk", _freeze(self.chunk))


@_tagged("reasoning_content_delta")
@_compact
@dataclass(frozen=True)
class ReasoningContentDelta(_Event):
    """More reasoning text; ``content_index`` is the part of the reasoning item it extends."""

    delta: str
    content_index: int = 0
    choice_index: int = 0
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


@_tagged("reasoning_summary_part_added")
@_compact
@dataclass(frozen=True)
class ReasoningSummaryPartAdded(_Event):
    """A new part of the reasoning summary starts (the Responses wire's
    ``response.reasoning_summary_part.added``); its text follows as
    :class:`ReasoningSummaryDelta` events with the same ``summary_index``."""

    summary_index: int = 0
    choice_index: int = 0
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


@_tagged("reasoning_summary_delta")
@_compact
@dataclass(frozen=True)
class ReasoningSummaryDelta(_Event):
    """More text of reasoning summary part ``summary_index``; the finished parts are the
    :class:`Reasoning` item's ``summary``."""

    delta: str
    summary_index: int = 0
    choice_index: int = 0
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


@_tagged("output_item_done")
@_compact
@dataclass(frozen=True)
class OutputItemDone(_Event):
    """An item is finished; ``item`` is complete. ``output_index`` and
    ``sequence_number`` as on :class:`OutputItemAdded`."""

    item: ResponseItem = field(metadata=_polymorphic(_Item))
    choice_index: int = 0
    output_index: int | None = field(default=None, metadata=_OPTIONAL)
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


@_tagged("completed")
@_compact
@dataclass(frozen=True)
class Completed(_Event):
    """The stream ended normally. Always the last event of a successful stream.

    Beside the id and usage it carries what the chunks said about the whole response,
    each ``None`` when not sent: ``system_fingerprint`` and ``service_tier``
    (OpenAI), Perplexity's ``citations`` and ``search_results``, and llama.cpp's
    ``timings`` (prompt and generation speed).
    """

    response_id: str = ""
    token_usage: TokenUsage | None = None
    system_fingerprint: str | None = field(default=None, metadata=_OPTIONAL)
    service_tier: str | None = field(default=None, metadata=_OPTIONAL)
    citations: Sequence[Any] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    search_results: Sequence[Any] | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)
    timings: Raw | None = field(default=None, hash=False, metadata=_RAW_OPTIONAL)

    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)

    def __post_init__(self) -> None:
        for name in ("citations", "search_results", "timings"):
            value = getattr(self, name)
            if value is not None:
                _set(self, name, _freeze(value))


# --- live views: tool calls and JSON as they stream -------------------------------------


@_tagged("function_call_arguments_delta")
@_compact
@dataclass(frozen=True)
class FunctionCallArgumentsDelta(_Event):
    """More of a tool call's arguments (a custom tool's input text), in arrival order.

    The call was announced by an :class:`OutputItemAdded` carrying its
    :class:`FunctionCall`; the deltas of one call join to exactly the ``arguments`` of its
    :class:`OutputItemDone`. ``output_index`` is the call's position among the choice's
    tool calls (in order of first appearance), the same on all of its events;
    ``call_id`` is the id known when the call was announced.

    ``parsed`` is ``None`` unless ``partial_json=True``: then it is the arguments parsed
    so far (see :mod:`chatstream.core.partial_json`) — a view for showing progress, never the
    final value.

    On the Responses wire ``output_index`` is the call item's place in the response's
    output, and ``sequence_number`` the event's when sent.
    """

    call_id: str
    delta: str
    output_index: int = 0
    choice_index: int = 0
    parsed: Any = field(default=None, hash=False)
    sequence_number: int | None = field(default=None, metadata=_OPTIONAL)


def _arguments_delta(
    call_id: str, delta: str, output_index: int, choice_index: int, parsed: Any
) -> FunctionCallArgumentsDelta:
    """``FunctionCallArgumentsDelta(...)``, made without the frozen dataclass's
    ``__init__``, which sets each field through ``object.__setattr__`` (1.5 µs against
    0.5 µs here): one is made for every fragment of every tool call."""
    event: FunctionCallArgumentsDelta = _new(FunctionCallArgumentsDelta)
    fields = event.__dict__
    fields["call_id"] = call_id
    fields["delta"] = delta
    fields["output_index"] = output_index
    fields["choice_index"] = choice_index
    fields["parsed"] = parsed
    fields["sequence_number"] = None
    return event


_new = object.__new__


@_tagged("output_item_incomplete")
@dataclass(frozen=True)
class OutputItemIncomplete(_Event):
    """A tool call that was announced but not finished: the stream ended normally but
    its arguments were cut off (they do not parse as JSON, or the choice finished with
    ``length``). ``item`` is the call as far as it got; it is never an
    :class:`OutputItemDone`, and it is listed under ``incomplete_tool_calls``."""

    item: ResponseItem = field(metadata=_polymorphic(_Item))
    output_index: int = 0
    choice_index: int = 0


@_tagged("output_text_parsed")
@dataclass(frozen=True)
class OutputTextParsed(_Event):
    """The JSON content parsed so far, when the request asked for JSON
    (``response_format`` ``json_object`` or ``json_schema``) and ``partial_json=True``;
    or, with ``output=T``, the typed value so far (its finished parts validated, see
    :mod:`chatstream.core.typed`), sent only when it changed, the last one being the
    validated answer.

    Sent after an :class:`OutputTextDelta` whenever the view was refreshed (see
    :mod:`chatstream.core.partial_json`); a view for showing progress, never the final value.
    """

    parsed: Any = field(hash=False)
    choice_index: int = 0


@_tagged("output_element_done")
@dataclass(frozen=True)
class OutputElementDone(_Event):
    """An element of a typed list answer (``output=list[T]``) is finished: ``element``
    is its validated value (a pydantic model instance, say), ``index`` its position.
    Sent once per element, in order, after the :class:`OutputTextParsed` that first
    shows it finished (see :mod:`chatstream.core.typed`). ``element`` is left out of
    the hash (it may be any value)."""

    element: Any = field(hash=False)
    index: int = 0
    choice_index: int = 0


#: Any event of a stream.
ResponseEvent = (
    RateLimits
    | Created
    | OutputItemAdded
    | OutputTextDelta
    | RefusalDelta
    | ReasoningContentDelta
    | ReasoningSummaryPartAdded
    | ReasoningSummaryDelta
    | AudioDelta
    | OutputItemDone
    | Completed
    | FunctionCallArgumentsDelta
    | OutputItemIncomplete
    | OutputTextParsed
    | OutputElementDone
    | RawChunk
)


_CONTENT = (
    OutputTextDelta,
    ReasoningContentDelta,
    RefusalDelta,
    FunctionCallArgumentsDelta,
    AudioDelta,
)


def is_content(event: ResponseEvent) -> bool:
    """True for an event that brings content: a delta of text, reasoning, refusal,
    arguments or audio, or a tool call's start (its name is content). Timings and
    telemetry count the gaps between these."""
    return isinstance(event, _CONTENT) or (
        isinstance(event, OutputItemAdded) and isinstance(event.item, FunctionCall)
    )


def event_from_dict(kvs: Mapping[str, Any]) -> ResponseEvent:
    """Rebuild any event from its ``to_dict()`` form, picked by its ``"type"`` tag."""
    return _Event.from_dict(kvs)  # type: ignore[return-value]


def event_from_json(text: str | bytes) -> ResponseEvent:
    """Rebuild any event from one line of :meth:`~Serializable.to_json` output."""
    return _Event.from_json(text)  # type: ignore[return-value]
