# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The quick path of `parse_message`, compiled: the same decisions as parser._parse_quick,
made on the octets in C instead of with str methods and regexes.

Optional. `make venv` builds it with Cython when a C compiler is there; without it, parser.py
runs the pure-Python quick path, which gives the same messages (tests/sip/test_quick_path.py
holds the careful parser, the Python quick path and this one to the same results).

`parse_quick(data)` returns a Request or Response — with exactly the header lists, cache,
`_raw` and body the careful parser gives — or None for anything it is not sure of: then the
careful parser decides, and raises the error if there is one. It is stricter than the Python
quick path (the head must be printable ASCII, CRLF line ends only), never different.

The scanners mirror, character class for character class, the regexes whose place they take:
uri._FAST_RE, fields._VIA_QUICK_RE and fields._NAME_ADDR_QUICK_RE (possessive quantifiers,
so a scan that would have to back off declines instead).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.object cimport PyTypeObject
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t
from libc.string cimport memcmp, memcpy

from .errors import SipParseError
from .headers import Headers, KEY_OF, new_key


cdef extern from "Python.h":
    str PyUnicode_New(Py_ssize_t size, Py_UCS4 maxchar)
    bint PyUnicode_IS_ASCII(object text)
    const void* PyUnicode_DATA(object text)
    Py_ssize_t PyUnicode_GET_LENGTH(object text)


cdef object _new_tuple = tuple.__new__
cdef tuple _NO_ARGS = ()


cdef inline object _new(object cls):
    """object.__new__(cls), through the type's slot instead of a Python-level call: the message
    and field classes are plain __slots__ classes that do not override __new__."""
    return (<PyTypeObject*>cls).tp_new(cls, <PyObject*>_NO_ARGS, NULL)

# fields and message import uri, which imports this module: bound on first use instead.
cdef object Via, NameAddr, CSeq, parse_via, parse_name_addr, parse_cseq, Request, Response
cdef bint _bound = False


cdef void _bind() except *:
    global Via, NameAddr, CSeq, parse_via, parse_name_addr, parse_cseq, Request, Response, _bound
    from .fields import CSeq, NameAddr, Via, parse_cseq, parse_name_addr, parse_via
    from .message import Request, Response
    for cls in (Via, NameAddr, Request, Response, Headers):
        if cls.__new__ is not object.__new__:  # _new() would skip it
            raise TypeError(f"{cls.__name__} overrides __new__: change _speedups._new with it")
    _bound = True

# Character classes, one table each (RFC 3261 §25.1, as the regexes spell them).
cdef unsigned char TOKEN[256]          # token: alphanum and -.!%*_+`'~
cdef unsigned char TOKEN_COLON[256]    # a plain parameter value: token chars and ':'
cdef unsigned char URI_USER[256]       # [A-Za-z0-9\-_.!~*'()&=+$,/]
cdef unsigned char URI_HOST[256]       # [A-Za-z0-9\-.]
cdef unsigned char URI_PARAM[256]      # [A-Za-z0-9\-_.!~*'()\[\]/:&+$]
cdef unsigned char VIA_HOST[256]       # [A-Za-z0-9\-._]
cdef unsigned char ADDR_URI[256]       # [!-;=?-~]: printable, no space, '<' or '>'
cdef unsigned char DISPLAY[256]        # [ !#-\[\]-~]: printable, no '"' or '\'


cdef void _fill(unsigned char* table, bytes chars):
    cdef unsigned char c
    for c in chars:
        table[c] = 1


cdef bytes _ALNUM = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_fill(TOKEN, _ALNUM + b"-.!%*_+`'~")
_fill(TOKEN_COLON, _ALNUM + b"-.!%*_+`'~:")
_fill(URI_USER, _ALNUM + b"-_.!~*'()&=+$,/")
_fill(URI_HOST, _ALNUM + b"-.")
_fill(URI_PARAM, _ALNUM + b"-_.!~*'()[]/:&+$")
_fill(VIA_HOST, _ALNUM + b"-._")
cdef int _c
for _c in range(0x21, 0x7F):
    if _c != 0x3C and _c != 0x3E:
        ADDR_URI[_c] = 1
    if _c != 0x22 and _c != 0x5C:
        DISPLAY[_c] = 1
DISPLAY[0x20] = 1


