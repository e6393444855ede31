/* The CBOR encoding of the common wire values, in C: ``membrane.dumps`` and
 * ``membrane.plain_call_copy`` on the hot path.
 *
 * ``Encoder(fallback, tag_type, first_own_tag, not_plain)`` holds what the Python side
 * defines once (``_values.py``): the encoder of every other value, cbor2's tag type, the first
 * of distdev's own tags and the exception that says a value is not plain data.
 *
 * * ``encode(value)``: the bytes of ``value``, as ``_values._encode`` (the reference) writes
 *   them — exact ints within 64 bits, str, bytes, float, bool, None, lists, tuples, dicts and
 *   distdev's own tags of them. Anything else anywhere inside (a bignum, a subclass, another
 *   tag, a str with lone surrogates, nesting deeper than ``MAX_DEPTH``) hands the whole value
 *   to ``fallback``, which encodes everything.
 * * ``plain_call_copy(args, kwargs)``: ``(a copy of args as a list, a copy of kwargs, their
 *   encodings joined)`` for plain data (exact scalars, and lists and dicts of plain data whose
 *   keys are scalars: ``_values.plain_copy``'s rule), ``not_plain`` raised for anything else,
 *   or None for plain data this encoder leaves to the reference (a bignum, a lone surrogate).
 *
 * Written in C because the two encodings of a membrane call (its arguments once for both
 * journals, its result once) cost more in Python than the call's four records do in C
 * (``benchmarks/bench_membrane.py``). ``tests/test_membrane_cbor.py`` checks the bytes against
 * the reference and cbor2 over random values.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_cbor_head.h"

#define MAX_DEPTH 200

enum { DONE = 0, FAILED = -1, UNHANDLED = 1, NOT_PLAIN = 2 };

/* -- the output ------------------------------------------------------------------------ */

typedef struct {
    char *data;
    Py_ssize_t size;
    Py_ssize_t capacity;
    char inline_space[512];
} Out;

static void
out_init(Out *out)
{
    out->data = out->inline_space;
    out->size = 0;
    out->capacity = (Py_ssize_t)sizeof(out->inline_space);
}

static void
out_free(Out *out)
{
    if (out->data != out->inline_space) {
        PyMem_Free(out->data);
    }
}

static int
out_reserve(Out *out, Py_ssize_t more)
{
    if (out->size + more <= out->capacity) {
        return DONE;
    }
    Py_ssize_t capacity = out->capacity * 2;
    while (capacity < out->size + more) {
        capacity *= 2;
    }
    char *data;
    if (out->data == out->inline_space) {
        data = PyMem_Malloc((size_t)capacity);
        if (data != NULL) {
            memcpy(data, out->data, (size_t)out->size);
        }
    } else {
        data = PyMem_Realloc(out->data, (size_t)capacity);
    }
    if (data == NULL) {
        PyErr_NoMemory();
        return FAILED;
    }
    out->data = data;
    out->capacity = capacity;
    return DONE;
}

static int
out_put(Out *out, const char *bytes, Py_ssize_t n)
{
    if (out_reserve(out, n) < 0) {
        return FAILED;
    }
    memcpy(out->data + out->size, bytes, (size_t)n);
    out->size += n;
    return DONE;
}

/* A CBOR initial byte and its argument (``_cbor_head.h``), appended to ``out``. */
static int
out_head(Out *out, unsigned char major, uint64_t n)
{
    if (out_reserve(out, 9) < 0) {
        return FAILED;
    }
    out->size += cbor_head((unsigned char *)out->data + out->size, major, n);
    return DONE;
}

/* -- the encoder ----------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    PyObject *fallback;
    PyObject *tag_type;
    PyObject *first_own_tag;
    PyObject *not_plain;
} Encoder;

static int
encode_int(Out *out, PyObject *value)
{
    int overflow;
    long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (n == -1 && PyErr_Occurred()) {
        return FAILED;
    }
    if (!overflow) {
        return n >= 0 ? out_head(out, 0x00, (uint64_t)n)
                      : out_head(out, 0x20, (uint64_t)(-(n + 1)));
    }
    if (overflow > 0) {
        unsigned long long u = PyLong_AsUnsignedLongLong(value);
        if (u == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return UNHANDLED; /* 2**64 or more: cbor2's bignum tag */
        }
        return out_head(out, 0x00, u);
    }
    PyObject *inverted = PyNumber_Invert(value); /* -1 - n */
    if (inverted == NULL) {
        return FAILED;
    }
    unsigned long long u = PyLong_AsUnsignedLongLong(inverted);
    Py_DECREF(inverted);
    if (u == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return UNHANDLED;
    }
    return out_head(out, 0x20, u);
}

