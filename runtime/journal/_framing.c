/* A journal's records not yet flushed, framed as they are appended: the hot path's writer.
 *
 * ``RecordBuffer`` holds the records a ``JournalWriter`` has not flushed yet and the seq of
 * its next record. ``append(start, *rest)`` frames the record whose payload is ``start``, the seq (a
 * CBOR unsigned integer) and ``rest``, joined, as ``[crc32, 24(payload)]``, and appends it;
 * ``append_payload(payload)`` frames a payload that holds its seq already. The bytes are those
 * of ``_codec.RecordBuffer``, the reference in Python, as ``tests/test_journal_framing.py``
 * checks over random payloads and every width of seq and length.
 *
 * Written in C because a membrane call writes four records and, in Python, each costs a join
 * of the payload, a CRC, a packed head, two appends and the method's frame (about 0.9 us,
 * most of an in-process call's journaling: ``benchmarks/bench_membrane.py``). Here the
 * payload is copied once, straight into the buffer's new tail, and the CRC read from there;
 * the buffer grows by doubling (a ``bytearray`` reallocates at nearly every append once a
 * flush has emptied it). The interpreter lock is held throughout, so another thread's flush
 * (``take``: every record held, and the buffer emptied) sees the buffer before or after the
 * whole record, never part of it, and the record's bytes are in the buffer before
 * ``next_seq`` counts it.
 *
 * The CRC is CRC-32 (IEEE 802.3, reflected: ``zlib.crc32``'s), computed by slicing-by-8,
 * which keeps the module free of any library but Python's own.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>

#include "../membrane/_cbor_head.h"

static uint32_t crc_table[8][256];

static void
crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        }
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        for (int t = 1; t < 8; t++) {
            uint32_t prev = crc_table[t - 1][i];
            crc_table[t][i] = (prev >> 8) ^ crc_table[0][prev & 0xff];
        }
    }
}

static uint32_t
crc32_of(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t one = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
                              | (uint32_t)p[3] << 24);
        uint32_t two = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16
                       | (uint32_t)p[7] << 24;
        crc = crc_table[7][one & 0xff] ^ crc_table[6][(one >> 8) & 0xff]
              ^ crc_table[5][(one >> 16) & 0xff] ^ crc_table[4][one >> 24]
              ^ crc_table[3][two & 0xff] ^ crc_table[2][(two >> 8) & 0xff]
              ^ crc_table[1][(two >> 16) & 0xff] ^ crc_table[0][two >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) {
        crc = crc_table[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    }
    return crc ^ 0xFFFFFFFFu;
}

#define RECORD_PREFIX 8 /* array(2), 0x1a + the CRC's 4 bytes, tag 24 (2 bytes) */

#define MAX_PIECES 16
#define KEPT_CAPACITY (64 * 1024) /* a buffer larger than this is freed when taken */

typedef struct {
    PyObject_HEAD
    char *bytes;        /* the records not yet taken, ``size`` bytes of ``capacity`` */
    Py_ssize_t size;
    Py_ssize_t capacity;
    Py_ssize_t flush_at;
    PyObject *on_full;  /* called (no arguments) once more than flush_at bytes are held */
    unsigned long long next_seq;
} RecordBuffer;

