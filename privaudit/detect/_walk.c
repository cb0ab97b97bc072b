/*
 * The JSON walk of privaudit's decoder (Decoder._walk in decode.py), in C.
 *
 * Decoding turns every JSON object of a flow into Field objects, and walking
 * the parsed objects is the largest single cost of `privaudit analyze` in
 * Python. This module does the same walk: same Fields (all attributes), same
 * order, same bounds counters, the field budget (_Budget) raised at the same
 * field. It handles the common cases itself (exact dicts and lists, scalars,
 * strings that cannot be peeled further) and calls back into decode.py for
 * the rest: strings that might hold JSON/JWT/form/percent/hex/base64 (the
 * Python _string decides), the Field of a list (its items and JSON text),
 * "value" bags, dict/list/str subclasses, unusual scalars. It is optional:
 * built when privaudit is installed and a C compiler is there
 * (hatch_build.py), and decode.py walks in Python when it is missing or
 * PRIVAUDIT_PURE_PYTHON=1. Tests check both give equal Fields.
 *
 * configure(**names)   once, from decode.py: the Field class, the shape memo
 *                      and the Python helpers to call back into
 * raw_text(side, location, text, covers=())   RawText, built directly
 * count_controls(text)   len(decode._CONTROL.findall(text))
 * walk(decoder, obj, ctx, prefix, path, kpath, key, nkey, siblings, level=0)
 *                      Decoder._walk
 * string(decoder, s, ctx, loc, key, nkey, keypath=None, siblings=_NO_KEYS)
 *                      Decoder._string
 * needs_python(s), decoded(s)   (tests) how a str is judged here
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

/* set by configure() */
static PyObject *Field_cls;          /* privaudit.detect.decode.Field */
static Py_ssize_t field_off[9];      /* slot offsets, in Field's argument order */
static int field_direct;             /* fill the slots directly (else call the class) */
static PyObject *shapes;             /* decode._SHAPES (a dict) */
static PyObject *object_shape;       /* decode._object_shape */
static PyObject *scalar_fn;          /* decode._scalar */
static PyObject *budget_exc;         /* decode._Budget */
static PyObject *app_roles;          /* decode._APP_ROLES (a frozenset) */
static PyObject *py_walk;            /* Decoder._walk (the Python one) */
static PyObject *list_field;         /* Decoder._list_field */
static PyObject *py_string;          /* Decoder._string (the Python one) */
static PyObject *no_keys;            /* decode._NO_KEYS, _string's default siblings */
static PyObject *key_infos;          /* decode._KEY_INFO (a dict): key -> (nkey, step, keypath step) */
static PyObject *key_info;           /* decode._key_info */
static PyObject *json_text;          /* decode._JSON_TEXT */

/* interned strings */
static PyObject *s_true, *s_false, *s_value, *s_role, *s_Role, *s_list, *s_system, *s_nesting, *s_bounds_hit,
    *s_stats, *s_out, *s_bounds, *s_max_fields, *s_max_nesting, *s_side, *s_enc, *s_empty, *s_dollar_dot;

static PyObject *RawText_cls;        /* decode.RawText */
static Py_ssize_t raw_off[4];
static int raw_direct;
static PyObject *empty_tuple;
static const char *const raw_names[4] = {"side", "location", "text", "covers"};
static const char *const field_names[9] = {"side", "location", "encoding", "key", "nkey", "value", "keypath", "siblings", "items"};

typedef struct {
    PyObject *dec;   /* the Decoder (borrowed) */
    PyObject *ctx;   /* its _Ctx for this walk (borrowed) */
    PyObject *out;   /* decoder._out (owned) */
    PyObject *side;  /* ctx.side (owned) */
    PyObject *enc;   /* ctx.enc (owned) */
    Py_ssize_t max_fields, max_nesting;
} W;

static int walk_rec(W *w, PyObject *obj, PyObject *prefix, PyObject *path, PyObject *kpath, PyObject *key,
                    PyObject *nkey, PyObject *siblings, Py_ssize_t level);

/* a str's canonical form (only strings an old C API built lack it, 3.11) */
static inline int ready(PyObject *s)
{
#if PY_VERSION_HEX < 0x030C0000
    return PyUnicode_READY(s);
#else
    (void)s;
    return 0;
#endif
}

/* ------------------------------------------------------------------ fields */

/* An instance of ``cls`` (a slots class whose slot offsets configure() checked)
   with its n slots set to args, in order; slots past nargs get (). */
static PyObject *new_direct(PyObject *cls, const Py_ssize_t *off, int n, PyObject *const *args, Py_ssize_t nargs)
{
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *f = tp->tp_alloc(tp, 0);
    if (f == NULL)
        return NULL;
    for (int i = 0; i < n; i++)
        *(PyObject **)((char *)f + off[i]) = Py_NewRef(i < nargs ? args[i] : empty_tuple);
    return f;
}

static PyObject *new_field(W *w, PyObject *loc, PyObject *key, PyObject *nkey, PyObject *value, PyObject *keypath,
                           PyObject *siblings, PyObject *items)
{
    PyObject *args[9] = {w->side, loc, w->enc, key, nkey, value, keypath, siblings, items};
    if (field_direct)
        return new_direct(Field_cls, field_off, 9, args, 9);
    return PyObject_Vectorcall(Field_cls, args, 9, NULL);
}

