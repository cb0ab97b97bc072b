/*
 * A tnetstring parser for mitmproxy flow records, in C.
 *
 * privaudit/source/fast.py reads flow records in Python; this module does the
 * same parse (same values, same refusals as ValueError) about twenty times
 * faster. It is optional: built when privaudit is installed and a C compiler
 * is there (hatch_build.py), and fast.py uses the Python parser when it is
 * missing. The input is attacker-controlled (a capture of a hostile app, or a
 * crafted file), so every length is checked against the bytes that remain,
 * nesting is bounded, and any malformed record is a ValueError, never a crash.
 *
 * loads(data: bytes) -> object     one whole tnetstring; ValueError if malformed
 * pick(data: bytes, spec: dict) -> dict
 *     a tnetstring dict, keeping only the keys spec names (bytes keys; the
 *     value True keeps the whole value, a dict keeps its keys recursively);
 *     other values are skipped by their length prefix, never built
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 100
#define MAX_DIGITS 12

static PyObject *parse_value(const char *buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t *next, int depth);

static PyObject *fail(const char *what, Py_ssize_t pos)
{
    PyErr_Format(PyExc_ValueError, "not a tnetstring: %s at %zd", what, pos);
    return NULL;
}

/* Reads "<digits>:" at pos; sets *start (first payload byte) and *stop (the
 * type tag's index, checked to lie before end). Returns 0, or -1 with an
 * exception set. */
static int header(const char *buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t *start, Py_ssize_t *stop)
{
    Py_ssize_t i = pos, n = 0;
    int digits = 0;
    while (i < end && digits <= MAX_DIGITS && buf[i] >= '0' && buf[i] <= '9') {
        n = n * 10 + (buf[i] - '0');
        i++;
        digits++;
    }
    if (digits == 0 || digits > MAX_DIGITS || i >= end || buf[i] != ':') {
        fail("missing length prefix", pos);
        return -1;
    }
    *start = i + 1;
    /* the payload and its one-byte tag must fit before end */
    if (n >= end - *start) {
        fail("length runs past the data", pos);
        return -1;
    }
    *stop = *start + n;
    return 0;
}

static PyObject *number(const char *p, Py_ssize_t n, int is_float, Py_ssize_t pos)
{
    char small[64];
    if (!is_float && n > 0 && n <= 18) { /* the common case: plain decimal digits, optional '-' */
        Py_ssize_t i = (p[0] == '-') ? 1 : 0;
        long long v = 0;
        if (i < n) {
            for (; i < n && p[i] >= '0' && p[i] <= '9'; i++)
                v = v * 10 + (p[i] - '0');
            if (i == n)
                return PyLong_FromLongLong(p[0] == '-' ? -v : v);
        }
    }
    if (is_float && n > 0 && n < (Py_ssize_t)sizeof(small)) {
        char *endp = NULL;
        double d;
        memcpy(small, p, (size_t)n);
        small[n] = '\0';
        d = PyOS_string_to_double(small, &endp, NULL);
        if (endp == small + n && !(d == -1.0 && PyErr_Occurred()))
            return PyFloat_FromDouble(d);
        PyErr_Clear(); /* an unusual spelling: let float() decide, as the Python parser does */
    }
    char *s = small;
    PyObject *out;
    if (n >= (Py_ssize_t)sizeof(small)) {
        s = PyMem_Malloc((size_t)n + 1);
        if (s == NULL)
            return PyErr_NoMemory();
    }
    memcpy(s, p, (size_t)n);
    s[n] = '\0';
    if ((Py_ssize_t)strlen(s) != n) { /* an embedded NUL */
        out = fail("invalid number", pos);
    } else if (is_float) {
        PyObject *b = PyBytes_FromStringAndSize(s, n);
        out = b ? PyFloat_FromString(b) : NULL;
        Py_XDECREF(b);
    } else {
        PyObject *b = PyBytes_FromStringAndSize(s, n);
        out = b ? PyNumber_Long(b) : NULL;
        Py_XDECREF(b);
    }
    if (s != small)
        PyMem_Free(s);
    return out; /* int()/float() raise ValueError on bad text, as the Python parser does */
}

static PyObject *parse_value(const char *buf, Py_ssize_t pos, Py_ssize_t end, Py_ssize_t *next, int depth)
{
    Py_ssize_t start, stop, n;
    char tag;
    if (depth > MAX_DEPTH)
        return fail("nested too deeply", pos);
    if (header(buf, pos, end, &start, &stop) < 0)
        return NULL;
    n = stop - start;
    tag = buf[stop];
    *next = stop + 1;
    switch (tag) {
    case ',':
        return PyBytes_FromStringAndSize(buf + start, n);
    case ';':
        return PyUnicode_DecodeUTF8(buf + start, n, "strict");
    case '#':
        return number(buf + start, n, 0, pos);
    case '^':
        return number(buf + start, n, 1, pos);
    case '~':
        if (n != 0)
            return fail("invalid null literal", pos);
        Py_RETURN_NONE;
    case '!':
        if (n == 4 && memcmp(buf + start, "true", 4) == 0)
            Py_RETURN_TRUE;
        if (n == 5 && memcmp(buf + start, "false", 5) == 0)
            Py_RETURN_FALSE;
        return fail("invalid boolean literal", pos);
    case ']': {
        PyObject *list = PyList_New(0);
        Py_ssize_t p = start;
        if (list == NULL)
            return NULL;
        while (p < stop) {
            PyObject *item = parse_value(buf, p, stop, &p, depth + 1);
            if (item == NULL || PyList_Append(list, item) < 0) {
                Py_XDECREF(item);
                Py_DECREF(list);
                return NULL;
            }
            Py_DECREF(item);
        }
        return list;
    }
    case '}': {
        PyObject *dict = PyDict_New();
        Py_ssize_t p = start;
        if (dict == NULL)
            return NULL;
        while (p < stop) {
            PyObject *key = parse_value(buf, p, stop, &p, depth + 1);
            PyObject *value;
            if (key == NULL) {
                Py_DECREF(dict);
                return NULL;
            }
            if (p >= stop) {
                Py_DECREF(key);
                Py_DECREF(dict);
                return fail("dict key without a value", p);
            }
            value = parse_value(buf, p, stop, &p, depth + 1);
            if (value == NULL || PyDict_SetItem(dict, key, value) < 0) {
                Py_DECREF(key);
                Py_XDECREF(value);
                Py_DECREF(dict);
                if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* an unhashable key */
                    PyErr_Clear();
                    return fail("unhashable dict key", pos);
                }
                return NULL;
            }
            Py_DECREF(key);
            Py_DECREF(value);
        }
        return dict;
    }
    default:
        return fail("unknown type tag", stop);
    }
}

