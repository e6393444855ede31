/* The call gate in C: ``_gate.CallGate`` (the reference, in Python, whose docstring gives the
 * rules) with the same methods and state.
 *
 * Every membrane call enters and leaves its callee's gate and suspends and resumes its
 * caller's; in Python those four methods cost more than the call's four journal records do
 * in C (``benchmarks/bench_membrane.py``). Here each is a few lock operations on the
 * interpreter's own thread locks, taken as ``_thread``'s locks take them: first without
 * waiting, then, if another thread holds it, waiting with the interpreter lock released, and
 * running signal handlers when a signal interrupts the wait (so Ctrl-C stops a call that waits
 * at a gate, as it would in Python). Between those, the interpreter lock makes each step
 * atomic, as it does for the reference's statements. ``tests/test_units.py`` and
 * ``tests/test_interleave.py`` run the gate's tests on both.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyThread_type_lock chain_lock; /* held by one chain from its first entry to its last exit */
    PyThread_type_lock token;      /* held by whichever level of that chain is running */
    int chain_locked;              /* whether chain_lock is held (a thread lock cannot say) */
    PyObject *chain;               /* the chain inside, or None */
    Py_ssize_t depth;
    char interleaving;
} CallGate;

/* Take ``lock``, waiting for it with the interpreter lock released; -1 with an exception set
 * if a signal handler raised while waiting (the lock is then not taken). */
static int
acquire(PyThread_type_lock lock)
{
    if (PyThread_acquire_lock_timed(lock, 0, 0) == PY_LOCK_ACQUIRED) {
        return 0;
    }
    PyLockStatus status;
    do {
        Py_BEGIN_ALLOW_THREADS
        status = PyThread_acquire_lock_timed(lock, -1, 1);
        Py_END_ALLOW_THREADS
        if (status == PY_LOCK_INTR && Py_MakePendingCalls() < 0) {
            return -1;
        }
    } while (status != PY_LOCK_ACQUIRED);
    return 0;
}

static int
CallGate_init(CallGate *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) || (kwargs != NULL && PyDict_GET_SIZE(kwargs))) {
        PyErr_SetString(PyExc_TypeError, "CallGate() takes no arguments");
        return -1;
    }
    if (self->chain_lock == NULL) {
        self->chain_lock = PyThread_allocate_lock();
        self->token = PyThread_allocate_lock();
        if (self->chain_lock == NULL || self->token == NULL) {
            PyErr_SetString(PyExc_MemoryError, "cannot allocate a call gate's locks");
            return -1;
        }
    }
    Py_XSETREF(self->chain, Py_NewRef(Py_None));
    self->depth = 0;
    self->interleaving = 0;
    return 0;
}

static int
CallGate_traverse(CallGate *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->chain);
    return 0;
}

static int
CallGate_clear(CallGate *self)
{
    Py_CLEAR(self->chain);
    return 0;
}

static void
CallGate_dealloc(CallGate *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    CallGate_clear(self);
    if (self->chain_lock != NULL) {
        PyThread_free_lock(self->chain_lock);
    }
    if (self->token != NULL) {
        PyThread_free_lock(self->token);
    }
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type: each instance holds a reference to it */
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
        if (acquire(self->token) < 0) {
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
            if (acquire(self->token) < 0) {
                return NULL;
            }
            same = self->depth ? same_chain(self, chain) : 0;
            if (same < 0) {
                PyThread_release_lock(self->token);
                return NULL;
            }
            if (same) {
                self->depth += 1;
                Py_RETURN_NONE;
            }
            PyThread_release_lock(self->token); /* the chain left meanwhile: wait like any other */
        }
    }
    if (acquire(self->chain_lock) < 0) {
        return NULL;
    }
    self->chain_locked = 1;
    if (acquire(self->token) < 0) {
        self->chain_locked = 0;
        PyThread_release_lock(self->chain_lock);
        return NULL;
    }
    Py_INCREF(chain);
    Py_SETREF(self->chain, chain);
    self->depth = 1;
    Py_RETURN_NONE;
}

/* The reference's ``enter_if_free``: only non-blocking attempts, under the interpreter lock,
 * so no call can come in between the checks. */
static PyObject *
CallGate_enter_if_free(CallGate *self, PyObject *unused)
{
    if (self->depth) {
        Py_RETURN_FALSE;
    }
    if (!self->interleaving) {
        if (PyThread_acquire_lock_timed(self->chain_lock, 0, 0) != PY_LOCK_ACQUIRED) {
            Py_RETURN_FALSE;
        }
        self->chain_locked = 1;
    }
    if (PyThread_acquire_lock_timed(self->token, 0, 0) != PY_LOCK_ACQUIRED) {
        if (!self->interleaving) {
            self->chain_locked = 0;
            PyThread_release_lock(self->chain_lock);
        }
        Py_RETURN_FALSE;
    }
    Py_SETREF(self->chain, Py_NewRef(Py_None));
    self->depth = 1;
    Py_RETURN_TRUE;
}

static PyObject *
CallGate_exit(CallGate *self, PyObject *unused)
{
    if (self->depth <= 0) { /* the reference's lock would refuse: release unlocked lock */
        PyErr_SetString(PyExc_RuntimeError, "exit from a call gate that no call is in");
        return NULL;
    }
    self->depth -= 1;
    if (self->depth) {
        PyThread_release_lock(self->token);
        Py_RETURN_NONE;
    }
    Py_SETREF(self->chain, Py_NewRef(Py_None));
    PyThread_release_lock(self->token);
    if (!self->interleaving || self->chain_locked) {
        self->chain_locked = 0;
        PyThread_release_lock(self->chain_lock);
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
    if (self->depth <= 0) {
        PyErr_SetString(PyExc_RuntimeError, "suspend of a call gate that no call is in");
        return NULL;
    }
    PyThread_release_lock(self->token);
    Py_RETURN_NONE;
}

static PyObject *
CallGate_resume(CallGate *self, PyObject *unused)
{
    if (acquire(self->token) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef CallGate_methods[] = {
    {"enter", (PyCFunction)CallGate_enter, METH_O, "enter(chain): a call on chain comes in."},
    {"enter_if_free", (PyCFunction)CallGate_enter_if_free, METH_NOARGS,
     "enter_if_free() -> bool: enter only if no call is inside or waiting; never wait."},
    {"exit", (PyCFunction)CallGate_exit, METH_NOARGS, "exit(): the call inside leaves."},
    {"interleave", (PyCFunction)CallGate_interleave, METH_NOARGS,
     "interleave(): from now on, let another chain's call run while one waits in a call out."},
    {"held", (PyCFunction)CallGate_held, METH_NOARGS, "held() -> bool: a call is inside."},
    {"alone", (PyCFunction)CallGate_alone, METH_NOARGS,
     "alone() -> bool: at most one call is inside, none waiting in a call out."},
    {"suspend", (PyCFunction)CallGate_suspend, METH_NOARGS,
     "suspend(): the running level waits in a call out (resume when it returns)."},
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