/* _emit / the inline append of _walk: the budget check, then the Field */
static int emit_items(W *w, PyObject *loc, PyObject *key, PyObject *nkey, PyObject *value, PyObject *keypath,
                      PyObject *siblings, PyObject *items)
{
    PyObject *f;
    int rc;
    if (PyList_GET_SIZE(w->out) >= w->max_fields) {
        PyErr_SetNone(budget_exc);
        return -1;
    }
    f = new_field(w, loc, key, nkey, value, keypath, siblings, items);
    if (f == NULL)
        return -1;
    rc = PyList_Append(w->out, f);
    Py_DECREF(f);
    return rc;
}

static inline int emit(W *w, PyObject *loc, PyObject *key, PyObject *nkey, PyObject *value, PyObject *keypath,
                       PyObject *siblings)
{
    return emit_items(w, loc, key, nkey, value, keypath, siblings, Py_None);
}

/* self.stats["bounds_hit"]["nesting"] += 1 */
static int count_nesting(W *w)
{
    PyObject *stats, *hit = NULL, *cur = NULL, *one = NULL, *next = NULL;
    int rc = -1;
    stats = PyObject_GetAttr(w->dec, s_stats);
    if (stats == NULL)
        return -1;
    hit = PyObject_GetItem(stats, s_bounds_hit);
    if (hit == NULL)
        goto done;
    cur = PyObject_GetItem(hit, s_nesting);
    if (cur == NULL)
        goto done;
    one = PyLong_FromLong(1);
    if (one == NULL)
        goto done;
    next = PyNumber_InPlaceAdd(cur, one);
    if (next == NULL)
        goto done;
    rc = PyObject_SetItem(hit, s_nesting, next);
done:
    Py_DECREF(stats);
    Py_XDECREF(hit);
    Py_XDECREF(cur);
    Py_XDECREF(one);
    Py_XDECREF(next);
    return rc;
}

/* an int attribute as a Py_ssize_t (clamped); -1 with *ok = 0 if not an int */
static Py_ssize_t int_attr(PyObject *o, PyObject *name, int *ok)
{
    PyObject *v = PyObject_GetAttr(o, name);
    Py_ssize_t r;
    int overflow = 0;
    *ok = 0;
    if (v == NULL)
        return -1;
    if (!PyLong_CheckExact(v)) {
        Py_DECREF(v);
        return 0;
    }
    r = (Py_ssize_t)PyLong_AsLongLongAndOverflow(v, &overflow);
    Py_DECREF(v);
    if (r == -1 && PyErr_Occurred())
        return -1;
    if (overflow > 0 || (long long)r > (long long)PY_SSIZE_T_MAX)
        r = PY_SSIZE_T_MAX;
    else if (overflow < 0)
        r = PY_SSIZE_T_MIN;
    *ok = 1;
    return r;
}

/* --------------------------------------------------------------- strings */

static inline int is_hex(Py_UCS4 c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static inline int is_letter(Py_UCS4 c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* What Decoder._string does with s.strip() after emitting s (len(s) >= 8),
 * decided on the same tests:
 *   PEEL_PYTHON  it might decode it: json (first char { or [, last } or ]),
 *                jwt (starts "eyJ"), form ("=" and "&"), url ("%"): Python
 *   PEEL_HEX     _HEX matches: 16+ hex digits, an even number
 *   PEEL_B64     _B64 matches (12+ of [A-Za-z0-9+/_-], then at most two
 *                "="), and it is not all letters nor all digits (for such
 *                an ASCII string, exactly str.isalpha / str.isdigit)
 *   PEEL_NONE    nothing: _string only emits the Field
 * The superset tests (a "%" that _PCT would not match...) send a few strings
 * to Python for nothing, never the other way round. *a and *b bound the
 * stripped text. */
enum { PEEL_NONE, PEEL_PYTHON, PEEL_HEX, PEEL_B64 };

static int peel_class(PyObject *s, Py_ssize_t *pa, Py_ssize_t *pb)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(s), a = 0, b = n, i, core;
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    Py_UCS4 first, last;
    int eq = 0, amp = 0, hex = 1, alnum = 1, letters = 1, digits = 1;
    while (a < b && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, a)))
        a++;
    while (b > a && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, b - 1)))
        b--;
    *pa = a;
    *pb = b;
    if (a == b)
        return PEEL_NONE;
    first = PyUnicode_READ(kind, data, a);
    last = PyUnicode_READ(kind, data, b - 1);
    if ((first == '{' || first == '[') && (last == '}' || last == ']'))
        return PEEL_PYTHON;
    if (b - a >= 3 && first == 'e' && PyUnicode_READ(kind, data, a + 1) == 'y' && PyUnicode_READ(kind, data, a + 2) == 'J')
        return PEEL_PYTHON;
    /* the base64 core: the text before at most two trailing "=" */
    core = b;
    while (core > a && b - core < 2 && PyUnicode_READ(kind, data, core - 1) == '=')
        core--;
    for (i = a; i < b; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '%')
            return PEEL_PYTHON;
        if (c == '=')
            eq = 1;
        else if (c == '&')
            amp = 1;
        if (!is_hex(c))
            hex = 0;
        if (is_letter(c))
            digits = 0;
        else if (c >= '0' && c <= '9')
            letters = 0;
        else {
            letters = digits = 0;
            if (!(c == '+' || c == '/' || c == '_' || c == '-') && i < core)
                alnum = 0;
        }
    }
    if (eq && amp)
        return PEEL_PYTHON;
    if (hex && b - a >= 16 && (b - a) % 2 == 0)
        return PEEL_HEX;
    if (alnum && core - a >= 12 && !letters && !digits)
        return PEEL_B64;
    return PEEL_NONE;
}

static int hex_val(Py_UCS4 c)
{
    return c <= '9' ? (int)(c - '0') : (c <= 'F' ? (int)(c - 'A' + 10) : (int)(c - 'a' + 10));
}