static int
reserve(RecordBuffer *self, Py_ssize_t more)
{
    if (self->size + more <= self->capacity) {
        return 0;
    }
    Py_ssize_t capacity = self->capacity ? self->capacity * 2 : 4096;
    while (capacity < self->size + more) {
        capacity *= 2;
    }
    char *bytes = PyMem_Realloc(self->bytes, (size_t)capacity);
    if (bytes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->bytes = bytes;
    self->capacity = capacity;
    return 0;
}

/* Append the record whose payload is ``count`` pieces (``pieces[i]`` of ``sizes[i]``
 * bytes), joined; count it, and hand a full buffer to ``on_full``. Returns its seq. */
static PyObject *
frame(RecordBuffer *self, const char *const *pieces, const Py_ssize_t *sizes,
      Py_ssize_t count)
{
    Py_ssize_t payload_len = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        payload_len += sizes[i];
    }
    unsigned char length_bytes[9];
    Py_ssize_t length_len = cbor_head(length_bytes, 0x40, (uint64_t)payload_len);
    Py_ssize_t head_len = RECORD_PREFIX + length_len;
    if (reserve(self, head_len + payload_len) < 0) {
        return NULL;
    }
    unsigned char *record = (unsigned char *)self->bytes + self->size;
    unsigned char *payload = record + head_len;
    unsigned char *at = payload;
    for (Py_ssize_t i = 0; i < count; i++) {
        memcpy(at, pieces[i], (size_t)sizes[i]);
        at += sizes[i];
    }
    uint32_t crc = crc32_of(payload, (size_t)payload_len);
    record[0] = 0x82;
    record[1] = 0x1a;
    record[2] = (unsigned char)(crc >> 24);
    record[3] = (unsigned char)(crc >> 16);
    record[4] = (unsigned char)(crc >> 8);
    record[5] = (unsigned char)crc;
    record[6] = 0xd8;
    record[7] = 0x18;
    memcpy(record + RECORD_PREFIX, length_bytes, (size_t)length_len);
    self->size += head_len + payload_len;

    unsigned long long seq = self->next_seq++;
    if (self->size > self->flush_at) {
        PyObject *done = PyObject_CallNoArgs(self->on_full);
        if (done == NULL) {
            return NULL;
        }
        Py_DECREF(done);
    }
    return PyLong_FromUnsignedLongLong(seq);
}

static int
RecordBuffer_init(RecordBuffer *self, PyObject *args, PyObject *kwargs)
{
    static char *names[] = {"next_seq", "flush_at", "on_full", NULL};
    unsigned long long next_seq;
    Py_ssize_t flush_at;
    PyObject *on_full;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "KnO", names, &next_seq, &flush_at,
                                     &on_full)) {
        return -1;
    }
    Py_XSETREF(self->on_full, Py_NewRef(on_full));
    self->size = 0;
    self->next_seq = next_seq;
    self->flush_at = flush_at;
    return 0;
}

static int
RecordBuffer_traverse(RecordBuffer *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->on_full);
    return 0;
}

static int
RecordBuffer_clear(RecordBuffer *self)
{
    Py_CLEAR(self->on_full);
    return 0;
}

static void
RecordBuffer_dealloc(RecordBuffer *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    RecordBuffer_clear(self);
    PyMem_Free(self->bytes);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type: each instance holds a reference to it */
}

static PyObject *
RecordBuffer_append(RecordBuffer *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > MAX_PIECES - 1) {
        PyErr_Format(PyExc_TypeError, "append(start, *rest) takes 1 to %d arguments",
                     MAX_PIECES - 1);
        return NULL;
    }
    const char *pieces[MAX_PIECES];
    Py_ssize_t sizes[MAX_PIECES];
    unsigned char seq_bytes[9];
    for (Py_ssize_t i = 0; i < nargs; i++) {
        if (!PyBytes_Check(args[i])) {
            PyErr_SetString(PyExc_TypeError, "append: each piece must be bytes");
            return NULL;
        }
    }
    pieces[0] = PyBytes_AS_STRING(args[0]);
    sizes[0] = PyBytes_GET_SIZE(args[0]);
    pieces[1] = (const char *)seq_bytes;
    sizes[1] = cbor_head(seq_bytes, 0x00, self->next_seq);
    for (Py_ssize_t i = 1; i < nargs; i++) {
        pieces[i + 1] = PyBytes_AS_STRING(args[i]);
        sizes[i + 1] = PyBytes_GET_SIZE(args[i]);
    }
    return frame(self, pieces, sizes, nargs + 1);
}

static PyObject *
RecordBuffer_append_payload(RecordBuffer *self, PyObject *payload)
{
    if (!PyBytes_Check(payload)) {
        PyErr_SetString(PyExc_TypeError, "append_payload: the payload must be bytes");
        return NULL;
    }
    const char *pieces[1] = {PyBytes_AS_STRING(payload)};
    Py_ssize_t sizes[1] = {PyBytes_GET_SIZE(payload)};
    return frame(self, pieces, sizes, 1);
}