static int
encode_str(Out *out, PyObject *value)
{
    if (PyUnicode_IS_COMPACT_ASCII(value)) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(value);
        if (out_head(out, 0x60, (uint64_t)n) < 0) {
            return FAILED;
        }
        return out_put(out, (const char *)PyUnicode_1BYTE_DATA(value), n);
    }
    PyObject *utf8 = PyUnicode_AsUTF8String(value); /* not cached in the str, unlike AsUTF8 */
    if (utf8 == NULL) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            return UNHANDLED; /* lone surrogates: the reference escapes them */
        }
        return FAILED;
    }
    int status = out_head(out, 0x60, (uint64_t)PyBytes_GET_SIZE(utf8));
    if (status == DONE) {
        status = out_put(out, PyBytes_AS_STRING(utf8), PyBytes_GET_SIZE(utf8));
    }
    Py_DECREF(utf8);
    return status;
}

static int
encode_float(Out *out, PyObject *value)
{
    double d = PyFloat_AS_DOUBLE(value);
    if (isnan(d)) {
        return out_put(out, "\xf9\x7e\x00", 3); /* every NaN, as cbor2 writes it */
    }
    if (isinf(d)) {
        return out_put(out, d > 0 ? "\xf9\x7c\x00" : "\xf9\xfc\x00", 3);
    }
    char packed[9];
    packed[0] = (char)0xfb;
    if (PyFloat_Pack8(d, packed + 1, 0) < 0) {
        return FAILED;
    }
    return out_put(out, packed, 9);
}

/* The scalars plain data is made of, as ``_values._SCALARS`` lists them. */
static int
is_scalar(PyObject *value)
{
    PyTypeObject *t = Py_TYPE(value);
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type
           || t == &PyBool_Type || value == Py_None || t == &PyBytes_Type;
}

static int
encode_scalar(Out *out, PyObject *value)
{
    PyTypeObject *t = Py_TYPE(value);
    if (t == &PyLong_Type) {
        return encode_int(out, value);
    }
    if (t == &PyUnicode_Type) {
        return encode_str(out, value);
    }
    if (t == &PyFloat_Type) {
        return encode_float(out, value);
    }
    if (value == Py_None) {
        return out_put(out, "\xf6", 1);
    }
    if (t == &PyBool_Type) {
        return out_put(out, value == Py_True ? "\xf5" : "\xf4", 1);
    }
    if (t == &PyBytes_Type) {
        if (out_head(out, 0x40, (uint64_t)PyBytes_GET_SIZE(value)) < 0) {
            return FAILED;
        }
        return out_put(out, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    }
    return UNHANDLED;
}

static int
encode_value(Encoder *self, Out *out, PyObject *value, int depth)
{
    if (depth > MAX_DEPTH) {
        return UNHANDLED;
    }
    PyTypeObject *t = Py_TYPE(value);
    if (t == &PyList_Type || t == &PyTuple_Type) {
        Py_ssize_t n = Py_SIZE(value);
        if (out_head(out, 0x80, (uint64_t)n) < 0) {
            return FAILED;
        }
        for (Py_ssize_t i = 0; i < Py_SIZE(value); i++) { /* a list's size read each time */
            PyObject *item = t == &PyList_Type ? PyList_GET_ITEM(value, i)
                                               : PyTuple_GET_ITEM(value, i);
            Py_INCREF(item);
            int status = encode_value(self, out, item, depth + 1);
            Py_DECREF(item);
            if (status != DONE) {
                return status;
            }
        }
        return DONE;
    }
    if (t == &PyDict_Type) {
        if (out_head(out, 0xA0, (uint64_t)PyDict_GET_SIZE(value)) < 0) {
            return FAILED;
        }
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            int status = encode_value(self, out, key, depth + 1);
            if (status == DONE) {
                status = encode_value(self, out, item, depth + 1);
            }
            if (status != DONE) {
                return status;
            }
        }
        return DONE;
    }
    if ((PyObject *)t == self->tag_type) {
        PyObject *tag = PyObject_GetAttrString(value, "tag");
        if (tag == NULL) {
            return FAILED;
        }
        int own = PyLong_CheckExact(tag)
                  ? PyObject_RichCompareBool(tag, self->first_own_tag, Py_GE) : 0;
        if (own <= 0) {
            Py_DECREF(tag);
            return own < 0 ? FAILED : UNHANDLED; /* cbor2's own tags: cbor2 encodes them */
        }
        unsigned long long number = PyLong_AsUnsignedLongLong(tag);
        Py_DECREF(tag);
        if (number == (unsigned long long)-1 && PyErr_Occurred()) {
            PyErr_Clear();
            return UNHANDLED;
        }
        if (out_head(out, 0xC0, number) < 0) {
            return FAILED;
        }
        PyObject *inner = PyObject_GetAttrString(value, "value");
        if (inner == NULL) {
            return FAILED;
        }
        int status = encode_value(self, out, inner, depth + 1);
        Py_DECREF(inner);
        return status;
    }
    return encode_scalar(out, value);
}