static int b64_val(Py_UCS4 c)
{
    if (c >= 'A' && c <= 'Z')
        return (int)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (int)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (int)(c - '0' + 52);
    return (c == '+' || c == '-') ? 62 : 63; /* "/" or "_" */
}

/* The bytes _string would decode the text s[a:b] of class PEEL_HEX or
 * PEEL_B64 to (bytes.fromhex / _b64decode): a PyMem buffer in *out, its
 * length in *len; 0, or 1 when _b64decode gives None (no bytes), or -1 with
 * MemoryError. On a stripped _B64 match, _b64decode drops the trailing "=",
 * refuses a length of 1 mod 4, pads, and decodes: the text is all alphabet
 * characters then ("-_" read as "+/"), so either of its decoders gives the
 * standard decoding, extra bits of the last character ignored. */
static int decoded(PyObject *s, int cls, Py_ssize_t a, Py_ssize_t b, unsigned char **out, Py_ssize_t *len)
{
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    unsigned char *buf;
    Py_ssize_t i, n = 0;
    if (cls == PEEL_HEX) {
        buf = PyMem_Malloc((size_t)((b - a) / 2) + 1);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (i = a; i < b; i += 2)
            buf[n++] = (unsigned char)(hex_val(PyUnicode_READ(kind, data, i)) << 4 | hex_val(PyUnicode_READ(kind, data, i + 1)));
    } else {
        unsigned int acc = 0;
        int bits = 0;
        while (b > a && PyUnicode_READ(kind, data, b - 1) == '=')
            b--;
        if ((b - a) % 4 == 1)
            return 1;
        buf = PyMem_Malloc((size_t)((b - a) * 3 / 4) + 3);
        if (buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (i = a; i < b; i++) {
            acc = (acc << 6 | (unsigned int)b64_val(PyUnicode_READ(kind, data, i))) & 0xFFFFFF;
            bits += 6;
            if (bits >= 8) {
                bits -= 8;
                buf[n++] = (unsigned char)(acc >> bits);
            }
        }
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Whether data is well-formed UTF-8 (what bytes.decode("utf-8") accepts:
 * no overlong forms, no surrogates, nothing past U+10FFFF). */
static int utf8_ok(const unsigned char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            if (i + 1 >= n || (p[i + 1] & 0xC0) != 0x80)
                return 0;
            i += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
            if (i + 2 >= n || p[i + 1] < lo || p[i + 1] > hi || (p[i + 2] & 0xC0) != 0x80)
                return 0;
            i += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
            if (i + 3 >= n || p[i + 1] < lo || p[i + 1] > hi || (p[i + 2] & 0xC0) != 0x80 || (p[i + 3] & 0xC0) != 0x80)
                return 0;
            i += 4;
        } else
            return 0;
    }
    return 1;
}

/* Whether _decoded_bytes might do anything with data: it is compressed
 * (_inflate's zstd, gzip and zlib signatures) or UTF-8 text (which
 * _printable_text may accept); else it returns without a Field or a count. */
static int bytes_may_peel(const unsigned char *d, Py_ssize_t n)
{
    if (n >= 4 && d[0] == 0x28 && d[1] == 0xB5 && d[2] == 0x2F && d[3] == 0xFD)
        return 1;
    if (n >= 2 && d[0] == 0x1F && d[1] == 0x8B)
        return 1;
    if (n > 2 && d[0] == 0x78 && (d[1] == 0x01 || d[1] == 0x5E || d[1] == 0x9C || d[1] == 0xDA))
        return 1;
    return n > 0 && utf8_ok(d, n);
}

/* Whether Decoder._string (in Python) must see the exact str s: it might
 * emit more than s's own Field. 0, 1, or -1 with an exception. */
static int needs_python(PyObject *s)
{
    Py_ssize_t a, b, n;
    unsigned char *buf = NULL;
    int cls, r;
    if (ready(s) < 0)
        return -1;
    if (PyUnicode_GET_LENGTH(s) < 8)
        return 0;
    cls = peel_class(s, &a, &b);
    if (cls == PEEL_NONE || cls == PEEL_PYTHON)
        return cls == PEEL_PYTHON;
    r = decoded(s, cls, a, b, &buf, &n);
    if (r != 0)
        return r < 0 ? -1 : 0;
    r = bytes_may_peel(buf, n);
    PyMem_Free(buf);
    return r;
}

static PyObject *needs_python_py(PyObject *self, PyObject *arg)
{
    int r;
    (void)self;
    if (!PyUnicode_CheckExact(arg)) {
        PyErr_SetString(PyExc_TypeError, "needs_python() needs a str");
        return NULL;
    }
    r = needs_python(arg);
    return r < 0 ? NULL : PyBool_FromLong(r);
}

/* (tests) how s is classed: ("hex"|"base64", the bytes _string decodes it
 * to), None when _b64decode would give None, True for "Python decides",
 * False for "nothing to decode" (also for len(s) < 8) */
static PyObject *decoded_py(PyObject *self, PyObject *arg)
{
    Py_ssize_t a, b, n;
    unsigned char *buf = NULL;
    int cls, r;
    PyObject *out;
    (void)self;
    if (!PyUnicode_CheckExact(arg)) {
        PyErr_SetString(PyExc_TypeError, "decoded() needs a str");
        return NULL;
    }
    if (ready(arg) < 0)
        return NULL;
    if (PyUnicode_GET_LENGTH(arg) < 8)
        Py_RETURN_FALSE;
    cls = peel_class(arg, &a, &b);
    if (cls != PEEL_HEX && cls != PEEL_B64)
        return cls == PEEL_PYTHON ? Py_NewRef(Py_True) : Py_NewRef(Py_False);
    r = decoded(arg, cls, a, b, &buf, &n);
    if (r != 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    out = Py_BuildValue("(sy#)", cls == PEEL_HEX ? "hex" : "base64", (const char *)buf, n);
    PyMem_Free(buf);
    return out;
}

/* len(_CONTROL.findall(text)): _CONTROL is [\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd] */
static PyObject *count_controls(PyObject *self, PyObject *arg)
{
    Py_ssize_t n, i, count = 0;
    int kind;
    const void *data;
    (void)self;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "count_controls() needs a str");
        return NULL;
    }
    if (ready(arg) < 0)
        return NULL;
    n = PyUnicode_GET_LENGTH(arg);
    kind = PyUnicode_KIND(arg);
    data = PyUnicode_DATA(arg);
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *p = (const Py_UCS1 *)data;
        for (i = 0; i < n; i++) {
            Py_UCS1 c = p[i];
            count += (c < 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) || c == 0x7f;
        }
    } else {
        for (i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            count += (c < 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) || c == 0x7f || c == 0xfffd;
        }
    }
    return PyLong_FromSsize_t(count);
}

