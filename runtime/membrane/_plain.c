/* Whether a value is plain data that ``msgspec.json`` writes exactly as ``json.dumps`` does:
 * the test ``_digest`` runs before it takes msgspec's ten-times-faster encoder for a global's
 * digest form (a digest must read the same whichever encoder made it, in every release).
 *
 * Plain is, of exact types only (a subclass may encode otherwise): None, True, False, an int
 * of 64 bits (a longer one may pass the digits ``int`` converts to text), a str, a list or
 * tuple of plain values, a dict of str keys and plain values, and a finite float whose magnitude is 0 or in [1e-4, 1e16) — where Python's repr and msgspec write the
 * same digits; outside it repr writes an exponent with a sign and two digits ("1e+16",
 * "1e-05") and msgspec does not. Deeper than ``MAX_DEPTH`` is not plain: there ``json.dumps``
 * may meet the recursion limit (and the digest takes its bounded walk), which msgspec does not
 * have; a cycle is not plain for the same reason. A str holding a lone surrogate passes here,
 * and msgspec refuses it (the digest then takes ``json.dumps``).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>

#define MAX_DEPTH 64

static int
plain(PyObject *value, int depth)
{
    if (value == Py_None || value == Py_True || value == Py_False || PyUnicode_CheckExact(value)) {
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long unused = PyLong_AsLongLongAndOverflow(value, &overflow);
        (void)unused;
        return !overflow;
    }
    if (PyFloat_CheckExact(value)) {
        double magnitude = fabs(PyFloat_AS_DOUBLE(value));
        return magnitude == 0.0 || (magnitude >= 1e-4 && magnitude < 1e16);
    }
    if (depth >= MAX_DEPTH) {
        return 0;
    }
    if (PyList_CheckExact(value)) {
        /* The GIL is held throughout and nothing here runs Python code: the list cannot
         * change under the loop. */
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            if (!plain(PyList_GET_ITEM(value, i), depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    if (PyTuple_CheckExact(value)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(value); i++) {
            if (!plain(PyTuple_GET_ITEM(value, i), depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    if (PyDict_CheckExact(value)) {
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            if (!PyUnicode_CheckExact(key) || !plain(item, depth + 1)) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}

static PyObject *
is_plain(PyObject *module, PyObject *value)
{
    return PyBool_FromLong(plain(value, 0));
}

static PyMethodDef plain_methods[] = {
    {"is_plain", is_plain, METH_O,
     "Whether msgspec.json writes value exactly as json.dumps(value, separators=(',', ':'), "
     "ensure_ascii=False) does (see the module's comment)."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot plain_slots[] = {
    {0, NULL},
};

static struct PyModuleDef plain_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "distdev.membrane._plain",
    .m_doc = "Plain data that msgspec.json and json.dumps write alike (state digests).",
    .m_size = 0,
    .m_methods = plain_methods,
    .m_slots = plain_slots,
};

PyMODINIT_FUNC
PyInit__plain(void)
{
    return PyModuleDef_Init(&plain_module);
}