static PyObject *
Encoder_encode(Encoder *self, PyObject *value)
{
    Out out;
    out_init(&out);
    int status = encode_value(self, &out, value, 0);
    PyObject *result = NULL;
    if (status == DONE) {
        result = PyBytes_FromStringAndSize(out.data, out.size);
    } else if (status == UNHANDLED) {
        result = PyObject_CallOneArg(self->fallback, value);
    }
    out_free(&out);
    return result;
}

/* ``plain_copy(value)`` with its encoding written to ``out``: a new reference, or NULL with
 * ``*status`` saying why (FAILED: an exception is set; NOT_PLAIN; UNHANDLED: plain, but
 * left to the reference's encoder). */
static PyObject *
plain_walk(Out *out, PyObject *value, int depth, int *status)
{
    if (depth > MAX_DEPTH) {
        *status = NOT_PLAIN; /* the reference's RecursionError, which callers read so */
        return NULL;
    }
    if (is_scalar(value)) {
        *status = encode_scalar(out, value);
        if (*status != DONE) {
            return NULL;
        }
        Py_INCREF(value);
        return value;
    }
    PyTypeObject *t = Py_TYPE(value);
    if (t == &PyList_Type) {
        Py_ssize_t n = PyList_GET_SIZE(value);
        PyObject *copy = PyList_New(n);
        if (copy == NULL || out_head(out, 0x80, (uint64_t)n) < 0) {
            Py_XDECREF(copy);
            *status = FAILED;
            return NULL;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *item = plain_walk(out, PyList_GET_ITEM(value, i), depth + 1, status);
            if (item == NULL) {
                Py_DECREF(copy);
                return NULL;
            }
            PyList_SET_ITEM(copy, i, item);
        }
        return copy;
    }
    if (t == &PyDict_Type) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            if (!is_scalar(key)) {
                *status = NOT_PLAIN;
                return NULL;
            }
        }
        PyObject *copy = PyDict_New();
        if (copy == NULL || out_head(out, 0xA0, (uint64_t)PyDict_GET_SIZE(value)) < 0) {
            Py_XDECREF(copy);
            *status = FAILED;
            return NULL;
        }
        pos = 0;
        while (PyDict_Next(value, &pos, &key, &item)) {
            *status = encode_scalar(out, key);
            if (*status != DONE) {
                Py_DECREF(copy);
                return NULL;
            }
            PyObject *copied = plain_walk(out, item, depth + 1, status);
            if (copied == NULL || PyDict_SetItem(copy, key, copied) < 0) {
                if (copied != NULL) {
                    *status = FAILED;
                }
                Py_XDECREF(copied);
                Py_DECREF(copy);
                return NULL;
            }
            Py_DECREF(copied);
        }
        return copy;
    }
    *status = NOT_PLAIN;
    return NULL;
}