/* Decoder._string (the Python one)(decoder, s, ctx, loc, key, nkey, keypath, siblings) */
static int call_string(W *w, PyObject *s, PyObject *loc, PyObject *key, PyObject *nkey, PyObject *keypath,
                       PyObject *siblings)
{
    PyObject *args[8] = {w->dec, s, w->ctx, loc, key, nkey, keypath, siblings}, *r;
    r = PyObject_Vectorcall(py_string, args, 8, NULL);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* a str value: what _string does when it cannot decode it, else _string */
static int string_value(W *w, PyObject *s, PyObject *loc, PyObject *key, PyObject *nkey, PyObject *keypath,
                        PyObject *siblings)
{
    int py = PyUnicode_CheckExact(s) ? needs_python(s) : 1;
    if (py < 0)
        return -1;
    if (!py)
        return emit(w, loc, key, nkey, s, keypath, siblings);
    return call_string(w, s, loc, key, nkey, keypath, siblings);
}

/* Decoder._string(s, ctx, loc, key, nkey, keypath=None, siblings=_NO_KEYS)
 * for callers in Python: the Field of a str it cannot decode further, else
 * the Python _string (which emits it and decodes it). */
static PyObject *string(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0, i;
    PyObject *keypath = Py_None, *siblings = no_keys, *key, *nkey, *bounds = NULL, *kp = NULL;
    W w = {0};
    int py, ok, rc = -1;
    (void)self;
    if (py_string == NULL || nargs < 6 || nargs + nkw > 8 || !PyUnicode_CheckExact(args[1]))
        goto python;
    if (nargs > 6)
        keypath = args[6];
    if (nargs > 7)
        siblings = args[7];
    for (i = 0; i < nkw; i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        if (nargs <= 6 && PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "keypath") == 0)
            keypath = args[nargs + i];
        else if (nargs <= 7 && PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, "siblings") == 0)
            siblings = args[nargs + i];
        else
            goto python; /* let Python say what is wrong */
    }
    py = needs_python(args[1]);
    if (py < 0)
        return NULL;
    key = args[4];
    nkey = args[5];
    if (py || !PyUnicode_Check(key) || !PyUnicode_Check(nkey))
        goto python;
    if (keypath == Py_None) {
        /* (_bracket_path(key) if "[" in key else f"$.{nkey}") if nkey else "" */
        if (PyUnicode_GET_LENGTH(nkey) == 0)
            kp = Py_NewRef(s_empty);
        else {
            Py_ssize_t at = PyUnicode_FindChar(key, '[', 0, PyUnicode_GET_LENGTH(key), 1);
            if (at == -2)
                return NULL;
            if (at >= 0)
                goto python;
            kp = PyUnicode_Concat(s_dollar_dot, nkey);
            if (kp == NULL)
                return NULL;
        }
        keypath = kp;
    }
    w.dec = args[0];
    w.ctx = args[2];
    bounds = PyObject_GetAttr(w.dec, s_bounds);
    if (bounds == NULL)
        goto done;
    w.max_fields = int_attr(bounds, s_max_fields, &ok);
    Py_DECREF(bounds);
    if (!ok) {
        if (PyErr_Occurred())
            goto done;
        Py_XDECREF(kp);
        goto python;
    }
    w.out = PyObject_GetAttr(w.dec, s_out);
    if (w.out == NULL)
        goto done;
    if (!PyList_Check(w.out)) {
        Py_DECREF(w.out);
        Py_XDECREF(kp);
        goto python;
    }
    w.side = PyObject_GetAttr(w.ctx, s_side);
    w.enc = w.side ? PyObject_GetAttr(w.ctx, s_enc) : NULL;
    if (w.enc != NULL)
        rc = emit(&w, args[3], key, nkey, args[1], keypath, siblings);
    Py_DECREF(w.out);
    Py_XDECREF(w.side);
    Py_XDECREF(w.enc);
done:
    Py_XDECREF(kp);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
python:
    if (py_string == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "privaudit _walk: configure() was not called");
        return NULL;
    }
    return PyObject_Vectorcall(py_string, args, nargsf, kwnames);
}

/* _emit(ctx, loc, key, nkey, _scalar(v), keypath, siblings) for a value that
 * is neither None, str, dict nor list */
