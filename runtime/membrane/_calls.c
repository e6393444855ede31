/* A proxy's export, called in C: ``_proxy.ExportCallBase`` (the reference, in Python).
 *
 * ``ExportCallBase(proxy, export, send)`` keeps the proxy, the export's name and what a call
 * runs, ``send(args, kwargs)`` (the router's ``bind`` for it, or its ``call``). Calling it
 * hands the call's own argument tuple and keyword dict to ``send``: the call a service makes
 * to another costs no Python frame of its own before the router's. ``_proxy._ExportCall``
 * subclasses it to refuse every attribute, as the proxy does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *proxy;
    PyObject *export;
    PyObject *send;
} ExportCallBase;

static int
ExportCallBase_init(ExportCallBase *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"proxy", "export", "send", NULL};
    PyObject *proxy, *export, *send;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OUO", names, &proxy, &export, &send)) {
        return -1;
    }
    if (!PyCallable_Check(send)) {
        PyErr_SetString(PyExc_TypeError, "ExportCallBase: send must be callable");
        return -1;
    }
    Py_XSETREF(self->proxy, Py_NewRef(proxy));
    Py_XSETREF(self->export, Py_NewRef(export));
    Py_XSETREF(self->send, Py_NewRef(send));
    return 0;
}

static PyObject *
ExportCallBase_call(ExportCallBase *self, PyObject *args, PyObject *kwargs)
{
    if (self->send == NULL) {
        PyErr_SetString(PyExc_TypeError, "an export call that was never bound");
        return NULL;
    }
    PyObject *given = kwargs != NULL ? Py_NewRef(kwargs) : PyDict_New();
    if (given == NULL) {
        return NULL;
    }
    PyObject *stack[2] = {args, given};
    PyObject *result = PyObject_Vectorcall(self->send, stack, 2, NULL);
    Py_DECREF(given);
    return result;
}

static int
ExportCallBase_traverse(ExportCallBase *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->proxy);
    Py_VISIT(self->export);
    Py_VISIT(self->send);
    return 0;
}

static int
ExportCallBase_clear(ExportCallBase *self)
{
    Py_CLEAR(self->proxy);
    Py_CLEAR(self->export);
    Py_CLEAR(self->send);
    return 0;
}

static void
ExportCallBase_dealloc(ExportCallBase *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    ExportCallBase_clear(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type);
}

static PyMemberDef ExportCallBase_members[] = {
    {"_proxy", T_OBJECT, offsetof(ExportCallBase, proxy), READONLY, "The export's proxy."},
    {"_export", T_OBJECT, offsetof(ExportCallBase, export), READONLY, "The export's name."},
    {"_send", T_OBJECT, offsetof(ExportCallBase, send), READONLY,
     "What a call runs: send(args, kwargs)."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot ExportCallBase_slots[] = {
    {Py_tp_doc, "ExportCallBase(proxy, export, send)\n\n"
                "A proxy's export; calling it runs send(args, kwargs)."},
    {Py_tp_init, ExportCallBase_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_call, ExportCallBase_call},
    {Py_tp_dealloc, ExportCallBase_dealloc},
    {Py_tp_traverse, ExportCallBase_traverse},
    {Py_tp_clear, ExportCallBase_clear},
    {Py_tp_members, ExportCallBase_members},
    {0, NULL},
};

static PyType_Spec ExportCallBase_spec = {
    .name = "distdev.membrane._calls.ExportCallBase",
    .basicsize = sizeof(ExportCallBase),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
    .slots = ExportCallBase_slots,
};

static int
calls_exec(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &ExportCallBase_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int added = PyModule_AddObjectRef(module, "ExportCallBase", type);
    Py_DECREF(type);
    return added;
}

static PyModuleDef_Slot calls_slots[] = {
    {Py_mod_exec, calls_exec},
    {0, NULL},
};

static struct PyModuleDef calls_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "distdev.membrane._calls",
    .m_doc = "A proxy's export, called in C (membrane._proxy.ExportCallBase's twin).",
    .m_size = 0,
    .m_slots = calls_slots,
};

PyMODINIT_FUNC
PyInit__calls(void)
{
    return PyModuleDef_Init(&calls_module);
}