/* The spec value for a key (borrowed), or NULL: spec keys are bytes. */
static PyObject *spec_get(PyObject *spec, const char *key, Py_ssize_t n)
{
    PyObject *k, *v;
    Py_ssize_t i = 0;
    while (PyDict_Next(spec, &i, &k, &v)) {
        if (PyBytes_Check(k) && PyBytes_GET_SIZE(k) == n && memcmp(PyBytes_AS_STRING(k), key, (size_t)n) == 0)
            return v;
    }
    return NULL;
}

static PyObject *pick_dict(const char *buf, Py_ssize_t start, Py_ssize_t stop, PyObject *spec, int depth)
{
    PyObject *dict;
    Py_ssize_t p = start;
    if (depth > MAX_DEPTH)
        return fail("nested too deeply", start);
    dict = PyDict_New();
    if (dict == NULL)
        return NULL;
    while (p < stop) {
        Py_ssize_t ks, kstop, vpos, vs, vstop, after;
        PyObject *want, *key, *value;
        char ktag;
        if (header(buf, p, stop, &ks, &kstop) < 0)
            goto error;
        ktag = buf[kstop];
        vpos = kstop + 1;
        if (vpos >= stop) {
            fail("dict key without a value", vpos);
            goto error;
        }
        if (header(buf, vpos, stop, &vs, &vstop) < 0)
            goto error;
        after = vstop + 1;
        if (ktag != ';' && ktag != ',') {
            /* not a string key: parse it as the Python parser would (it may be refused) */
            Py_ssize_t dummy;
            PyObject *k = parse_value(buf, p, stop, &dummy, depth + 1);
            if (k == NULL)
                goto error;
            if (PyList_Check(k) || PyDict_Check(k)) {
                Py_DECREF(k);
                fail("unhashable dict key", p);
                goto error;
            }
            Py_DECREF(k);
            want = NULL;
        } else {
            want = spec_get(spec, buf + ks, kstop - ks);
            if (want == NULL && ktag == ';') { /* a key is text: refuse bad UTF-8 even where it is skipped */
                Py_ssize_t i;
                for (i = ks; i < kstop && !(buf[i] & 0x80); i++)
                    ;
                if (i < kstop) {
                    PyObject *k = PyUnicode_DecodeUTF8(buf + ks, kstop - ks, "strict");
                    if (k == NULL)
                        goto error;
                    Py_DECREF(k);
                }
            }
        }
        if (want != NULL) {
            key = (ktag == ';') ? PyUnicode_DecodeUTF8(buf + ks, kstop - ks, "strict")
                                : PyBytes_FromStringAndSize(buf + ks, kstop - ks);
            if (key == NULL)
                goto error;
            if (PyDict_Check(want) && buf[vstop] == '}') {
                value = pick_dict(buf, vs, vstop, want, depth + 1);
            } else {
                Py_ssize_t dummy;
                value = parse_value(buf, vpos, stop, &dummy, depth + 1);
            }
            if (value == NULL || PyDict_SetItem(dict, key, value) < 0) {
                Py_DECREF(key);
                Py_XDECREF(value);
                goto error;
            }
            Py_DECREF(key);
            Py_DECREF(value);
        }
        p = after;
    }
    return dict;
error:
    Py_DECREF(dict);
    return NULL;
}

static PyObject *pick(PyObject *self, PyObject *args)
{
    Py_buffer view;
    PyObject *spec, *out = NULL;
    Py_ssize_t start, stop;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*O!", &view, &PyDict_Type, &spec))
        return NULL;
    if (header((const char *)view.buf, 0, view.len, &start, &stop) < 0) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (((const char *)view.buf)[stop] != '}' || stop + 1 != view.len)
        out = fail("not a tnetstring dict", 0);
    else
        out = pick_dict((const char *)view.buf, start, stop, spec, 0);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *loads(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    Py_ssize_t next = 0;
    PyObject *out;
    (void)self;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    out = parse_value((const char *)view.buf, 0, view.len, &next, 0);
    if (out != NULL && next != view.len) {
        Py_DECREF(out);
        out = fail("trailing data", next);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyMethodDef methods[] = {
    {"loads", loads, METH_O, "Parses one whole tnetstring; ValueError if it is malformed."},
    {"pick", pick, METH_VARARGS, "Parses a tnetstring dict keeping only the keys a spec names (see the module comment)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tnet", "A tnetstring parser for flow records (see fast.py).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__tnet(void)
{
    return PyModule_Create(&module);
}