static int scalar_value(W *w, PyObject *v, PyObject *loc, PyObject *key, PyObject *nkey, PyObject *keypath,
                        PyObject *siblings)
{
    PyObject *text;
    int rc;
    if (v == Py_True)
        text = Py_NewRef(s_true);
    else if (v == Py_False)
        text = Py_NewRef(s_false);
    else if (PyLong_CheckExact(v) || PyFloat_CheckExact(v))
        text = PyObject_Str(v);
    else
        text = PyObject_CallOneArg(scalar_fn, v);
    if (text == NULL)
        return -1;
    rc = emit(w, loc, key, nkey, text, keypath, siblings);
    Py_DECREF(text);
    return rc;
}

/* ------------------------------------------------------------------- walk */

static int call_py(PyObject *fn, W *w, PyObject *obj, PyObject *prefix, PyObject *path, PyObject *kpath,
                   PyObject *key, PyObject *nkey, PyObject *siblings, Py_ssize_t level, int with_level)
{
    PyObject *lv = NULL, *r;
    PyObject *args[10] = {w->dec, obj, w->ctx, prefix, path, kpath, key, nkey, siblings, NULL};
    if (with_level) {
        lv = PyLong_FromSsize_t(level);
        if (lv == NULL)
            return -1;
        args[9] = lv;
    }
    r = PyObject_Vectorcall(fn, args, with_level ? 10 : 9, NULL);
    Py_XDECREF(lv);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

static inline PyObject *concat(PyObject *a, PyObject *b)
{
    return PyUnicode_Concat(a, b);
}

static int walk_dict(W *w, PyObject *obj, PyObject *prefix, PyObject *path, PyObject *kpath, PyObject *key,
                     PyObject *nkey, PyObject *siblings, Py_ssize_t level)
{
    Py_ssize_t n = PyDict_GET_SIZE(obj), pos, i;
    PyObject *shape, *known, *infos, *keys, *k, *v, *here = NULL;
    int rc = -1, truth;

    /* a "value" bag ({"device_model": {"value": "SM-S918N"}}): Python */
    truth = PyObject_IsTrue(key);
    if (truth < 0)
        return -1;
    if (truth && n <= 3) {
        v = PyDict_GetItemWithError(obj, s_value);
        if (v == NULL && PyErr_Occurred())
            return -1;
        if (v != NULL && !PyDict_Check(v) && !PyList_Check(v))
            return call_py(py_walk, w, obj, prefix, path, kpath, key, nkey, siblings, level, 1);
    }

    shape = PyTuple_New(n);
    if (shape == NULL)
        return -1;
    pos = 0;
    i = 0;
    while (PyDict_Next(obj, &pos, &k, &v)) {
        if (i >= n) { /* cannot happen: nothing runs between */
            Py_DECREF(shape);
            PyErr_SetString(PyExc_RuntimeError, "dictionary changed size during iteration");
            return -1;
        }
        PyTuple_SET_ITEM(shape, i, Py_NewRef(k));
        i++;
    }
    known = PyDict_GetItemWithError(shapes, shape);
    if (known != NULL)
        Py_INCREF(known);
    else if (PyErr_Occurred()) {
        Py_DECREF(shape);
        return -1;
    } else {
        known = PyObject_CallOneArg(object_shape, shape);
        if (known == NULL) {
            Py_DECREF(shape);
            return -1;
        }
    }
    Py_DECREF(shape);
    if (!PyTuple_Check(known) || PyTuple_GET_SIZE(known) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(known, 0)) ||
        PyTuple_GET_SIZE(PyTuple_GET_ITEM(known, 0)) != n) {
        PyErr_SetString(PyExc_SystemError, "privaudit _walk: unexpected object shape");
        goto done;
    }
    infos = PyTuple_GET_ITEM(known, 0);
    keys = PyTuple_GET_ITEM(known, 1);
    for (i = 0; i < n; i++) {
        PyObject *info = PyTuple_GET_ITEM(infos, i);
        if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) != 4 || !PyUnicode_Check(PyTuple_GET_ITEM(info, 2)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(info, 3))) {
            PyErr_SetString(PyExc_SystemError, "privaudit _walk: unexpected key info");
            goto done;
        }
    }
    level += 1;
    if (level > w->max_nesting) {
        /* every value is one walk past the bound */
        for (i = 0; i < n; i++)
            if (count_nesting(w) < 0)
                goto done;
        rc = 0;
        goto done;
    }
    here = concat(prefix, path);
    if (here == NULL)
        goto done;
    pos = 0;
    i = 0;
    while (i < n && PyDict_Next(obj, &pos, &k, &v)) {
        PyObject *info = PyTuple_GET_ITEM(infos, i);
        PyObject *ik = PyTuple_GET_ITEM(info, 0), *nk = PyTuple_GET_ITEM(info, 1);
        PyObject *step = PyTuple_GET_ITEM(info, 2), *kstep = PyTuple_GET_ITEM(info, 3);
        PyObject *a = NULL, *b = NULL;
        int r;
        i++;
        if (v == Py_None)
            continue;
        Py_INCREF(v);
        if (PyDict_Check(v) || PyList_Check(v)) {
            a = concat(path, step);
            b = a ? concat(kpath, kstep) : NULL;
            r = b ? walk_rec(w, v, prefix, a, b, ik, nk, keys, level) : -1;
        } else {
            a = concat(here, step);
            b = a ? concat(kpath, kstep) : NULL;
            if (b == NULL)
                r = -1;
            else if (PyUnicode_Check(v))
                r = string_value(w, v, a, ik, nk, b, keys);
            else
                r = scalar_value(w, v, a, ik, nk, b, keys);
        }
        Py_DECREF(v);
        Py_XDECREF(a);
        Py_XDECREF(b);
        if (r < 0)
            goto done;
    }
    rc = 0;
done:
    Py_XDECREF(here);
    Py_DECREF(known);
    return rc;
}