static PyObject *
RecordBuffer_take(RecordBuffer *self, PyObject *unused)
{
    PyObject *taken = PyBytes_FromStringAndSize(self->bytes, self->size);
    if (taken == NULL) {
        return NULL;
    }
    self->size = 0;
    if (self->capacity > KEPT_CAPACITY) { /* a burst's buffer goes back */
        PyMem_Free(self->bytes);
        self->bytes = NULL;
        self->capacity = 0;
    }
    return taken;
}

static PyObject *
RecordBuffer_peek(RecordBuffer *self, PyObject *unused)
{
    return PyBytes_FromStringAndSize(self->bytes, self->size);
}

static Py_ssize_t
RecordBuffer_len(RecordBuffer *self)
{
    return self->size;
}

static PyMethodDef RecordBuffer_methods[] = {
    {"append", (PyCFunction)(void (*)(void))RecordBuffer_append, METH_FASTCALL,
     "append(start, *rest) -> int\n\n"
     "Frame the record whose payload is start, the seq (CBOR) and rest, joined; append it\n"
     "and count it. Returns its seq."},
    {"append_payload", (PyCFunction)RecordBuffer_append_payload, METH_O,
     "append_payload(payload) -> int\n\n"
     "Frame the record whose payload (its seq inside) is given; append it and count it.\n"
     "Returns its seq."},
    {"take", (PyCFunction)RecordBuffer_take, METH_NOARGS,
     "take() -> bytes\n\nEvery record held, which the buffer then no longer holds."},
    {"peek", (PyCFunction)RecordBuffer_peek, METH_NOARGS,
     "peek() -> bytes\n\nEvery record held, kept."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef RecordBuffer_members[] = {
    {"next_seq", T_ULONGLONG, offsetof(RecordBuffer, next_seq), 0,
     "The seq the next record gets."},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot RecordBuffer_slots[] = {
    {Py_tp_doc, "RecordBuffer(next_seq, flush_at, on_full)\n\n"
                "A journal's records not yet flushed, framed as they are appended."},
    {Py_tp_init, RecordBuffer_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, RecordBuffer_dealloc},
    {Py_tp_traverse, RecordBuffer_traverse},
    {Py_tp_clear, RecordBuffer_clear},
    {Py_tp_methods, RecordBuffer_methods},
    {Py_tp_members, RecordBuffer_members},
    {Py_sq_length, RecordBuffer_len},
    {0, NULL},
};

static PyType_Spec RecordBuffer_spec = {
    .name = "distdev.journal._framing.RecordBuffer",
    .basicsize = sizeof(RecordBuffer),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = RecordBuffer_slots,
};

static PyObject *
crc32_py(PyObject *module, PyObject *data)
{
    (void)module;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    uint32_t crc = crc32_of((const unsigned char *)view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef framing_methods[] = {
    {"crc32", (PyCFunction)crc32_py, METH_O,
     "crc32(data) -> int\n\nThe CRC-32 a record carries (zlib.crc32's)."},
    {NULL, NULL, 0, NULL},
};

static int
framing_exec(PyObject *module)
{
    crc_init();
    PyObject *type = PyType_FromModuleAndSpec(module, &RecordBuffer_spec, NULL);
    if (type == NULL) {
        return -1;
    }
    int added = PyModule_AddObjectRef(module, "RecordBuffer", type);
    Py_DECREF(type);
    return added;
}

static PyModuleDef_Slot framing_slots[] = {
    {Py_mod_exec, framing_exec},
    {0, NULL},
};

static struct PyModuleDef framing_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "distdev.journal._framing",
    .m_doc = "A journal record appended to a buffer in one step (the hot path's record writer).",
    .m_size = 0,
    .m_methods = framing_methods,
    .m_slots = framing_slots,
};

PyMODINIT_FUNC
PyInit__framing(void)
{
    return PyModuleDef_Init(&framing_module);
}