static PyObject *
Encoder_plain_call_copy(Encoder *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !(PyTuple_Check(args[0]) || PyList_Check(args[0]))
        || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "plain_call_copy(args, kwargs): a tuple or list, a dict");
        return NULL;
    }
    PyObject *listed = PySequence_List(args[0]);
    if (listed == NULL) {
        return NULL;
    }
    Out out;
    out_init(&out);
    int status = DONE;
    PyObject *copied = plain_walk(&out, listed, 0, &status);
    Py_DECREF(listed);
    PyObject *kwargs_copied = copied == NULL ? NULL : plain_walk(&out, args[1], 0, &status);
    PyObject *result = NULL;
    if (kwargs_copied != NULL) {
        PyObject *encoded = PyBytes_FromStringAndSize(out.data, out.size);
        if (encoded != NULL) {
            result = PyTuple_Pack(3, copied, kwargs_copied, encoded);
            Py_DECREF(encoded);
        }
    } else if (status == NOT_PLAIN) {
        PyErr_SetNone(self->not_plain);
    } else if (status == UNHANDLED) {
        result = Py_NewRef(Py_None);
    }
    Py_XDECREF(copied);
    Py_XDECREF(kwargs_copied);
    out_free(&out);
    return result;
}

static int
Encoder_init(Encoder *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"fallback", "tag_type", "first_own_tag", "not_plain", NULL};
    PyObject *fallback, *tag_type, *first_own_tag, *not_plain;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOO", names, &fallback, &tag_type,
                                     &first_own_tag, &not_plain)) {
        return -1;
    }
    Py_XSETREF(self->fallback, Py_NewRef(fallback));
    Py_XSETREF(self->tag_type, Py_NewRef(tag_type));
    Py_XSETREF(self->first_own_tag, Py_NewRef(first_own_tag));
    Py_XSETREF(self->not_plain, Py_NewRef(not_plain));
    return 0;
}

static int
Encoder_traverse(Encoder *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->fallback);
    Py_VISIT(self->tag_type);
    Py_VISIT(self->first_own_tag);
    Py_VISIT(self->not_plain);
    return 0;
}

static int
Encoder_clear(Encoder *self)
{
    Py_CLEAR(self->fallback);
    Py_CLEAR(self->tag_type);
    Py_CLEAR(self->first_own_tag);
    Py_CLEAR(self->not_plain);
    return 0;
}

static void
Encoder_dealloc(Encoder *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Encoder_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type: each instance holds a reference to it */
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)Encoder_encode, METH_O,
     "encode(value) -> bytes\n\nThe CBOR bytes of a wire value."},
    {"plain_call_copy", (PyCFunction)(void (*)(void))Encoder_plain_call_copy, METH_FASTCALL,
     "plain_call_copy(args, kwargs) -> (list, dict, bytes) | None\n\n"
     "A copy of a call's plain arguments and their encoding; not_plain for others; None\n"
     "for plain data left to the reference's encoder."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Encoder_slots[] = {
    {Py_tp_doc, "Encoder(fallback, tag_type, first_own_tag, not_plain)\n\n"
                "The CBOR encoding of the common wire values."},
    {Py_tp_init, Encoder_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Encoder_dealloc},
    {Py_tp_traverse, Encoder_traverse},
    {Py_tp_clear, Encoder_clear},
    {Py_tp_methods, Encoder_methods},
    {0, NULL},
};

static PyType_Spec Encoder_spec = {
    .name = "distdev.membrane._cbor.Encoder",
    .basicsize = sizeof(Encoder),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = Encoder_slots,
};

static int
cbor_exec(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &Encoder_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int added = PyModule_AddObjectRef(module, "Encoder", type);
    Py_DECREF(type);
    return added;
}

static PyModuleDef_Slot cbor_slots[] = {
    {Py_mod_exec, cbor_exec},
    {0, NULL},
};

static struct PyModuleDef cbor_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "distdev.membrane._cbor",
    .m_doc = "The CBOR encoding of the common wire values, in C (membrane.dumps's hot path).",
    .m_size = 0,
    .m_slots = cbor_slots,
};

PyMODINIT_FUNC
PyInit__cbor(void)
{
    return PyModuleDef_Init(&cbor_module);
}