/* step of a list item: "[system]" for {"role": "system"|"developer"} (or "Role") */
static PyObject *item_step(PyObject *v)
{
    PyObject *role;
    int truth, sys;
    if (!PyDict_Check(v))
        return Py_NewRef(s_list);
    if (PyDict_CheckExact(v)) {
        role = PyDict_GetItemWithError(v, s_role);
        if (role == NULL && PyErr_Occurred())
            return NULL;
        Py_XINCREF(role);
    } else {
        role = PyObject_CallMethod(v, "get", "O", s_role);
        if (role == NULL)
            return NULL;
    }
    truth = role == NULL ? 0 : PyObject_IsTrue(role);
    if (truth < 0) {
        Py_DECREF(role);
        return NULL;
    }
    if (!truth) {
        Py_XDECREF(role);
        if (PyDict_CheckExact(v)) {
            role = PyDict_GetItemWithError(v, s_Role);
            if (role == NULL && PyErr_Occurred())
                return NULL;
            role = role == NULL ? Py_NewRef(Py_None) : Py_NewRef(role);
        } else {
            role = PyObject_CallMethod(v, "get", "O", s_Role);
            if (role == NULL)
                return NULL;
        }
    }
    /* (a str test first: a list as the role is unhashable) */
    sys = PyUnicode_Check(role) ? PySet_Contains(app_roles, role) : 0;
    Py_DECREF(role);
    if (sys < 0)
        return NULL;
    return Py_NewRef(sys ? s_system : s_list);
}

/* an item's (or an item's value's) text in a list Field's items:
 * v if type(v) is str else _scalar(v) */
static PyObject *item_text(PyObject *v)
{
    if (PyUnicode_CheckExact(v))
        return Py_NewRef(v);
    if (v == Py_None)
        return Py_NewRef(s_empty);
    if (v == Py_True)
        return Py_NewRef(s_true);
    if (v == Py_False)
        return Py_NewRef(s_false);
    if (PyLong_CheckExact(v) || PyFloat_CheckExact(v))
        return PyObject_Str(v);
    if (PyDict_CheckExact(v) || PyList_CheckExact(v))
        return PyObject_CallOneArg(json_text, v);
    return PyObject_CallOneArg(scalar_fn, v);
}

/* _key_info(k)[0] (str(k) for a key that is not a str) */
static PyObject *item_nkey(PyObject *k)
{
    PyObject *info, *nk;
    if (PyUnicode_CheckExact(k)) {
        info = PyDict_GetItemWithError(key_infos, k);
        if (info != NULL)
            Py_INCREF(info);
        else if (PyErr_Occurred())
            return NULL;
        else
            info = PyObject_CallOneArg(key_info, k);
    } else {
        PyObject *ks = PyObject_Str(k);
        if (ks == NULL)
            return NULL;
        info = PyObject_CallOneArg(key_info, ks);
        Py_DECREF(ks);
    }
    if (info == NULL)
        return NULL;
    if (!PyTuple_Check(info) || PyTuple_GET_SIZE(info) < 1) {
        Py_DECREF(info);
        PyErr_SetString(PyExc_SystemError, "privaudit _walk: unexpected key info");
        return NULL;
    }
    nk = Py_NewRef(PyTuple_GET_ITEM(info, 0));
    Py_DECREF(info);
    return nk;
}

/* Decoder._list_field: the Field of a non-empty list, with its items (each
 * a str, or a dict nkey -> str). 1 when an item is a dict subclass (whose
 * items() Python must call): nothing was emitted. */
static int list_field_c(W *w, PyObject *obj, PyObject *prefix, PyObject *path, PyObject *kpath, PyObject *key,
                        PyObject *nkey, PyObject *siblings)
{
    Py_ssize_t n = PyList_GET_SIZE(obj), i;
    PyObject *items = PyTuple_New(n), *loc = NULL, *text = NULL, *cut = NULL;
    int rc = -1;
    if (items == NULL)
        return -1;
    for (i = 0; i < n; i++) {
        PyObject *it = PyList_GET_ITEM(obj, i), *t;
        if (PyDict_Check(it)) {
            PyObject *k, *v;
            Py_ssize_t pos = 0;
            if (!PyDict_CheckExact(it)) {
                rc = 1;
                goto done;
            }
            t = PyDict_New();
            if (t == NULL)
                goto done;
            PyTuple_SET_ITEM(items, i, t);
            Py_INCREF(it);
            while (PyDict_Next(it, &pos, &k, &v)) {
                PyObject *nk, *vt;
                int r;
                Py_INCREF(k);
                Py_INCREF(v);
                nk = item_nkey(k);
                vt = nk ? item_text(v) : NULL;
                r = vt ? PyDict_SetItem(t, nk, vt) : -1;
                Py_DECREF(k);
                Py_DECREF(v);
                Py_XDECREF(nk);
                Py_XDECREF(vt);
                if (r < 0) {
                    Py_DECREF(it);
                    goto done;
                }
            }
            Py_DECREF(it);
        } else {
            Py_INCREF(it);
            t = item_text(it);
            Py_DECREF(it);
            if (t == NULL)
                goto done;
            PyTuple_SET_ITEM(items, i, t);
        }
        if (PyList_GET_SIZE(obj) != n) {
            PyErr_SetString(PyExc_RuntimeError, "list changed size during iteration");
            goto done;
        }
    }
    loc = concat(prefix, path);
    text = loc ? PyObject_CallOneArg(json_text, obj) : NULL;
    cut = text ? PyUnicode_Substring(text, 0, 4096) : NULL;
    if (cut != NULL)
        rc = emit_items(w, loc, key, nkey, cut, kpath, siblings, items);
done:
    Py_DECREF(items);
    Py_XDECREF(loc);
    Py_XDECREF(text);
    Py_XDECREF(cut);
    return rc;
}

