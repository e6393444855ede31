/* The call gate in C: ``_gate.CallGate`` (the reference, in Python, whose docstring gives the
 * rules) with the same methods, state and locks.
 *
 * Every membrane call enters and leaves its callee's gate and suspends and resumes its
 * caller's; in Python those four methods cost more than the call's four journal records do
 * in C (``benchmarks/bench_membrane.py``). Here each is a few lock calls. The locks are
 * ``_thread`` locks, called through their own ``acquire`` and ``release``, so a call that
 * waits for one releases the interpreter lock as it would in Python; between those calls the
 * interpreter lock makes each step atomic, as it does for the reference's statements.
 * ``tests/test_units.py`` and ``tests/test_interleave.py`` run the gate's tests on both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *chain_lock;  /* held by one chain from its first entry to its last exit */
    PyObject *token;       /* held by whichever level of that chain is running */
    PyObject *chain_acquire, *chain_release, *chain_locked;
    PyObject *token_acquire, *token_release;
    PyObject *chain;       /* the chain inside, or None */
    Py_ssize_t depth;
    int interleaving;
} CallGate;

static PyObject *allocate_lock; /* _thread.allocate_lock */

static int
call_lock(PyObject *method)
{
    PyObject *done = PyObject_CallNoArgs(method);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

static int
CallGate_init(CallGate *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "CallGate() takes no arguments");
        return -1;
    }
    PyObject *chain_lock = PyObject_CallNoArgs(allocate_lock);
    PyObject *token = chain_lock == NULL ? NULL : PyObject_CallNoArgs(allocate_lock);
    if (token == NULL) {
        Py_XDECREF(chain_lock);
        return -1;
    }
    Py_XSETREF(self->chain_lock, chain_lock);
    Py_XSETREF(self->token, token);
    Py_XSETREF(self->chain_acquire, PyObject_GetAttrString(chain_lock, "acquire"));
    Py_XSETREF(self->chain_release, PyObject_GetAttrString(chain_lock, "release"));
    Py_XSETREF(self->chain_locked, PyObject_GetAttrString(chain_lock, "locked"));
    Py_XSETREF(self->token_acquire, PyObject_GetAttrString(token, "acquire"));
    Py_XSETREF(self->token_release, PyObject_GetAttrString(token, "release"));
    if (!self->chain_acquire || !self->chain_release || !self->chain_locked
        || !self->token_acquire || !self->token_release) {
        return -1;
    }
    Py_XSETREF(self->chain, Py_NewRef(Py_None));
    self->depth = 0;
    self->interleaving = 0;
    return 0;
}

static int
CallGate_traverse(CallGate *self, visitproc visit, void *arg)
{
    Py_VISIT(self->chain_lock);
    Py_VISIT(self->token);
    Py_VISIT(self->chain_acquire);
    Py_VISIT(self->chain_release);
    Py_VISIT(self->chain_locked);
    Py_VISIT(self->token_acquire);
    Py_VISIT(self->token_release);
    Py_VISIT(self->chain);
    return 0;
}

static int
CallGate_clear(CallGate *self)
{
    Py_CLEAR(self->chain_lock);
    Py_CLEAR(self->token);
    Py_CLEAR(self->chain_acquire);
    Py_CLEAR(self->chain_release);
    Py_CLEAR(self->chain_locked);
    Py_CLEAR(self->token_acquire);
    Py_CLEAR(self->token_release);
    Py_CLEAR(self->chain);
    return 0;
}