# Header names as written -> (name, key, which field), in a small table keyed by the octets,
# so a name seen before costs no new string and no dict look-up. A collision just replaces
# the slot; `_slot_refs` owns the references the slots point to.
cdef enum:  # the header fields parse_quick tracks
    OTHER, VIA, FROM, TO, CSEQ, CONTACT, LENGTH, MAX_FORWARDS, FIELDS

cdef dict _FIELDS = {"via": VIA, "from": FROM, "to": TO, "cseq": CSEQ, "contact": CONTACT,
                     "content-length": LENGTH, "max-forwards": MAX_FORWARDS}

cdef struct NameSlot:
    PyObject* name
    PyObject* key
    Py_ssize_t length
    int field

cdef enum:
    NAME_SLOTS = 256
cdef NameSlot _slots[NAME_SLOTS]
cdef list _slot_refs = [None] * NAME_SLOTS


cdef inline NameSlot* _name_slot(const unsigned char* p, Py_ssize_t start, Py_ssize_t end) except NULL:
    cdef unsigned int h = 2166136261u
    cdef Py_ssize_t k
    for k in range(start, end):
        h = (h ^ p[k]) * 16777619u
    cdef unsigned int index = h % NAME_SLOTS
    cdef NameSlot* slot = &_slots[index]
    if slot.name != NULL and slot.length == end - start \
            and memcmp(PyUnicode_DATA(<object>slot.name), p + start, end - start) == 0:
        return slot
    name = _text(p, start, end)
    found = PyDict_GetItem(KEY_OF, name)
    key = <object>found if found is not NULL else new_key(name)
    _slot_refs[index] = (name, key)
    slot.name = <PyObject*>name
    slot.key = <PyObject*>key
    slot.length = end - start
    slot.field = _FIELDS.get(key, OTHER)
    return slot


cdef inline str _text(const unsigned char* p, Py_ssize_t start, Py_ssize_t end):
    # Only ever called on ASCII (parse_quick checked the whole head; sip_uri_parts takes ASCII
    # text only), so the octets are copied as they are, not decoded and checked again.
    cdef str text = PyUnicode_New(end - start, 127)
    memcpy(<void*>PyUnicode_DATA(text), p + start, end - start)
    return text


cdef inline Py_ssize_t _printable_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t n):
    """Where the run of printable ASCII and tabs from i ends. Eight octets at a time while none
    is below ' ' or above '~' (the "has less"/"has more" word tricks: exact about whether any
    octet of the word is out of range, which is all the skip needs), then one at a time."""
    cdef uint64_t word
    cdef unsigned char c
    while i < n:
        if i + 8 <= n:
            memcpy(&word, p + i, 8)
            if not (((word - 0x2020202020202020u) & ~word) | (word + 0x0101010101010101u) | word) \
                    & 0x8080808080808080u:
                i += 8
                continue
        c = p[i]
        if (c < 32 or c >= 127) and c != 9:
            return i
        i += 1
    return i


cdef inline Py_ssize_t _run(const unsigned char* p, Py_ssize_t i, Py_ssize_t end, const unsigned char* table):
    while i < end and table[p[i]]:
        i += 1
    return i


cdef inline bint _is_digit(unsigned char c):
    return 48 <= c <= 57


cdef Py_ssize_t _params_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t end,
                            const unsigned char* name, const unsigned char* value):
    """Where `(?:;N++(?:=V++)?+)*+` stops from i (N, V: the name and value classes)."""
    cdef Py_ssize_t j
    while i < end and p[i] == 59:  # ';'
        j = _run(p, i + 1, end, name)
        if j == i + 1:
            return i
        if j < end and p[j] == 61:  # '='
            if j + 1 < end and value[p[j + 1]]:
                j = _run(p, j + 1, end, value)
            else:
                return j  # '=' with no value: the group stops before it, and fullmatch fails
        i = j
    return i