static int walk_list(W *w, PyObject *obj, PyObject *prefix, PyObject *path, PyObject *kpath, PyObject *key,
                     PyObject *nkey, PyObject *siblings, Py_ssize_t level)
{
    Py_ssize_t i;
    if (PyList_GET_SIZE(obj) > 0) {
        int r = list_field_c(w, obj, prefix, path, kpath, key, nkey, siblings);
        if (r > 0)
            r = call_py(list_field, w, obj, prefix, path, kpath, key, nkey, siblings, 0, 0);
        if (r < 0)
            return -1;
    }
    for (i = 0; i < PyList_GET_SIZE(obj); i++) {
        PyObject *v = Py_NewRef(PyList_GET_ITEM(obj, i));
        PyObject *step = item_step(v), *p = NULL, *kp = NULL;
        int r = -1;
        if (step != NULL) {
            p = PyUnicode_FromFormat("%U[%zd]", path, i);
            kp = p ? concat(kpath, step) : NULL;
            if (kp != NULL)
                r = walk_rec(w, v, prefix, p, kp, key, nkey, siblings, level + 1);
        }
        Py_DECREF(v);
        Py_XDECREF(step);
        Py_XDECREF(p);
        Py_XDECREF(kp);
        if (r < 0)
            return -1;
    }
    return 0;
}

static int walk_rec(W *w, PyObject *obj, PyObject *prefix, PyObject *path, PyObject *kpath, PyObject *key,
                    PyObject *nkey, PyObject *siblings, Py_ssize_t level)
{
    PyObject *loc;
    int rc;
    if (level > w->max_nesting)
        return count_nesting(w);
    if (PyDict_CheckExact(obj) || PyList_CheckExact(obj)) {
        if (Py_EnterRecursiveCall(" in privaudit's JSON walk"))
            return -1;
        if (PyDict_CheckExact(obj))
            rc = walk_dict(w, obj, prefix, path, kpath, key, nkey, siblings, level);
        else
            rc = walk_list(w, obj, prefix, path, kpath, key, nkey, siblings, level);
        Py_LeaveRecursiveCall();
        return rc;
    }
    if (PyDict_Check(obj) || PyList_Check(obj)) /* subclasses: Python */
        return call_py(py_walk, w, obj, prefix, path, kpath, key, nkey, siblings, level, 1);
    if (obj == Py_None)
        return 0;
    loc = concat(prefix, path);
    if (loc == NULL)
        return -1;
    if (PyUnicode_Check(obj))
        rc = string_value(w, obj, loc, key, nkey, kpath, siblings);
    else
        rc = scalar_value(w, obj, loc, key, nkey, kpath, siblings);
    Py_DECREF(loc);
    return rc;
}

static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    W w = {0};
    PyObject *bounds;
    Py_ssize_t level = 0;
    int ok1, ok2, rc;
    (void)self;
    if (Field_cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "privaudit _walk: configure() was not called");
        return NULL;
    }
    if (nargs != 9 && nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "walk(decoder, obj, ctx, prefix, path, kpath, key, nkey, siblings, level=0)");
        return NULL;
    }
    /* anything this walk does not expect is walked in Python */
    for (int i = 3; i <= 5; i++) /* prefix, path, kpath: concatenated */
        if (!PyUnicode_Check(args[i]))
            goto python;
    if (nargs == 10) {
        if (!PyLong_CheckExact(args[9]))
            goto python;
        level = PyLong_AsSsize_t(args[9]);
        if (level == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            goto python;
        }
    }
    w.dec = args[0];
    w.ctx = args[2];
    bounds = PyObject_GetAttr(w.dec, s_bounds);
    if (bounds == NULL)
        return NULL;
    w.max_fields = int_attr(bounds, s_max_fields, &ok1);
    w.max_nesting = ok1 ? int_attr(bounds, s_max_nesting, &ok2) : (ok2 = 0);
    Py_DECREF(bounds);
    if (PyErr_Occurred())
        return NULL;
    if (!ok1 || !ok2)
        goto python;
    w.out = PyObject_GetAttr(w.dec, s_out);
    if (w.out == NULL)
        return NULL;
    if (!PyList_Check(w.out)) {
        Py_DECREF(w.out);
        goto python;
    }
    rc = -1;
    w.side = PyObject_GetAttr(w.ctx, s_side);
    w.enc = w.side ? PyObject_GetAttr(w.ctx, s_enc) : NULL;
    if (w.enc != NULL)
        rc = walk_rec(&w, args[1], args[3], args[4], args[5], args[6], args[7], args[8], level);
    Py_DECREF(w.out);
    Py_XDECREF(w.side);
    Py_XDECREF(w.enc);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
python:
    return PyObject_Vectorcall(py_walk, args, nargs, NULL);
}

/* --------------------------------------------------------------- configure */

static int set_ref(PyObject **slot, PyObject *kwargs, const char *name)
{
    PyObject *v = PyDict_GetItemString(kwargs, name);
    if (v == NULL) {
        PyErr_Format(PyExc_TypeError, "configure() needs %s=", name);
        return -1;
    }
    Py_XSETREF(*slot, Py_NewRef(v));
    return 0;
}

/* Whether Field's nine attributes are plain object slots of the class,
 * filled in that order by its __init__ and nothing else (the dataclass
 * decode.py defines): then a Field is built by filling them directly. The
 * caller (decode.py) checks the Python side: no __post_init__, __new__ is
 * object's, __init__ the dataclass's. */