static void
CallGate_dealloc(CallGate *self)
{
    PyObject_GC_UnTrack(self);
    CallGate_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Whether ``chain`` is the chain inside (the reference's ``self._chain == chain``). */
static int
same_chain(CallGate *self, PyObject *chain)
{
    if (self->chain == chain) {
        return 1;
    }
    return PyObject_RichCompareBool(self->chain, chain, Py_EQ);
}

static PyObject *
CallGate_enter(CallGate *self, PyObject *chain)
{
    if (self->interleaving) {
        if (call_lock(self->token_acquire) < 0) {
            return NULL;
        }
        self->depth += 1;
        Py_RETURN_NONE;
    }
    if (self->depth) {
        int same = same_chain(self, chain);
        if (same < 0) {
            return NULL;
        }
        if (same) {
            if (call_lock(self->token_acquire) < 0) {
                return NULL;
            }
            same = self->depth ? same_chain(self, chain) : 0;
            if (same < 0) {
                call_lock(self->token_release);
                return NULL;
            }
            if (same) {
                self->depth += 1;
                Py_RETURN_NONE;
            }
            if (call_lock(self->token_release) < 0) { /* the chain left: wait like any other */
                return NULL;
            }
        }
    }
    if (call_lock(self->chain_acquire) < 0) {
        return NULL;
    }
    if (call_lock(self->token_acquire) < 0) {
        call_lock(self->chain_release);
        return NULL;
    }
    Py_INCREF(chain);
    Py_SETREF(self->chain, chain);
    self->depth = 1;
    Py_RETURN_NONE;
}

static PyObject *
CallGate_exit(CallGate *self, PyObject *unused)
{
    self->depth -= 1;
    if (self->depth) {
        if (call_lock(self->token_release) < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    Py_SETREF(self->chain, Py_NewRef(Py_None));
    if (call_lock(self->token_release) < 0) {
        return NULL;
    }
    int release = !self->interleaving;
    if (!release) {
        PyObject *locked = PyObject_CallNoArgs(self->chain_locked);
        if (locked == NULL) {
            return NULL;
        }
        release = PyObject_IsTrue(locked);
        Py_DECREF(locked);
        if (release < 0) {
            return NULL;
        }
    }
    if (release && call_lock(self->chain_release) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
CallGate_interleave(CallGate *self, PyObject *unused)
{
    self->interleaving = 1;
    Py_RETURN_NONE;
}

static PyObject *
CallGate_held(CallGate *self, PyObject *unused)
{
    return PyBool_FromLong(self->depth > 0);
}

static PyObject *
CallGate_alone(CallGate *self, PyObject *unused)
{
    return PyBool_FromLong(self->depth <= 1);
}

static PyObject *
CallGate_suspend(CallGate *self, PyObject *unused)
{
    if (call_lock(self->token_release) < 0) {
        return NULL;
    }
    return Py_NewRef(self->token);
}

static PyObject *
CallGate_resume(CallGate *self, PyObject *unused)
{
    if (call_lock(self->token_acquire) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef CallGate_methods[] = {
    {"enter", (PyCFunction)CallGate_enter, METH_O, "enter(chain): a call on chain comes in."},
    {"exit", (PyCFunction)CallGate_exit, METH_NOARGS, "exit(): the call inside leaves."},
    {"interleave", (PyCFunction)CallGate_interleave, METH_NOARGS,
     "interleave(): from now on, let another chain's call run while one waits in a call out."},
    {"held", (PyCFunction)CallGate_held, METH_NOARGS, "held() -> bool: a call is inside."},
    {"alone", (PyCFunction)CallGate_alone, METH_NOARGS,
     "alone() -> bool: at most one call is inside, none waiting in a call out."},
    {"suspend", (PyCFunction)CallGate_suspend, METH_NOARGS,
     "suspend() -> lock: the running level waits in a call out; the lock's acquire is\n"
     "resume."},
    {"resume", (PyCFunction)CallGate_resume, METH_NOARGS,
     "resume(): the call out returned; wait for the token."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef CallGate_members[] = {
    {"interleaving", T_BOOL, offsetof(CallGate, interleaving), READONLY,
     "Whether another chain's call may run while one waits in a call out."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot CallGate_slots[] = {
    {Py_tp_doc, "CallGate()\n\nOne call at a time per service (``_gate.CallGate``'s rules)."},
    {Py_tp_init, CallGate_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, CallGate_dealloc},
    {Py_tp_traverse, CallGate_traverse},
    {Py_tp_clear, CallGate_clear},
    {Py_tp_methods, CallGate_methods},
    {Py_tp_members, CallGate_members},
    {0, NULL},
};

static PyType_Spec CallGate_spec = {
    .name = "distdev.service._callgate.CallGate",
    .basicsize = sizeof(CallGate),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = CallGate_slots,
};

static int
callgate_exec(PyObject *module)
{
    if (allocate_lock == NULL) {
        PyObject *thread = PyImport_ImportModule("_thread");
        if (thread == NULL) {
            return -1;
        }
        allocate_lock = PyObject_GetAttrString(thread, "allocate_lock");
        Py_DECREF(thread);
        if (allocate_lock == NULL) {
            return -1;
        }
    }
    PyObject *type = PyType_FromModuleAndSpec(module, &CallGate_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int added = PyModule_AddObjectRef(module, "CallGate", type);
    Py_DECREF(type);
    return added;
}

static PyModuleDef_Slot callgate_slots[] = {
    {Py_mod_exec, callgate_exec},
    {0, NULL},
};

static struct PyModuleDef callgate_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "distdev.service._callgate",
    .m_doc = "The call gate in C (service._gate.CallGate's rules, on the hot path).",
    .m_size = 0,
    .m_slots = callgate_slots,
};

PyMODINIT_FUNC
PyInit__callgate(void)
{
    return PyModuleDef_Init(&callgate_module);
}