cdef inline Py_ssize_t _plain_params(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """Where plain parameters, `(?:;T++(?:=[T:]++)?+)*+` (T = token chars), stop."""
    return _params_end(p, i, end, TOKEN, TOKEN_COLON)


cdef inline Py_ssize_t _port(const unsigned char* p, Py_ssize_t i, Py_ssize_t end, int* port):
    """Where `(?::([0-9]{1,5}+))?+` stops from i; *port is its number, or -1 when absent."""
    cdef int digits = 0
    port[0] = -1
    if i < end and p[i] == 58 and i + 1 < end and _is_digit(p[i + 1]):
        port[0] = 0
        i += 1
        while i < end and digits < 5 and _is_digit(p[i]):
            port[0] = port[0] * 10 + p[i] - 48
            i += 1
            digits += 1
    return i


cdef dict _params_dict(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """grammar.plain_params() of text that _plain_params() accepted: names lower-cased,
    the last of a repeated name wins."""
    cdef dict params = {}
    cdef Py_ssize_t name_end, value_end, k
    while i < end:
        name_end = _run(p, i + 1, end, TOKEN)
        name = _text(p, i + 1, name_end)
        for k in range(i + 1, name_end):
            if 65 <= p[k] <= 90:
                name = name.lower()
                break
        if name_end < end and p[name_end] == 61:
            value_end = _run(p, name_end + 1, end, TOKEN_COLON)
            params[name] = _text(p, name_end + 1, value_end)
        else:
            value_end = name_end
            params[name] = None
        i = value_end
    return params


cdef Py_ssize_t _sip_uri_end(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """uri._FAST_RE matched from i: the index where it stops, or -1. Also checks the port
    is at most 65535 (parse_uri's condition for its quick path)."""
    cdef Py_ssize_t j, host
    cdef int port
    # ([sS][iI][pP][sS]?):
    if end - i < 4 or (p[i] | 32) != 115 or (p[i + 1] | 32) != 105 or (p[i + 2] | 32) != 112:
        return -1
    i += 3
    if p[i] == 58:
        i += 1
    elif (p[i] | 32) == 115 and i + 1 < end and p[i + 1] == 58:
        i += 2
    else:
        return -1
    # (?:(user)@)?+
    j = _run(p, i, end, URI_USER)
    if j > i and j < end and p[j] == 64:
        i = j + 1
    # (host)
    host = i
    i = _run(p, i, end, URI_HOST)
    if i == host:
        return -1
    i = _port(p, i, end, &port)
    if port > 65535:
        return -1
    return _params_end(p, i, end, URI_PARAM, URI_PARAM)


def sip_uri_parts(str text):
    """uri._FAST_RE.fullmatch(text) as (scheme, user, host, port, params text) — scheme
    lower-cased, port an int or None — or None when it does not match or the port is over
    65535 (parse_uri's quick path then steps aside)."""
    if not PyUnicode_IS_ASCII(text):
        return None
    cdef const unsigned char* p = <const unsigned char*>PyUnicode_DATA(text)
    cdef Py_ssize_t end = PyUnicode_GET_LENGTH(text)
    if _sip_uri_end(p, 0, end) != end:
        return None
    # The same walk again, now taking the pieces (it matched, so nothing is checked).
    cdef Py_ssize_t i = 4 if p[3] == 58 else 5, j, host
    cdef int port
    scheme = "sip" if i == 4 else "sips"
    user = None
    j = _run(p, i, end, URI_USER)
    if j > i and j < end and p[j] == 64:
        user = _text(p, i, j)
        i = j + 1
    host = i
    i = _run(p, i, end, URI_HOST)
    host_text = _text(p, host, i)
    i = _port(p, i, end, &port)
    return scheme, user, host_text, None if port < 0 else port, _text(p, i, end)


cdef object _via(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """fields.parse_via's quick path (_VIA_QUICK_RE) on p[i:end], or None."""
    cdef Py_ssize_t t, h, params
    cdef int port
    if end - i < 8 or p[i] != 83 or p[i + 1] != 73 or p[i + 2] != 80 or p[i + 3] != 47 \
            or p[i + 4] != 50 or p[i + 5] != 46 or p[i + 6] != 48 or p[i + 7] != 47:  # "SIP/2.0/"
        return None
    i += 8
    t = i
    while i < end and (65 <= (p[i] & ~32) <= 90):
        i += 1
    if i == t or i >= end or p[i] != 32:
        return None
    transport = _text(p, t, i).upper()
    i += 1
    h = i
    i = _run(p, i, end, VIA_HOST)
    if i == h:
        return None
    host = _text(p, h, i)
    i = _port(p, i, end, &port)
    if port > 65535:
        return None
    params = i
    if _plain_params(p, i, end) != end:
        return None
    via = _new(Via)
    via.protocol = "SIP/2.0"
    via.transport = transport
    via.host = host
    via.port = None if port < 0 else port
    via._params = _params_dict(p, params, end)
    via._ptext = _text(p, params, end)
    return via


cdef object _name_addr(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """fields.parse_name_addr's quick path (_NAME_ADDR_QUICK_RE) on p[i:end], or None."""
    cdef Py_ssize_t d, u, params
    display = None
    if i < end and p[i] == 34:  # '"'
        d = i + 1
        i = _run(p, d, end, DISPLAY)
        if i >= end or p[i] != 34:
            return None
        display = _text(p, d, i)
        i += 1
        if i < end and p[i] == 32:
            i += 1
    if i >= end or p[i] != 60:  # '<'
        return None
    u = i + 1
    i = _run(p, u, end, ADDR_URI)
    if i == u or i >= end or p[i] != 62:  # '>'
        return None
    uri_text = _text(p, u, i)
    params = i + 1
    if _plain_params(p, params, end) != end:
        return None
    addr = _new(NameAddr)
    addr.display_name = display
    addr.uri_text = uri_text
    addr._uri = None
    addr._params = _params_dict(p, params, end)
    addr._ptext = _text(p, params, end)
    return addr


cdef object _cseq(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """fields.parse_cseq's quick path ('<1-9 digits> <letters>') on p[i:end], or None."""
    cdef Py_ssize_t start = i, m
    cdef long seq = 0
    while i < end and _is_digit(p[i]):
        if i - start < 9:  # more than 9 digits is declined below; no overflow before that
            seq = seq * 10 + p[i] - 48
        i += 1
    if i == start or i - start > 9 or i >= end or p[i] != 32:
        return None
    m = i + 1
    i = m
    while i < end and (65 <= (p[i] & ~32) <= 90):
        i += 1
    if i == m or i != end:
        return None
    return _new_tuple(CSeq, (seq, _text(p, m, end)))


cdef inline bint _small_number(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    """1 to 10 ASCII digits (grammar.small_number's rule)."""
    if end <= i or end - i > 10:
        return False
    while i < end:
        if not _is_digit(p[i]):
            return False
        i += 1
    return True


cdef inline bint _has_comma(const unsigned char* p, Py_ssize_t i, Py_ssize_t end):
    while i < end:
        if p[i] == 44:
            return True
        i += 1
    return False


def parse_quick(bytes data):
    """The common well-formed message, or None (see the module docstring)."""
    cdef const unsigned char* p = <const unsigned char*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t i = 0, line_end, start, colon, vs, ve, head_end, body_start, k
    cdef Py_ssize_t count = 0, length_at, via_at, from_at, to_at, cseq_at, contact_at, mf_at
    cdef Py_ssize_t at[FIELDS]  # the line of each field's first header (-1: none)
    cdef int seen[FIELDS]  # how many lines of each field
    cdef int vias, contacts, lengths, field
    cdef long long length
    cdef unsigned char c
    cdef NameSlot* slot
    cdef list names = [], values = [], keys = []
    cdef Py_ssize_t starts[128]
    cdef Py_ssize_t ends[128]

    if not _bound:
        _bind()
    for field in range(FIELDS):
        at[field] = -1
        seen[field] = 0
    # The start line.
    while i < n and p[i] != 13:
        c = p[i]
        if c < 32 or c >= 127:
            return None
        i += 1
    if i == 0 or i + 1 >= n or p[i + 1] != 10:
        return None
    line_end = i
    first = _text(p, 0, line_end)
    if line_end >= 12 and p[0] == 83 and p[1] == 73 and p[2] == 80 and p[3] == 47 and p[4] == 50 \
            and p[5] == 46 and p[6] == 48 and p[7] == 32:  # "SIP/2.0 "
        if not (49 <= p[8] <= 54 and _is_digit(p[9]) and _is_digit(p[10]) and p[11] == 32):
            return None
        message = _new(Response)
        message.status = (p[8] - 48) * 100 + (p[9] - 48) * 10 + p[10] - 48
        message.reason = _text(p, 12, line_end)
        method = None
    else:
        k = 0
        while k < line_end and (65 <= (p[k] & ~32) <= 90):
            k += 1
        if k == 0 or k >= line_end or p[k] != 32:
            return None
        start = k + 1
        if _sip_uri_end(p, start, line_end) != line_end - 8 or line_end - 8 <= start:
            return None
        # " SIP/2.0" closes the line.
        if p[line_end - 8] != 32 or p[line_end - 7] != 83 or p[line_end - 6] != 73 or p[line_end - 5] != 80 \
                or p[line_end - 4] != 47 or p[line_end - 3] != 50 or p[line_end - 2] != 46 or p[line_end - 1] != 48:
            return None
        method = _text(p, 0, k)
        message = _new(Request)
        message.method = method
        message._uri_text = _text(p, start, line_end - 8)
        message._uri = None
        message._uri_given = False
    i = line_end + 2

    # Header lines up to the empty line: token ":" value, printable ASCII, CRLF ends.
    while True:
        if i + 1 >= n:
            return None
        if p[i] == 13:
            if p[i + 1] != 10:
                return None
            head_end = i
            break
        start = i
        i = _run(p, i, n, TOKEN)
        if i == start or i >= n or p[i] != 58:
            return None
        colon = i
        i += 1
        while i < n and (p[i] == 32 or p[i] == 9):
            i += 1
        vs = i
        i = _printable_end(p, i, n)
        if i + 1 >= n or p[i] != 13 or p[i + 1] != 10:
            return None
        ve = i
        while ve > vs and (p[ve - 1] == 32 or p[ve - 1] == 9):
            ve -= 1
        i += 2
        if count == 128:
            return None
        starts[count] = vs
        ends[count] = ve
        slot = _name_slot(p, start, colon)
        names.append(<object>slot.name)
        values.append(_text(p, vs, ve))
        keys.append(<object>slot.key)
        # The fields the checks below read (the first of each, as Headers._first does).
        field = slot.field
        seen[field] += 1
        if at[field] < 0:
            at[field] = count
        count += 1
    via_at, from_at, to_at, cseq_at = at[VIA], at[FROM], at[TO], at[CSEQ]
    contact_at, length_at, mf_at = at[CONTACT], at[LENGTH], at[MAX_FORWARDS]
    vias, contacts, lengths = seen[VIA], seen[CONTACT], seen[LENGTH]

    # Framing: exactly one Content-Length, and the body there.
    if lengths != 1 or not _small_number(p, starts[length_at], ends[length_at]):
        return None
    length = 0
    for k in range(starts[length_at], ends[length_at]):
        length = length * 10 + p[k] - 48
    body_start = head_end + 2
    if body_start + length > n:
        return None
    headers = _new(Headers)
    headers._names = names
    headers._values = values
    headers._keys = keys
    cache = {}
    headers._cache = cache
    headers._raw = (first, data[:body_start], length)
    message.headers = headers
    message.body = data[body_start : body_start + length]

    # The checks of parser._check(), in its order, on the common shapes; anything unusual
    # goes to the Python parsers of the field (which may raise: then the careful path).
    try:
        via = None
        if vias == 1 and not _has_comma(p, starts[via_at], ends[via_at]):
            via = _via(p, starts[via_at], ends[via_at])
            cache["via"] = [via if via is not None else parse_via(values[via_at])]
        else:
            cache["via"] = [parse_via(v) for v in headers._all("via")]
        if from_at >= 0:
            addr = _name_addr(p, starts[from_at], ends[from_at])
            cache["from"] = addr if addr is not None else parse_name_addr(values[from_at], "From")
        else:
            cache["from"] = None
        if to_at >= 0:
            addr = _name_addr(p, starts[to_at], ends[to_at])
            cache["to"] = addr if addr is not None else parse_name_addr(values[to_at], "To")
        else:
            cache["to"] = None
        cseq = None
        if cseq_at >= 0:
            cseq = _cseq(p, starts[cseq_at], ends[cseq_at])
            if cseq is None:
                cseq = parse_cseq(values[cseq_at])
        cache["cseq"] = cseq
        if contacts:
            value = values[contact_at]
            if contacts == 1 and not _has_comma(p, starts[contact_at], ends[contact_at]) and value != "*":
                addr = _name_addr(p, starts[contact_at], ends[contact_at])
                cache["contact"] = [addr if addr is not None else parse_name_addr(value, "Contact")]
            else:
                message.contacts
        if mf_at >= 0 and not _small_number(p, starts[mf_at], ends[mf_at]):
            return None
    except SipParseError:
        return None
    if method is not None and cseq is not None and cseq.method != method:
        return None
    return message