static int check_slots(PyObject *cls, const char *const *names, int n, Py_ssize_t *off)
{
    PyTypeObject *tp = (PyTypeObject *)cls;
    if (!PyType_Check(cls) || tp->tp_dictoffset != 0 || tp->tp_itemsize != 0 || tp->tp_alloc == NULL)
        return 0;
    for (int i = 0; i < n; i++) {
        PyObject *d = PyObject_GetAttrString(cls, names[i]);
        PyMemberDef *m;
        if (d == NULL) {
            PyErr_Clear();
            return 0;
        }
        if (!Py_IS_TYPE(d, &PyMemberDescr_Type) || ((PyMemberDescrObject *)d)->d_common.d_type != tp) {
            Py_DECREF(d);
            return 0;
        }
        m = ((PyMemberDescrObject *)d)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY) || m->offset <= 0 ||
            (size_t)m->offset + sizeof(PyObject *) > (size_t)tp->tp_basicsize) {
            Py_DECREF(d);
            return 0;
        }
        off[i] = m->offset;
        Py_DECREF(d);
    }
    return 1;
}

/* RawText(side, location, text, covers=()) */
static PyObject *raw_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (RawText_cls == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "privaudit _walk: configure() was not called");
        return NULL;
    }
    if (raw_direct && (nargs == 3 || nargs == 4))
        return new_direct(RawText_cls, raw_off, 4, args, nargs);
    return PyObject_Vectorcall(RawText_cls, args, nargs, NULL);
}

static PyObject *configure(PyObject *self, PyObject *args, PyObject *kwargs)
{
    PyObject *direct;
    (void)self;
    if (PyTuple_GET_SIZE(args) != 0 || kwargs == NULL) {
        PyErr_SetString(PyExc_TypeError, "configure() takes keyword arguments");
        return NULL;
    }
    if (set_ref(&Field_cls, kwargs, "Field") < 0 || set_ref(&shapes, kwargs, "shapes") < 0 ||
        set_ref(&object_shape, kwargs, "object_shape") < 0 || set_ref(&scalar_fn, kwargs, "scalar") < 0 ||
        set_ref(&budget_exc, kwargs, "budget") < 0 || set_ref(&app_roles, kwargs, "app_roles") < 0 ||
        set_ref(&py_walk, kwargs, "py_walk") < 0 || set_ref(&list_field, kwargs, "list_field") < 0 ||
        set_ref(&py_string, kwargs, "py_string") < 0 || set_ref(&no_keys, kwargs, "no_keys") < 0 ||
        set_ref(&key_infos, kwargs, "key_infos") < 0 || set_ref(&key_info, kwargs, "key_info") < 0 ||
        set_ref(&json_text, kwargs, "json_text") < 0)
        return NULL;
    if (!PyDict_CheckExact(shapes) || !PyDict_CheckExact(key_infos) || !PyAnySet_Check(app_roles)) {
        PyErr_SetString(PyExc_TypeError, "configure(): shapes must be a dict, app_roles a set");
        return NULL;
    }
    direct = PyDict_GetItemString(kwargs, "direct");
    field_direct = direct != NULL && PyObject_IsTrue(direct) == 1 && check_slots(Field_cls, field_names, 9, field_off);
    if (set_ref(&RawText_cls, kwargs, "RawText") < 0)
        return NULL;
    direct = PyDict_GetItemString(kwargs, "raw_direct");
    raw_direct = direct != NULL && PyObject_IsTrue(direct) == 1 && check_slots(RawText_cls, raw_names, 4, raw_off);
    return Py_BuildValue("(OO)", field_direct ? Py_True : Py_False, raw_direct ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL, "Decoder._walk (see decode.py)."},
    {"string", (PyCFunction)(void (*)(void))string, METH_FASTCALL | METH_KEYWORDS, "Decoder._string (see decode.py)."},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_VARARGS | METH_KEYWORDS,
     "Names the Field class and the Python helpers; returns whether Fields are built directly."},
    {"raw_text", (PyCFunction)(void (*)(void))raw_text, METH_FASTCALL, "RawText(side, location, text, covers=())."},
    {"count_controls", count_controls, METH_O, "len(_CONTROL.findall(text)) (see decode._printable_text)."},
    {"needs_python", needs_python_py, METH_O, "Whether Decoder._string might emit more than this str's own Field."},
    {"decoded", decoded_py, METH_O, "(tests) how this str is classed and decoded here (see peel_class)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walk", "The JSON walk of privaudit's decoder (see decode.py).", -1, methods, NULL, NULL, NULL, NULL,
};

#define INTERN(var, text)                                                                                              \
    do {                                                                                                               \
        if ((var = PyUnicode_InternFromString(text)) == NULL)                                                          \
            return NULL;                                                                                               \
    } while (0)

PyMODINIT_FUNC PyInit__walk(void)
{
    INTERN(s_true, "true");
    INTERN(s_false, "false");
    INTERN(s_value, "value");
    INTERN(s_role, "role");
    INTERN(s_Role, "Role");
    INTERN(s_list, "[]");
    INTERN(s_system, "[system]");
    INTERN(s_nesting, "nesting");
    INTERN(s_bounds_hit, "bounds_hit");
    INTERN(s_stats, "stats");
    INTERN(s_out, "_out");
    INTERN(s_bounds, "bounds");
    INTERN(s_max_fields, "max_fields");
    INTERN(s_max_nesting, "max_nesting");
    INTERN(s_side, "side");
    INTERN(s_enc, "enc");
    INTERN(s_empty, "");
    if ((empty_tuple = PyTuple_New(0)) == NULL)
        return NULL;
    INTERN(s_dollar_dot, "$.");
    return PyModule_Create(&module);
}
