/*
 * shardstore._native: the CPython extension over libShardStoreC (shardstore.h).
 *
 * One C call per sample (or per batch): the GIL is released around every library call, the
 * sample dict is built here, and each member's bytes are a read-only memoryview over the lease
 * (no copy). A memoryview keeps its lease alive through a tiny exporter object, so views stay
 * valid after the sample, the dataset, or its close() are gone (leases outlive close in the ABI).
 *
 * Types:
 *   Dataset  owns a shardstore_dataset*; subclassed by shardstore.Dataset (Python).
 *   Lease    owns a shardstore_lease*, released when the last view over it is dropped; the
 *            exporter of its members' memoryviews.
 *   Batch    what get_batch returns: a sequence of samples (dicts built on access) and the same
 *            members flat (views, extensions, offsets), all under one Lease.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <string.h>

#include "shardstore.h"

/* ---- Module state (single-phase init: the library is process-wide anyway) ------------------- */

/* Error classes by status code, from shardstore._errors._BY_CODE; base class Error. */
static PyObject *error_by_code = NULL;
static PyObject *error_base = NULL;
static PyObject *closed_error = NULL;

/* Bumped in the child after fork(): calls in flight in the parent do not exist in the child. */
static volatile unsigned long fork_generation = 0;

/* Library calls. libShardStoreC keeps forks safe itself: each of its entry points holds its fork
   guard shared, and its pthread_atfork handler takes it exclusively, so no thread is inside the
   library when a process forks. Calls here release the GIL around the library call; a thread
   that forks from Python holds the GIL while the library's handler waits for the calls in
   flight, which do not need the GIL to finish. */
#define LIBRARY_CALL(statement)                  \
    do {                                         \
        Py_BEGIN_ALLOW_THREADS                   \
        statement;                               \
        Py_END_ALLOW_THREADS                     \
    } while (0)

static PyObject *str_key = NULL;   /* "__key__" */
static PyObject *str_index = NULL; /* "__index__" */

static char empty_bytes[1];

/* How much of each member ds[i] asks the CPU to bring into cache (a hint: it never faults, and
   costs one instruction per 64 bytes). The caller reads the bytes next (decodes them, hashes
   them), but only after the interpreter has built the sample dict and run its own code, a
   microsecond or so: long enough for the first lines to arrive from memory, where a random
   sample's bytes are, before they are touched. Batches do the same a few members or one sample
   ahead of the one asked for. Measured with tools/bench-python.py over 600,000 samples from the
   preload, medians of 4 or 5 alternating runs: random S 202k -> 209k samples/s, M 190k -> 205k;
   batch S 237k -> 255k, M 222k -> 238k. 4 KiB gained less than 1 KiB, the whole member nothing
   (more lines than the CPU fetches at once). */
#define PREFETCH_BYTES 1024

static inline void prefetch_member(const shardstore_member *member) {
#if defined(__GNUC__) || defined(__clang__)
    const char *data = (const char *)member->data;
    uint64_t length = member->length < PREFETCH_BYTES ? member->length : PREFETCH_BYTES;
    for (uint64_t offset = 0; offset < length; offset += 64) __builtin_prefetch(data + offset, 0, 3);
#else
    (void)member;
#endif
}

static void prefetch_members(const shardstore_sample *sample) {
    for (size_t i = 0; i < sample->member_count; i++) prefetch_member(&sample->members[i]);
}

/* Members ahead of the one `batch.views` hands out that it asks the CPU for (prefetch_member), so
   that a loop over the views finds them in cache. */
#define PREFETCH_AHEAD 4

/* Marks sequence types for pattern matching (Python 3.10+). */
#ifdef Py_TPFLAGS_SEQUENCE
#define SEQUENCE_FLAG Py_TPFLAGS_SEQUENCE
#else
#define SEQUENCE_FLAG 0
#endif

/* In the child: calls in flight in the parent do not exist here. */
static void after_fork_in_child(void) { fork_generation++; }

/* Raises the Error subclass for `status` with the library's message (freed here). */
static void raise_status(shardstore_status status, char *message) {
    PyObject *text;
    if (message != NULL) {
        text = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
        shardstore_string_free(message);
    } else {
        text = PyUnicode_FromFormat("shardstore failed with status %d and no message", (int)status);
    }
    if (text == NULL) return;
    PyObject *code = PyLong_FromLong((long)status);
    if (code == NULL) {
        Py_DECREF(text);
        return;
    }
    PyObject *cls = PyDict_GetItemWithError(error_by_code, code); /* borrowed */
    if (cls == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(text);
            Py_DECREF(code);
            return;
        }
        cls = error_base;
    }
    PyObject *exc = PyObject_CallFunctionObjArgs(cls, text, code, NULL);
    Py_DECREF(text);
    Py_DECREF(code);
    if (exc == NULL) return;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
}

/* ---- Lease ---------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    shardstore_lease *lease;
    /* The member the next buffer request exports: set by member_view right before it makes a
       memoryview of the lease (with the GIL held), cleared by the request. A lease is the
       exporter of all its members' memoryviews, each of which keeps it alive; asked directly
       (memoryview(view.obj)), it exports nothing. */
    const char *next_data;
    Py_ssize_t next_length;
    int next_writable; /* 1 only for memory the lease owns outright (a loader batch's arrays) */
} LeaseObject;

static int Lease_getbuffer(LeaseObject *self, Py_buffer *view, int flags) {
    if (self->next_data == NULL) {
        view->obj = NULL;
        PyErr_SetString(PyExc_BufferError,
                        "a lease exports its members only through its samples' memoryviews");
        return -1;
    }
    const char *data = self->next_data;
    int readonly = !self->next_writable;
    self->next_data = NULL;
    self->next_writable = 0;
    return PyBuffer_FillInfo(view, (PyObject *)self, (void *)data, self->next_length, readonly, flags);
}

static PyBufferProcs Lease_as_buffer = {
    .bf_getbuffer = (getbufferproc)Lease_getbuffer,
    .bf_releasebuffer = NULL,
};

static void Lease_dealloc(LeaseObject *self) {
    if (self->lease != NULL) {
        shardstore_lease *lease = self->lease;
        self->lease = NULL;
        shardstore_lease_release(lease);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject LeaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.Lease",
    .tp_doc = "Keeps the bytes of one or more leased samples valid; released when dropped.",
    .tp_basicsize = sizeof(LeaseObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)Lease_dealloc,
    .tp_as_buffer = &Lease_as_buffer,
};

/* Takes ownership of `lease` (released on failure too). */
static LeaseObject *lease_wrap(shardstore_lease *lease) {
    LeaseObject *object = PyObject_New(LeaseObject, &LeaseType);
    if (object == NULL) {
        shardstore_lease_release(lease);
        return NULL;
    }
    object->lease = lease;
    object->next_data = NULL;
    object->next_length = 0;
    object->next_writable = 0;
    return object;
}

static PyObject *member_view(LeaseObject *lease, const void *data, uint64_t length) {
    if (length > (uint64_t)PY_SSIZE_T_MAX) {
        PyErr_Format(PyExc_OverflowError, "a member of %llu bytes does not fit in a memoryview",
                     (unsigned long long)length);
        return NULL;
    }
    lease->next_data = (data != NULL && length > 0) ? (const char *)data : empty_bytes;
    lease->next_length = (Py_ssize_t)length;
    PyObject *view = PyMemoryView_FromObject((PyObject *)lease);
    lease->next_data = NULL;
    return view;
}

/* Cheaper member views. A memoryview made from another memoryview shares its managed buffer
   (PyMemoryView_FromObject: one new object, no buffer request); pointing the copy at another
   member of the same lease gives that member's view for one allocation instead of two (the
   managed buffer, the view) plus a buffer request. It writes three fields of the new view
   (buf, len, shape[0]: the CPython layout in cpython/memoryobject.h), before anyone else sees
   it; the copy keeps the lease alive through the shared managed buffer, as any view of it does.
   clone_views says whether this interpreter passed the self-check at import (views_check);
   otherwise every view is made through the buffer protocol. */
static int clone_views = 0;

#if !defined(Py_LIMITED_API)
/* Points `view`, a new read-only one-dimensional byte view, at `length` bytes at `data`. */
static void point_view(PyObject *view, const void *data, Py_ssize_t length) {
    PyMemoryViewObject *mv = (PyMemoryViewObject *)view;
    mv->view.buf = (void *)((data != NULL && length > 0) ? (const char *)data : empty_bytes);
    mv->view.len = length;
    mv->view.shape[0] = length;
}

/* Whether a copy of a byte view pointed elsewhere reads as a view of those bytes here. */
static int views_check(void) {
    static const char text[] = "0123456789";
    PyObject *owner = PyBytes_FromStringAndSize(text, 10);
    if (owner == NULL) return 0;
    PyObject *template = PyMemoryView_FromObject(owner);
    PyObject *copy = template != NULL ? PyMemoryView_FromObject(template) : NULL;
    int ok = 0;
    if (copy != NULL) {
        Py_buffer *t = PyMemoryView_GET_BUFFER(template);
        if (t->ndim == 1 && t->itemsize == 1 && t->readonly && t->strides != NULL && t->strides[0] == 1 &&
            t->suboffsets == NULL) {
            const char *base = PyBytes_AS_STRING(owner);
            point_view(copy, base + 3, 4);
            PyObject *bytes = PyBytes_FromObject(copy);
            Py_buffer b;
            if (bytes != NULL && PyObject_GetBuffer(copy, &b, PyBUF_FULL_RO) == 0) {
                ok = b.buf == base + 3 && b.len == 4 && b.shape != NULL && b.shape[0] == 4 && PyObject_Length(copy) == 4 &&
                     PyBytes_GET_SIZE(bytes) == 4 && memcmp(PyBytes_AS_STRING(bytes), "3456", 4) == 0 &&
                     PyMemoryView_GET_BASE(copy) == owner;
                PyBuffer_Release(&b);
            }
            Py_XDECREF(bytes);
        }
    }
    PyErr_Clear();
    Py_XDECREF(copy);
    Py_XDECREF(template);
    Py_DECREF(owner);
    return ok;
}
#else
static void point_view(PyObject *view, const void *data, Py_ssize_t length) { (void)view, (void)data, (void)length; }
static int views_check(void) { return 0; }
#endif

/* A view of another member of the lease `template` views (a view made by member_view): a copy of
   `template` pointed at `data` when clone_views, else a view through the buffer protocol. */
static PyObject *sibling_view(PyObject *template, LeaseObject *lease, const void *data, uint64_t length) {
    if (!clone_views || template == NULL || length > (uint64_t)PY_SSIZE_T_MAX) return member_view(lease, data, length);
    PyObject *view = PyMemoryView_FromObject(template);
    if (view != NULL) point_view(view, data, (Py_ssize_t)length);
    return view;
}

/* A writable memoryview of `length` bytes at `data`, memory the lease owns outright (a loader
   batch's own arrays, never the dataset's bytes). */
static PyObject *owned_view(LeaseObject *lease, void *data, uint64_t length) {
    lease->next_writable = 1;
    PyObject *view = member_view(lease, data, length);
    lease->next_writable = 0;
    return view;
}

/* Extension names seen before, as str objects (hash computed once), looked up by their bytes: a
   dataset has a handful of extensions, so most samples decode none. Used with the GIL held. */
#define EXTENSION_CACHE_SIZE 32
#define EXTENSION_CACHE_MAX_LENGTH 32

typedef struct {
    size_t length;
    char bytes[EXTENSION_CACHE_MAX_LENGTH];
    PyObject *name;
} CachedExtension;

static CachedExtension extension_cache[EXTENSION_CACHE_SIZE];
static size_t extension_cache_count = 0;

/* A new reference to the str for an extension's bytes. */
static PyObject *extension_name(const char *ext, size_t length) {
    for (size_t i = 0; i < extension_cache_count; i++) {
        CachedExtension *entry = &extension_cache[i];
        if (entry->length == length && memcmp(entry->bytes, ext, length) == 0) {
            Py_INCREF(entry->name);
            return entry->name;
        }
    }
    PyObject *name = PyUnicode_DecodeUTF8(ext, (Py_ssize_t)length, "surrogateescape");
    if (name == NULL) return NULL;
    if (length <= EXTENSION_CACHE_MAX_LENGTH && extension_cache_count < EXTENSION_CACHE_SIZE) {
        if (PyObject_Hash(name) == -1) {
            Py_DECREF(name);
            return NULL;
        }
        CachedExtension *entry = &extension_cache[extension_cache_count++];
        entry->length = length;
        memcpy(entry->bytes, ext, length);
        Py_INCREF(name);
        entry->name = name;
    }
    return name;
}

/* The sample dict: __key__ (str, surrogateescape), __index__ (position) and ext -> memoryview of
   the bytes `lease` keeps (NULL only for a sample without members). Member views are copies of
   *template (sibling_view), a view of `lease`; when *template is NULL, the first member's view is
   made through the buffer protocol and stored there (a new reference, the caller's: it is also in
   the dict, so a template kept beyond this call must be made apart). */
static PyObject *sample_dict_from(const shardstore_sample *sample, LeaseObject *lease, PyObject **template) {
    /* Sized for every entry up front: a plain dict grows (a second allocation) past 5 entries. */
    PyObject *dict = _PyDict_NewPresized((Py_ssize_t)(2 + sample->member_count));
    if (dict == NULL) return NULL;
    PyObject *value = PyUnicode_DecodeUTF8((const char *)sample->key, (Py_ssize_t)sample->key_length,
                                           "surrogateescape");
    if (value == NULL || PyDict_SetItem(dict, str_key, value) < 0) goto fail;
    Py_DECREF(value);
    value = PyLong_FromLongLong((long long)sample->position);
    if (value == NULL || PyDict_SetItem(dict, str_index, value) < 0) goto fail;
    Py_DECREF(value);
    for (size_t i = 0; i < sample->member_count; i++) {
        const shardstore_member *member = &sample->members[i];
        PyObject *ext = extension_name(member->ext, member->ext_length);
        if (ext == NULL) goto fail_dict;
        if (*template == NULL) {
            value = member_view(lease, member->data, member->length);
            Py_XINCREF(value);
            *template = value;
        } else {
            value = sibling_view(*template, lease, member->data, member->length);
        }
        if (value == NULL) {
            Py_DECREF(ext);
            goto fail_dict;
        }
        int failed = PyDict_SetItem(dict, ext, value);
        Py_DECREF(ext);
        if (failed < 0) goto fail;
        Py_DECREF(value);
    }
    return dict;
fail:
    Py_XDECREF(value);
fail_dict:
    Py_DECREF(dict);
    return NULL;
}

/* sample_dict_from for a lease of its own (the first member's view is made from it). */
static PyObject *sample_dict(const shardstore_sample *sample, LeaseObject *lease) {
    PyObject *template = NULL;
    PyObject *dict = sample_dict_from(sample, lease, &template);
    Py_XDECREF(template);
    return dict;
}

/* ---- Dataset -------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    shardstore_dataset *dataset;
    int64_t count;
    int closed;
    /* Calls in flight (GIL released inside the library); close() waits for the last one. */
    long active;
    unsigned long generation;
    PyObject *decoder; /* None or a callable applied to each sample */
    PyObject *index_path;
    /* The lease that kept the last sample read by ds[i] (shardstore_get_into), passed back to the
       library with the next read, which reuses it when it keeps that sample's bytes too (the
       preload, a mapping), and a view of it that member views are copied from; or NULL. */
    LeaseObject *keeper;
    PyObject *keeper_view;
} DatasetObject;

/* Marks a call in flight; fails when the dataset is closed. Always called with the GIL. */
static int dataset_enter(DatasetObject *self) {
    if (self->generation != fork_generation) {
        /* A forked child: the calls the parent had in flight are not running here. */
        self->active = 0;
        self->generation = fork_generation;
    }
    if (self->dataset == NULL || self->closed) {
        PyObject *cls = closed_error != NULL ? closed_error : PyExc_ValueError;
        if (self->index_path != NULL) {
            PyErr_Format(cls, "the dataset %R is closed; open it again with shardstore.Dataset(%R)",
                         self->index_path, self->index_path);
        } else {
            PyErr_SetString(cls, "the dataset is not open; call shardstore.Dataset(index) to open one");
        }
        return -1;
    }
    self->active++;
    return 0;
}

/* Ends a call; the last one out closes a dataset that close() left open for it. */
static void dataset_leave(DatasetObject *self) {
    if (self->generation != fork_generation) {
        self->active = 0;
        self->generation = fork_generation;
    } else if (self->active > 0) {
        self->active--;
    }
    if (self->closed && self->active == 0 && self->dataset != NULL) {
        shardstore_dataset *dataset = self->dataset;
        self->dataset = NULL;
        LIBRARY_CALL(shardstore_close(dataset));
    }
}

static PyObject *Dataset_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    DatasetObject *self = (DatasetObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->dataset = NULL;
    self->count = 0;
    self->closed = 0;
    self->active = 0;
    self->generation = fork_generation;
    Py_INCREF(Py_None);
    self->decoder = Py_None;
    self->index_path = NULL;
    self->keeper = NULL;
    self->keeper_view = NULL;
    return (PyObject *)self;
}

static int Dataset_traverse(DatasetObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->decoder);
    return 0;
}

static int Dataset_clear(DatasetObject *self) {
    Py_CLEAR(self->decoder);
    Py_CLEAR(self->keeper_view);
    Py_CLEAR(self->keeper);
    return 0;
}

static void Dataset_dealloc(DatasetObject *self) {
    PyObject_GC_UnTrack(self);
    if (self->dataset != NULL) {
        shardstore_dataset *dataset = self->dataset;
        self->dataset = NULL;
        LIBRARY_CALL(shardstore_close(dataset));
    }
    Dataset_clear(self);
    Py_CLEAR(self->index_path);
    /* A Python subclass's subtype_dealloc drops the reference to its heap type after this. */
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* UTF-8 bytes of a str (strict), or NULL with None. Returns 0 on success. */
static int optional_utf8(PyObject *object, const char *name, PyObject **bytes) {
    *bytes = NULL;
    if (object == NULL || object == Py_None) return 0;
    if (!PyUnicode_Check(object)) {
        PyErr_Format(PyExc_TypeError, "%s must be a str or None, not %.100s", name, Py_TYPE(object)->tp_name);
        return -1;
    }
    *bytes = PyUnicode_AsUTF8String(object);
    return *bytes == NULL ? -1 : 0;
}

PyDoc_STRVAR(Dataset_init_doc,
             "Dataset(index, split=None, extensions=None, strategy=None, lookup=None, memory_limit=None,\n"
             "        verify_headers=True, decoder=None, cache_dir=None, cache_limit=None)\n\n"
             "Opens an index (shardstore_open). extensions is a sequence of str; memory_limit and\n"
             "cache_limit a str (\"2G\" or a byte count); cache_dir a str or bytes path; decoder None\n"
             "or a callable applied to each sample read.");

static int Dataset_init(DatasetObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"index",  "split",          "extensions", "strategy",  "lookup",      "memory_limit",
                               "verify_headers", "decoder", "cache_dir", "cache_limit", NULL};
    PyObject *path = NULL, *split = Py_None, *extensions = Py_None, *strategy = Py_None, *lookup = Py_None;
    PyObject *memory_limit = Py_None, *decoder = Py_None, *cache_dir = Py_None, *cache_limit = Py_None;
    int verify_headers = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|OOOOOpOOO", keywords, PyUnicode_FSConverter, &path, &split,
                                     &extensions, &strategy, &lookup, &memory_limit, &verify_headers, &decoder,
                                     &cache_dir, &cache_limit)) {
        return -1;
    }
    if (self->dataset != NULL) {
        Py_DECREF(path);
        PyErr_SetString(PyExc_RuntimeError, "this Dataset is already open; create a new one instead");
        return -1;
    }
    if (decoder != Py_None && !PyCallable_Check(decoder)) {
        Py_DECREF(path);
        PyErr_Format(PyExc_TypeError, "decoder must be callable or None, not %.100s", Py_TYPE(decoder)->tp_name);
        return -1;
    }
    int result = -1;
    PyObject *split_bytes = NULL, *strategy_bytes = NULL, *lookup_bytes = NULL, *limit_bytes = NULL;
    PyObject *cache_dir_bytes = NULL, *cache_limit_bytes = NULL;
    PyObject *extension_list = NULL;
    const char **extension_pointers = NULL;
    Py_ssize_t extension_count = 0;
    if (optional_utf8(split, "split", &split_bytes) < 0 || optional_utf8(strategy, "strategy", &strategy_bytes) < 0 ||
        optional_utf8(lookup, "lookup", &lookup_bytes) < 0 ||
        optional_utf8(memory_limit, "memory_limit", &limit_bytes) < 0 ||
        optional_utf8(cache_limit, "cache_limit", &cache_limit_bytes) < 0) {
        goto done;
    }
    /* A path: str (encoded as the file system does) or bytes, as for the index. */
    if (cache_dir != Py_None && !PyUnicode_FSConverter(cache_dir, &cache_dir_bytes)) goto done;
    if (extensions != Py_None) {
        if (PyUnicode_Check(extensions) || PyBytes_Check(extensions)) {
            PyErr_SetString(PyExc_TypeError, "extensions must be a sequence of str, such as [\"jpg\", \"cls\"]");
            goto done;
        }
        PyObject *sequence = PySequence_Fast(extensions, "extensions must be a sequence of str");
        if (sequence == NULL) goto done;
        extension_count = PySequence_Fast_GET_SIZE(sequence);
        extension_list = PyList_New(extension_count);
        extension_pointers = PyMem_Calloc(extension_count > 0 ? (size_t)extension_count : 1, sizeof(char *));
        if (extension_list == NULL || extension_pointers == NULL) {
            Py_DECREF(sequence);
            if (extension_pointers == NULL) PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t i = 0; i < extension_count; i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(sequence, i);
            PyObject *bytes = NULL;
            if (item == Py_None || optional_utf8(item, "each extension", &bytes) < 0) {
                if (item == Py_None) PyErr_SetString(PyExc_TypeError, "each extension must be a str, not None");
                Py_DECREF(sequence);
                goto done;
            }
            PyList_SET_ITEM(extension_list, i, bytes);
            extension_pointers[i] = PyBytes_AS_STRING(bytes);
        }
        Py_DECREF(sequence);
    }

    shardstore_open_options options;
    shardstore_open_options_init(&options);
    options.verify_headers = verify_headers ? 1 : 0;
    options.split = split_bytes != NULL ? PyBytes_AS_STRING(split_bytes) : NULL;
    options.extensions = extension_list != NULL ? extension_pointers : NULL;
    options.extension_count = extension_list != NULL ? (size_t)extension_count : 0;
    options.strategy = strategy_bytes != NULL ? PyBytes_AS_STRING(strategy_bytes) : NULL;
    options.lookup = lookup_bytes != NULL ? PyBytes_AS_STRING(lookup_bytes) : NULL;
    options.memory_limit = limit_bytes != NULL ? PyBytes_AS_STRING(limit_bytes) : NULL;
    options.cache_dir = cache_dir_bytes != NULL ? PyBytes_AS_STRING(cache_dir_bytes) : NULL;
    options.cache_limit = cache_limit_bytes != NULL ? PyBytes_AS_STRING(cache_limit_bytes) : NULL;

    shardstore_dataset *dataset = NULL;
    char *error = NULL;
    shardstore_status status;
    const char *path_string = PyBytes_AS_STRING(path);
    LIBRARY_CALL(status = shardstore_open(path_string, &options, &dataset, &error));
    if (status != SHARDSTORE_OK) {
        raise_status(status, error);
        goto done;
    }
    self->dataset = dataset;
    self->count = shardstore_count(dataset);
    self->closed = 0;
    self->active = 0;
    self->generation = fork_generation;
    Py_INCREF(decoder);
    Py_SETREF(self->decoder, decoder);
    Py_XSETREF(self->index_path, PyUnicode_DecodeFSDefault(path_string));
    if (self->index_path == NULL) goto done;
    result = 0;
done:
    Py_DECREF(path);
    Py_XDECREF(split_bytes);
    Py_XDECREF(strategy_bytes);
    Py_XDECREF(lookup_bytes);
    Py_XDECREF(limit_bytes);
    Py_XDECREF(cache_dir_bytes);
    Py_XDECREF(cache_limit_bytes);
    Py_XDECREF(extension_list);
    PyMem_Free(extension_pointers);
    return result;
}

/* Applies `decoder` (None: none) to a new sample dict; steals `sample`. */
static PyObject *decoded_by(PyObject *decoder, PyObject *sample) {
    if (sample == NULL || decoder == Py_None) return sample;
    Py_INCREF(decoder);
    PyObject *result = PyObject_CallOneArg(decoder, sample);
    Py_DECREF(decoder);
    Py_DECREF(sample);
    return result;
}

/* Applies the dataset's decoder (if any) to a new sample dict; steals `sample`. */
static PyObject *decoded(DatasetObject *self, PyObject *sample) { return decoded_by(self->decoder, sample); }

/* ---- Batch ---------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    LeaseObject *lease;         /* NULL for an empty batch */
    shardstore_sample *samples; /* count entries (PyMem); their pointers lead into the lease */
    Py_ssize_t count;
    Py_ssize_t member_count; /* over all samples */
    PyObject *decoder;       /* None or a callable applied to each sample */
    /* Every member, flat (member_count entries, PyMem), made on first use of batch.views. */
    const shardstore_member **flat;
    /* A view over the lease that batch.views copies (sibling_view); never handed out, so no
       caller can release it. NULL until the first view. */
    PyObject *template;
} BatchObject;

static PyTypeObject BatchType;

/* batch.views: a sequence over the batch's members that makes each memoryview when asked for it,
   so that a loop over them frees each view before making the next (a list of them all would
   keep thousands of new objects alive, and the garbage collector would walk them again and
   again). */
typedef struct {
    PyObject_HEAD
    PyObject *batch; /* the BatchObject: its flat array and lease */
} MemberViewsObject;

static PyTypeObject MemberViewsType;

/* Takes ownership of `samples` and `lease` (a new reference; NULL when count is 0). */
static PyObject *batch_new(shardstore_sample *samples, Py_ssize_t count, LeaseObject *lease, PyObject *decoder) {
    BatchObject *self = PyObject_GC_New(BatchObject, &BatchType);
    if (self == NULL) {
        PyMem_Free(samples);
        Py_XDECREF(lease);
        return NULL;
    }
    self->lease = lease;
    self->samples = samples;
    self->count = count;
    self->member_count = 0;
    for (Py_ssize_t i = 0; i < count; i++) self->member_count += (Py_ssize_t)samples[i].member_count;
    Py_INCREF(decoder);
    self->decoder = decoder;
    self->flat = NULL;
    self->template = NULL;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int Batch_traverse(BatchObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->decoder);
    return 0;
}

static int Batch_clear(BatchObject *self) {
    Py_CLEAR(self->decoder);
    return 0;
}

static void Batch_dealloc(BatchObject *self) {
    PyObject_GC_UnTrack(self);
    Batch_clear(self);
    PyMem_Free(self->samples);
    self->samples = NULL;
    PyMem_Free((void *)self->flat);
    self->flat = NULL;
    Py_CLEAR(self->template);
    Py_CLEAR(self->lease);
    PyObject_GC_Del(self);
}

static Py_ssize_t Batch_length(BatchObject *self) { return self->count; }

/* batch[i]: the sample dict, decoded; i already within 0 ..< count. */
static PyObject *batch_sample(BatchObject *self, Py_ssize_t i) {
    /* The caller most likely asks for the next sample next (iteration): its bytes are on the way. */
    if (i + 1 < self->count) prefetch_members(&self->samples[i + 1]);
    return decoded_by(self->decoder, sample_dict(&self->samples[i], self->lease));
}

static PyObject *Batch_item(BatchObject *self, Py_ssize_t i) {
    if (i < 0 || i >= self->count) {
        PyErr_Format(PyExc_IndexError, "batch index %zd out of range: the batch has %zd samples", i, self->count);
        return NULL;
    }
    return batch_sample(self, i);
}

/* seq[i], seq[-1], seq[a:b:c] (a list) for a sequence of `length` items made by `item_at`
   (which checks its index); `what` names the sequence in the TypeError. */
static PyObject *sequence_subscript(PyObject *self, PyObject *item, Py_ssize_t length, ssizeargfunc item_at,
                                    const char *what) {
    if (PySlice_Check(item)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(item, &start, &stop, &step) < 0) return NULL;
        Py_ssize_t count = PySlice_AdjustIndices(length, &start, &stop, step);
        PyObject *list = PyList_New(count);
        if (list == NULL) return NULL;
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *value = item_at(self, start + i * step);
            if (value == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, i, value);
        }
        return list;
    }
    if (!PyIndex_Check(item)) {
        PyErr_Format(PyExc_TypeError, "%s is indexed by int or slice, not %.100s", what, Py_TYPE(item)->tp_name);
        return NULL;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(item, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0) i += length;
    return item_at(self, i);
}

/* batch[i], batch[-1], batch[a:b:c] (a list of samples). */
static PyObject *Batch_subscript(BatchObject *self, PyObject *item) {
    return sequence_subscript((PyObject *)self, item, self->count, (ssizeargfunc)Batch_item, "a batch");
}

static PyObject *Batch_iter(BatchObject *self) { return PySeqIter_New((PyObject *)self); }

static PyObject *Batch_get_views(BatchObject *self, void *unused) {
    (void)unused;
    if (self->flat == NULL && self->member_count > 0) {
        const shardstore_member **flat = PyMem_Malloc((size_t)self->member_count * sizeof(*flat));
        if (flat == NULL) return PyErr_NoMemory();
        Py_ssize_t n = 0;
        for (Py_ssize_t i = 0; i < self->count; i++) {
            const shardstore_sample *sample = &self->samples[i];
            for (size_t m = 0; m < sample->member_count; m++) flat[n++] = &sample->members[m];
        }
        self->flat = flat;
    }
    MemberViewsObject *views = PyObject_New(MemberViewsObject, &MemberViewsType);
    if (views == NULL) return NULL;
    Py_INCREF(self);
    views->batch = (PyObject *)self;
    return (PyObject *)views;
}

static void MemberViews_dealloc(MemberViewsObject *self) {
    Py_CLEAR(self->batch);
    PyObject_Free(self);
}

static Py_ssize_t MemberViews_length(MemberViewsObject *self) {
    return ((BatchObject *)self->batch)->member_count;
}

static PyObject *MemberViews_item(MemberViewsObject *self, Py_ssize_t i) {
    BatchObject *batch = (BatchObject *)self->batch;
    if (i < 0 || i >= batch->member_count) {
        PyErr_Format(PyExc_IndexError, "member index %zd out of range: the batch has %zd members", i,
                     batch->member_count);
        return NULL;
    }
    const shardstore_member *member = batch->flat[i];
    if (i == 0) {
        for (Py_ssize_t ahead = 0; ahead < PREFETCH_AHEAD && ahead < batch->member_count; ahead++)
            prefetch_member(batch->flat[ahead]);
    }
    if (i + PREFETCH_AHEAD < batch->member_count) prefetch_member(batch->flat[i + PREFETCH_AHEAD]);
    if (clone_views && batch->template == NULL) {
        batch->template = member_view(batch->lease, member->data, member->length);
        if (batch->template == NULL) return NULL;
    }
    return sibling_view(batch->template, batch->lease, member->data, member->length);
}

static PyObject *MemberViews_subscript(MemberViewsObject *self, PyObject *item) {
    return sequence_subscript((PyObject *)self, item, ((BatchObject *)self->batch)->member_count,
                              (ssizeargfunc)MemberViews_item, "batch.views");
}

static PyObject *MemberViews_iter(MemberViewsObject *self) { return PySeqIter_New((PyObject *)self); }

static PyObject *MemberViews_repr(MemberViewsObject *self) {
    return PyUnicode_FromFormat("<shardstore.Batch views: %zd members>", ((BatchObject *)self->batch)->member_count);
}

static PySequenceMethods MemberViews_as_sequence = {
    .sq_length = (lenfunc)MemberViews_length,
    .sq_item = (ssizeargfunc)MemberViews_item,
};

static PyMappingMethods MemberViews_as_mapping = {
    .mp_length = (lenfunc)MemberViews_length,
    .mp_subscript = (binaryfunc)MemberViews_subscript,
};

static PyTypeObject MemberViewsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.MemberViews",
    .tp_doc = "A batch's members as read-only memoryviews, flat, each made when asked for (batch.views).",
    .tp_basicsize = sizeof(MemberViewsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | SEQUENCE_FLAG,
    .tp_dealloc = (destructor)MemberViews_dealloc,
    .tp_repr = (reprfunc)MemberViews_repr,
    .tp_iter = (getiterfunc)MemberViews_iter,
    .tp_as_sequence = &MemberViews_as_sequence,
    .tp_as_mapping = &MemberViews_as_mapping,
};

static PyObject *Batch_get_extensions(BatchObject *self, void *unused) {
    (void)unused;
    PyObject *list = PyList_New(self->member_count);
    if (list == NULL) return NULL;
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        const shardstore_sample *sample = &self->samples[i];
        for (size_t m = 0; m < sample->member_count; m++) {
            PyObject *ext = extension_name(sample->members[m].ext, sample->members[m].ext_length);
            if (ext == NULL) {
                Py_DECREF(list);
                return NULL;
            }
            PyList_SET_ITEM(list, n++, ext);
        }
    }
    return list;
}

static PyObject *Batch_get_offsets(BatchObject *self, void *unused) {
    (void)unused;
    PyObject *list = PyList_New(self->count + 1);
    if (list == NULL) return NULL;
    Py_ssize_t offset = 0;
    for (Py_ssize_t i = 0; i <= self->count; i++) {
        PyObject *value = PyLong_FromSsize_t(offset);
        if (value == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, value);
        if (i < self->count) offset += (Py_ssize_t)self->samples[i].member_count;
    }
    return list;
}

static PyObject *Batch_get_keys(BatchObject *self, void *unused) {
    (void)unused;
    PyObject *list = PyList_New(self->count);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        const shardstore_sample *sample = &self->samples[i];
        PyObject *key = PyUnicode_DecodeUTF8((const char *)sample->key, (Py_ssize_t)sample->key_length,
                                             "surrogateescape");
        if (key == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, key);
    }
    return list;
}

static PyObject *Batch_get_indices(BatchObject *self, void *unused) {
    (void)unused;
    PyObject *list = PyList_New(self->count);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        PyObject *value = PyLong_FromLongLong((long long)self->samples[i].position);
        if (value == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, value);
    }
    return list;
}

static PyObject *Batch_repr(BatchObject *self) {
    return PyUnicode_FromFormat("<shardstore.Batch of %zd samples, %zd members>", self->count, self->member_count);
}

static PyGetSetDef Batch_getset[] = {
    {"views", (getter)Batch_get_views, NULL,
     "Every member of every sample as a read-only memoryview, flat: sample 0's members in archive order,\n"
     "then sample 1's... A sequence (len, [i], iteration) that makes each memoryview when asked for it.",
     NULL},
    {"extensions", (getter)Batch_get_extensions, NULL, "The extension of each entry of views (a new list).", NULL},
    {"offsets", (getter)Batch_get_offsets, NULL,
     "len(batch) + 1 ints: sample i's members are views[offsets[i]:offsets[i + 1]].", NULL},
    {"keys", (getter)Batch_get_keys, NULL, "Each sample's __key__ (a new list of str).", NULL},
    {"indices", (getter)Batch_get_indices, NULL, "Each sample's __index__ (a new list of int).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Batch_as_sequence = {
    .sq_length = (lenfunc)Batch_length,
    .sq_item = (ssizeargfunc)Batch_item,
};

static PyMappingMethods Batch_as_mapping = {
    .mp_length = (lenfunc)Batch_length,
    .mp_subscript = (binaryfunc)Batch_subscript,
};

PyDoc_STRVAR(Batch_doc,
             "The samples read by one get_batch call, under one lease.\n\n"
             "A sequence of samples: len(batch), batch[i] (a dict, decoded, built on access), iteration.\n"
             "The same members flat, without a dict per sample: batch.views (read-only memoryviews),\n"
             "batch.extensions and batch.offsets; batch.keys and batch.indices. Every view keeps the\n"
             "lease, and with it the bytes, alive.");

static PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.Batch",
    .tp_doc = Batch_doc,
    .tp_basicsize = sizeof(BatchObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | SEQUENCE_FLAG,
    .tp_dealloc = (destructor)Batch_dealloc,
    .tp_traverse = (traverseproc)Batch_traverse,
    .tp_clear = (inquiry)Batch_clear,
    .tp_repr = (reprfunc)Batch_repr,
    .tp_iter = (getiterfunc)Batch_iter,
    .tp_getset = Batch_getset,
    .tp_as_sequence = &Batch_as_sequence,
    .tp_as_mapping = &Batch_as_mapping,
};

/* Normalises a Python index: negative counts from the end; out of range stays out of range (the
   library reports it, with the position as given). */
static int64_t normalised_position(DatasetObject *self, long long position) {
    if (position < 0 && position + self->count >= 0) return position + self->count;
    return position;
}

/* Converts an index object to a position; an int too large for int64 becomes INT64_MIN (out of
   range for the library, which reports it). */
static int position_from_object(DatasetObject *self, PyObject *object, int64_t *position) {
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(object, &overflow);
    if (value == -1 && PyErr_Occurred()) return -1;
    if (overflow != 0) {
        *position = overflow < 0 ? INT64_MIN : INT64_MAX;
        return 0;
    }
    *position = normalised_position(self, value);
    return 0;
}

/* Reads one sample (undecoded) under a lease of its own (shardstore_get). */
static PyObject *dataset_read_leased(DatasetObject *self, int64_t position) {
    shardstore_sample sample;
    shardstore_lease *lease = NULL;
    char *error = NULL;
    shardstore_status status;
    if (dataset_enter(self) < 0) return NULL;
    shardstore_dataset *dataset = self->dataset;
    LIBRARY_CALL(status = shardstore_get(dataset, position, &sample, &lease, &error));
    dataset_leave(self);
    if (status != SHARDSTORE_OK) {
        raise_status(status, error);
        return NULL;
    }
    LeaseObject *owner = lease_wrap(lease);
    if (owner == NULL) return NULL;
    PyObject *dict = sample_dict(&sample, owner);
    Py_DECREF(owner);
    return dict;
}


/* Room shardstore_get_into describes a sample in; a larger sample is read by dataset_read_leased. */
#define READ_MEMBERS 32
#define READ_TEXT 2048

/* Reads one sample (undecoded) with shardstore_get_into: no allocation in the library when the
   dataset's keeper lease keeps its bytes, and member views copied from the keeper's view. */
static PyObject *dataset_read(DatasetObject *self, int64_t position) {
    shardstore_sample sample;
    shardstore_member members[READ_MEMBERS];
    char text[READ_TEXT];
    char *error = NULL;
    shardstore_status status;
    if (dataset_enter(self) < 0) return NULL;
    /* Held across the call: another thread may replace self->keeper meanwhile. */
    LeaseObject *kept = self->keeper;
    Py_XINCREF(kept);
    shardstore_lease *lease = kept != NULL ? kept->lease : NULL;
    shardstore_dataset *dataset = self->dataset;
    LIBRARY_CALL(status = shardstore_get_into(dataset, position, &sample, members, READ_MEMBERS, text, READ_TEXT,
                                              &lease, &error));
    dataset_leave(self);
    if (status == SHARDSTORE_BUFFER_TOO_SMALL) {
        shardstore_string_free(error);
        Py_XDECREF(kept);
        return dataset_read_leased(self, position);
    }
    if (status != SHARDSTORE_OK) {
        Py_XDECREF(kept);
        raise_status(status, error);
        return NULL;
    }
    prefetch_members(&sample);
    int reused = kept != NULL && lease == kept->lease;
    if (!reused && lease != NULL) {
        /* A new keeper: it becomes the dataset's (unless closed meanwhile). */
        Py_XDECREF(kept);
        kept = lease_wrap(lease);
        if (kept == NULL) return NULL;
        if (!self->closed) {
            Py_CLEAR(self->keeper_view);
            Py_INCREF(kept);
            Py_XSETREF(self->keeper, kept);
        }
    }
    PyObject *dict;
    if (reused && kept == self->keeper) {
        /* Kept again: copy the views from the keeper's own view, made on its second use (a keeper
           used once, as pread's buffers are, never needs one) and never handed out, so that a
           caller releasing a view it got does not touch the template. */
        if (self->keeper_view == NULL) self->keeper_view = member_view(kept, NULL, 0);
        dict = self->keeper_view != NULL ? sample_dict_from(&sample, kept, &self->keeper_view) : NULL;
    } else {
        dict = sample_dict(&sample, kept);
    }
    Py_XDECREF(kept);
    return dict;
}

/* The position of a key given as bytes (exact) or str (UTF-8, surrogateescape). */
static int dataset_position_of(DatasetObject *self, PyObject *key, int64_t *position) {
    PyObject *bytes;
    if (PyBytes_Check(key)) {
        Py_INCREF(key);
        bytes = key;
    } else if (PyUnicode_Check(key)) {
        bytes = PyUnicode_AsEncodedString(key, "utf-8", "surrogateescape");
        if (bytes == NULL) return -1;
    } else if (PyByteArray_Check(key) || PyMemoryView_Check(key)) {
        bytes = PyBytes_FromObject(key);
        if (bytes == NULL) return -1;
    } else {
        PyErr_Format(PyExc_TypeError, "a key is a str or bytes, not %.100s", Py_TYPE(key)->tp_name);
        return -1;
    }
    char *error = NULL;
    shardstore_status status;
    int64_t found = -1;
    if (dataset_enter(self) < 0) {
        Py_DECREF(bytes);
        return -1;
    }
    shardstore_dataset *dataset = self->dataset;
    const uint8_t *data = (const uint8_t *)PyBytes_AS_STRING(bytes);
    size_t length = (size_t)PyBytes_GET_SIZE(bytes);
    LIBRARY_CALL(status = shardstore_position(dataset, data, length, &found, &error));
    dataset_leave(self);
    Py_DECREF(bytes);
    if (status != SHARDSTORE_OK) {
        raise_status(status, error);
        return -1;
    }
    *position = found;
    return 0;
}

/* Reads samples at `positions` in one library call; returns a Batch. */
static PyObject *dataset_read_batch(DatasetObject *self, const int64_t *positions, size_t count) {
    if (count == 0) {
        if (dataset_enter(self) < 0) return NULL;
        dataset_leave(self);
        return batch_new(NULL, 0, NULL, self->decoder);
    }
    shardstore_sample *samples = PyMem_Malloc(count * sizeof(shardstore_sample));
    if (samples == NULL) return PyErr_NoMemory();
    shardstore_lease *lease = NULL;
    char *error = NULL;
    shardstore_status status;
    if (dataset_enter(self) < 0) {
        PyMem_Free(samples);
        return NULL;
    }
    shardstore_dataset *dataset = self->dataset;
    LIBRARY_CALL(status = shardstore_get_batch(dataset, positions, count, samples, &lease, &error));
    dataset_leave(self);
    if (status != SHARDSTORE_OK) {
        PyMem_Free(samples);
        raise_status(status, error);
        return NULL;
    }
    LeaseObject *owner = lease_wrap(lease);
    if (owner == NULL) {
        PyMem_Free(samples);
        return NULL;
    }
    return batch_new(samples, (Py_ssize_t)count, owner, self->decoder);
}

/* Positions from a sequence of ints or a 1-D buffer of int64 (a numpy int64 array, array('q')). */
static int64_t *positions_from_object(DatasetObject *self, PyObject *object, size_t *count) {
    if (PyObject_CheckBuffer(object) && !PyBytes_Check(object) && !PyByteArray_Check(object)) {
        Py_buffer view;
        if (PyObject_GetBuffer(object, &view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) == 0) {
            const char *format = view.format != NULL ? view.format : "B";
            if (*format == '@' || *format == '=' || *format == '<') format++;
            if (view.ndim == 1 && view.itemsize == 8 && (strcmp(format, "q") == 0 || strcmp(format, "l") == 0)) {
                size_t n = (size_t)(view.len / 8);
                int64_t *positions = PyMem_Malloc(n > 0 ? n * sizeof(int64_t) : 1);
                if (positions == NULL) {
                    PyBuffer_Release(&view);
                    PyErr_NoMemory();
                    return NULL;
                }
                const int64_t *source = (const int64_t *)view.buf;
                for (size_t i = 0; i < n; i++) positions[i] = normalised_position(self, source[i]);
                PyBuffer_Release(&view);
                *count = n;
                return positions;
            }
            PyBuffer_Release(&view);
        } else {
            PyErr_Clear();
        }
    }
    PyObject *sequence = PySequence_Fast(object, "positions must be a sequence of int");
    if (sequence == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    int64_t *positions = PyMem_Malloc(n > 0 ? (size_t)n * sizeof(int64_t) : 1);
    if (positions == NULL) {
        Py_DECREF(sequence);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(sequence, i);
        if (!PyIndex_Check(item)) {
            PyErr_Format(PyExc_TypeError, "positions must be ints, not %.100s", Py_TYPE(item)->tp_name);
            goto fail;
        }
        PyObject *number = PyNumber_Index(item);
        if (number == NULL) goto fail;
        int failed = position_from_object(self, number, &positions[i]);
        Py_DECREF(number);
        if (failed < 0) goto fail;
    }
    Py_DECREF(sequence);
    *count = (size_t)n;
    return positions;
fail:
    Py_DECREF(sequence);
    PyMem_Free(positions);
    return NULL;
}

PyDoc_STRVAR(Dataset_get_doc, "get(position) -> dict\n\nThe sample at position (negative counts from the end), decoded.");

static PyObject *Dataset_get(DatasetObject *self, PyObject *argument) {
    if (!PyIndex_Check(argument)) {
        PyErr_Format(PyExc_TypeError, "a position is an int, not %.100s", Py_TYPE(argument)->tp_name);
        return NULL;
    }
    PyObject *number = PyNumber_Index(argument);
    if (number == NULL) return NULL;
    int64_t position;
    int failed = position_from_object(self, number, &position);
    Py_DECREF(number);
    if (failed < 0) return NULL;
    return decoded(self, dataset_read(self, position));
}

PyDoc_STRVAR(Dataset_get_batch_doc,
             "get_batch(positions) -> Batch\n\n"
             "The samples at positions (a sequence of ints or an int64 buffer), in one library call, as a\n"
             "Batch: a sequence of samples (decoded on access) and its members flat (batch.views).\n"
             "One lease keeps the whole batch's bytes alive while the batch or any of its memoryviews is.");

static PyObject *Dataset_get_batch(DatasetObject *self, PyObject *argument) {
    size_t count = 0;
    int64_t *positions = positions_from_object(self, argument, &count);
    if (positions == NULL) return NULL;
    PyObject *result = dataset_read_batch(self, positions, count);
    PyMem_Free(positions);
    return result;
}

PyDoc_STRVAR(Dataset_position_doc,
             "position(key) -> int\n\nThe position of the sample with this key (bytes, or str encoded as UTF-8\n"
             "with surrogateescape).");

static PyObject *Dataset_position(DatasetObject *self, PyObject *key) {
    int64_t position;
    if (dataset_position_of(self, key, &position) < 0) return NULL;
    return PyLong_FromLongLong((long long)position);
}

PyDoc_STRVAR(Dataset_storage_order_doc,
             "storage_order() -> bytearray\n\nThe positions in storage order, as native int64 values "
             "(memoryview(...).cast('q')).");

static PyObject *Dataset_storage_order(DatasetObject *self, PyObject *unused) {
    if (dataset_enter(self) < 0) return NULL;
    int64_t count = self->count;
    PyObject *array = PyByteArray_FromStringAndSize(NULL, (Py_ssize_t)(count * (int64_t)sizeof(int64_t)));
    if (array == NULL) {
        dataset_leave(self);
        return NULL;
    }
    int64_t *positions = (int64_t *)PyByteArray_AS_STRING(array);
    shardstore_dataset *dataset = self->dataset;
    char *error = NULL;
    shardstore_status status = SHARDSTORE_OK;
    if (count > 0) {
        LIBRARY_CALL(status = shardstore_storage_order(dataset, positions, (size_t)count, &error));
    }
    dataset_leave(self);
    if (status != SHARDSTORE_OK) {
        Py_DECREF(array);
        raise_status(status, error);
        return NULL;
    }
    return array;
}

static PyObject *optional_string(const char *string) {
    if (string == NULL) Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(string, (Py_ssize_t)strlen(string), "surrogateescape");
}

PyDoc_STRVAR(Dataset_info_doc,
             "info() -> dict\n\ncount, strategy, lookup, reason, selection_bytes, split, index_path.");

static PyObject *Dataset_info(DatasetObject *self, PyObject *unused) {
    if (dataset_enter(self) < 0) return NULL;
    shardstore_dataset_info info;
    memset(&info, 0, sizeof(info));
    info.struct_size = (uint32_t)sizeof(info);
    char *error = NULL;
    shardstore_status status;
    status = shardstore_info(self->dataset, &info, &error);
    PyObject *result = NULL;
    if (status != SHARDSTORE_OK) {
        raise_status(status, error);
    } else {
        result = Py_BuildValue("{s:L,s:N,s:N,s:N,s:L,s:N,s:N}", "count", (long long)info.count, "strategy",
                               optional_string(info.strategy), "lookup", optional_string(info.lookup), "reason",
                               optional_string(info.reason), "selection_bytes", (long long)info.selection_bytes,
                               "split", optional_string(info.split), "index_path",
                               optional_string(info.index_path));
    }
    dataset_leave(self);
    return result;
}

typedef shardstore_status (*json_function)(const shardstore_dataset *, char **, char **);

static PyObject *dataset_json(DatasetObject *self, json_function function) {
    if (dataset_enter(self) < 0) return NULL;
    shardstore_dataset *dataset = self->dataset;
    char *json = NULL, *error = NULL;
    shardstore_status status;
    LIBRARY_CALL(status = function(dataset, &json, &error));
    dataset_leave(self);
    if (status != SHARDSTORE_OK) {
        raise_status(status, error);
        return NULL;
    }
    PyObject *result = PyUnicode_DecodeUTF8(json != NULL ? json : "", json != NULL ? (Py_ssize_t)strlen(json) : 0,
                                            "surrogateescape");
    shardstore_string_free(json);
    return result;
}

PyDoc_STRVAR(Dataset_splits_json_doc, "splits_json() -> str\n\n[{\"name\": ..., \"count\": N}, ...] in name order.");

static PyObject *Dataset_splits_json(DatasetObject *self, PyObject *unused) {
    return dataset_json(self, shardstore_splits_json);
}

PyDoc_STRVAR(Dataset_metadata_json_doc, "metadata_json() -> str\n\nThe index's metadata as a JSON object.");

static PyObject *Dataset_metadata_json(DatasetObject *self, PyObject *unused) {
    return dataset_json(self, shardstore_metadata_json);
}

PyDoc_STRVAR(Dataset_close_doc,
             "close()\n\nCloses the dataset (again: no effect). Calls in flight on other threads finish first;\n"
             "memoryviews already handed out stay valid.");

static PyObject *Dataset_close(DatasetObject *self, PyObject *unused) {
    if (self->generation != fork_generation) {
        self->active = 0;
        self->generation = fork_generation;
    }
    self->closed = 1;
    /* The views handed out keep what they point into; the dataset lets go of it. */
    Py_CLEAR(self->keeper_view);
    Py_CLEAR(self->keeper);
    if (self->active == 0 && self->dataset != NULL) {
        shardstore_dataset *dataset = self->dataset;
        self->dataset = NULL;
        LIBRARY_CALL(shardstore_close(dataset));
    }
    Py_RETURN_NONE;
}

static PyObject *Dataset_get_closed(DatasetObject *self, void *unused) {
    return PyBool_FromLong(self->closed || self->dataset == NULL);
}

static PyObject *Dataset_get_decoder(DatasetObject *self, void *unused) {
    Py_INCREF(self->decoder);
    return self->decoder;
}

static Py_ssize_t Dataset_length(DatasetObject *self) {
    if (dataset_enter(self) < 0) return -1;
    dataset_leave(self);
    return (Py_ssize_t)self->count;
}

/* ds[i], ds[-1], ds["key"], ds[b"key"], ds[a:b:c] (a Batch). */
static PyObject *Dataset_subscript(DatasetObject *self, PyObject *item) {
    if (PyLong_CheckExact(item)) {
        int64_t position;
        if (position_from_object(self, item, &position) < 0) return NULL;
        return decoded(self, dataset_read(self, position));
    }
    if (PyUnicode_Check(item) || PyBytes_Check(item)) {
        int64_t position;
        if (dataset_position_of(self, item, &position) < 0) return NULL;
        return decoded(self, dataset_read(self, position));
    }
    if (PySlice_Check(item)) {
        Py_ssize_t start, stop, step;
        if (PySlice_Unpack(item, &start, &stop, &step) < 0) return NULL;
        if (dataset_enter(self) < 0) return NULL;
        dataset_leave(self);
        Py_ssize_t length = PySlice_AdjustIndices((Py_ssize_t)self->count, &start, &stop, step);
        int64_t *positions = PyMem_Malloc(length > 0 ? (size_t)length * sizeof(int64_t) : 1);
        if (positions == NULL) return PyErr_NoMemory();
        for (Py_ssize_t i = 0; i < length; i++) positions[i] = (int64_t)(start + i * step);
        PyObject *result = dataset_read_batch(self, positions, (size_t)length);
        PyMem_Free(positions);
        return result;
    }
    if (PyIndex_Check(item)) return Dataset_get(self, item);
    PyErr_Format(PyExc_TypeError, "a dataset is indexed by int, slice, str or bytes, not %.100s",
                 Py_TYPE(item)->tp_name);
    return NULL;
}

static PyMethodDef Dataset_methods[] = {
    {"get", (PyCFunction)Dataset_get, METH_O, Dataset_get_doc},
    {"get_batch", (PyCFunction)Dataset_get_batch, METH_O, Dataset_get_batch_doc},
    {"position", (PyCFunction)Dataset_position, METH_O, Dataset_position_doc},
    {"storage_order", (PyCFunction)Dataset_storage_order, METH_NOARGS, Dataset_storage_order_doc},
    {"info", (PyCFunction)Dataset_info, METH_NOARGS, Dataset_info_doc},
    {"splits_json", (PyCFunction)Dataset_splits_json, METH_NOARGS, Dataset_splits_json_doc},
    {"metadata_json", (PyCFunction)Dataset_metadata_json, METH_NOARGS, Dataset_metadata_json_doc},
    {"close", (PyCFunction)Dataset_close, METH_NOARGS, Dataset_close_doc},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Dataset_getset[] = {
    {"closed", (getter)Dataset_get_closed, NULL, "True once close() was called.", NULL},
    {"decoder", (getter)Dataset_get_decoder, NULL, "The callable applied to each sample, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMappingMethods Dataset_as_mapping = {
    .mp_length = (lenfunc)Dataset_length,
    .mp_subscript = (binaryfunc)Dataset_subscript,
};

static PySequenceMethods Dataset_as_sequence = {
    .sq_length = (lenfunc)Dataset_length,
};

static PyTypeObject DatasetType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.Dataset",
    .tp_doc = Dataset_init_doc,
    .tp_basicsize = sizeof(DatasetObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Dataset_new,
    .tp_init = (initproc)Dataset_init,
    .tp_dealloc = (destructor)Dataset_dealloc,
    .tp_traverse = (traverseproc)Dataset_traverse,
    .tp_clear = (inquiry)Dataset_clear,
    .tp_methods = Dataset_methods,
    .tp_getset = Dataset_getset,
    .tp_as_mapping = &Dataset_as_mapping,
    .tp_as_sequence = &Dataset_as_sequence,
};

/* ---- Loader batches ------------------------------------------------------------------------- */

/* One batch of a loader: the library's description and the lease that keeps it valid. The
   Python class shardstore.CollatedBatch wraps it (numpy arrays, lists of memoryviews). */
typedef struct {
    PyObject_HEAD
    LeaseObject *lease;
    shardstore_batch batch;
} LoaderBatchObject;

static PyTypeObject LoaderBatchType;

static void LoaderBatch_dealloc(LoaderBatchObject *self) {
    Py_CLEAR(self->lease);
    PyObject_Free(self);
}

/* The column at `argument` (an int), or NULL with IndexError. */
static const shardstore_column *batch_column(LoaderBatchObject *self, PyObject *argument) {
    Py_ssize_t i = PyNumber_AsSsize_t(argument, PyExc_IndexError);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || (size_t)i >= self->batch.column_count) {
        PyErr_Format(PyExc_IndexError, "column %zd out of range: the batch has %zu columns", i,
                     self->batch.column_count);
        return NULL;
    }
    return &self->batch.columns[i];
}

static PyObject *LoaderBatch_keys(LoaderBatchObject *self, PyObject *unused) {
    (void)unused;
    Py_ssize_t n = (Py_ssize_t)self->batch.count;
    PyObject *list = PyList_New(n);
    if (list == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t start = self->batch.key_offsets[i], end = self->batch.key_offsets[i + 1];
        PyObject *key = PyUnicode_DecodeUTF8((const char *)self->batch.key_bytes + start, (Py_ssize_t)(end - start),
                                             "surrogateescape");
        if (key == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, key);
    }
    return list;
}

static PyObject *LoaderBatch_positions(LoaderBatchObject *self, PyObject *unused) {
    (void)unused;
    return owned_view(self->lease, (void *)self->batch.positions, (uint64_t)self->batch.count * 8);
}

/* [(ext, layout, dtype or None, shape tuple)] */
static PyObject *LoaderBatch_columns(LoaderBatchObject *self, PyObject *unused) {
    (void)unused;
    PyObject *list = PyList_New((Py_ssize_t)self->batch.column_count);
    if (list == NULL) return NULL;
    for (size_t c = 0; c < self->batch.column_count; c++) {
        const shardstore_column *col = &self->batch.columns[c];
        PyObject *shape = PyTuple_New((Py_ssize_t)col->ndim);
        if (shape == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        for (size_t d = 0; d < col->ndim; d++) {
            PyObject *extent = PyLong_FromLongLong((long long)col->shape[d]);
            if (extent == NULL) {
                Py_DECREF(shape);
                Py_DECREF(list);
                return NULL;
            }
            PyTuple_SET_ITEM(shape, (Py_ssize_t)d, extent);
        }
        PyObject *ext = extension_name(col->ext, col->ext_length);
        PyObject *dtype = col->dtype != NULL ? PyUnicode_FromString(col->dtype) : (Py_INCREF(Py_None), Py_None);
        PyObject *item = (ext != NULL && dtype != NULL) ? Py_BuildValue("(NINN)", ext, (unsigned)col->layout, dtype, shape)
                                                         : NULL;
        if (item == NULL) {
            if (ext == NULL || dtype == NULL) {
                Py_XDECREF(ext);
                Py_XDECREF(dtype);
                Py_DECREF(shape);
            }
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)c, item);
    }
    return list;
}

/* data(i): the column's data; writable for arrays (the batch's own copy), read-only for bytes. */
static PyObject *LoaderBatch_data(LoaderBatchObject *self, PyObject *argument) {
    const shardstore_column *col = batch_column(self, argument);
    if (col == NULL) return NULL;
    if (col->layout == SHARDSTORE_LAYOUT_BYTES) return member_view(self->lease, col->data, col->data_length);
    return owned_view(self->lease, col->data, col->data_length);
}

/* A bytes column's members as a sequence that makes each read-only memoryview (or None, for a
   sample without that member) when asked for it: a loop over them frees each view before the
   next is made, instead of a list keeping a batch's worth of new objects for the garbage
   collector to walk again and again. */
typedef struct {
    PyObject_HEAD
    LoaderBatchObject *batch;
    const shardstore_column *column;
} ColumnViewsObject;

static PyTypeObject ColumnViewsType;

static void ColumnViews_dealloc(ColumnViewsObject *self) {
    Py_CLEAR(self->batch);
    PyObject_Free(self);
}

static Py_ssize_t ColumnViews_length(ColumnViewsObject *self) { return (Py_ssize_t)self->batch->batch.count; }

static PyObject *ColumnViews_item(ColumnViewsObject *self, Py_ssize_t i) {
    if (i < 0 || i >= (Py_ssize_t)self->batch->batch.count) {
        PyErr_Format(PyExc_IndexError, "sample %zd out of range: the batch has %lld samples", i,
                     (long long)self->batch->batch.count);
        return NULL;
    }
    const shardstore_column *col = self->column;
    if (!col->present[i]) Py_RETURN_NONE;
    return member_view(self->batch->lease, (const char *)col->data + col->offsets[i],
                       (uint64_t)(col->offsets[i + 1] - col->offsets[i]));
}

static PyObject *ColumnViews_subscript(ColumnViewsObject *self, PyObject *item) {
    return sequence_subscript((PyObject *)self, item, (Py_ssize_t)self->batch->batch.count,
                              (ssizeargfunc)ColumnViews_item, "a batch column");
}

static PyObject *ColumnViews_iter(ColumnViewsObject *self) { return PySeqIter_New((PyObject *)self); }

static PyObject *ColumnViews_repr(ColumnViewsObject *self) {
    return PyUnicode_FromFormat("<shardstore batch column .%s: %lld members>", self->column->ext,
                                (long long)self->batch->batch.count);
}

static PySequenceMethods ColumnViews_as_sequence = {
    .sq_length = (lenfunc)ColumnViews_length,
    .sq_item = (ssizeargfunc)ColumnViews_item,
};

static PyMappingMethods ColumnViews_as_mapping = {
    .mp_length = (lenfunc)ColumnViews_length,
    .mp_subscript = (binaryfunc)ColumnViews_subscript,
};

static PyTypeObject ColumnViewsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.ColumnViews",
    .tp_doc = "A batch column's members as read-only memoryviews (None: no member), each made when asked for.",
    .tp_basicsize = sizeof(ColumnViewsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | SEQUENCE_FLAG,
    .tp_dealloc = (destructor)ColumnViews_dealloc,
    .tp_repr = (reprfunc)ColumnViews_repr,
    .tp_iter = (getiterfunc)ColumnViews_iter,
    .tp_as_sequence = &ColumnViews_as_sequence,
    .tp_as_mapping = &ColumnViews_as_mapping,
};

/* members(i): a bytes column's members, a sequence of read-only memoryviews or None. */
static PyObject *LoaderBatch_members(LoaderBatchObject *self, PyObject *argument) {
    const shardstore_column *col = batch_column(self, argument);
    if (col == NULL) return NULL;
    if (col->layout != SHARDSTORE_LAYOUT_BYTES) {
        PyErr_SetString(PyExc_TypeError, "members() is for bytes columns; arrays come from data()");
        return NULL;
    }
    ColumnViewsObject *views = PyObject_New(ColumnViewsObject, &ColumnViewsType);
    if (views == NULL) return NULL;
    Py_INCREF(self);
    views->batch = self;
    views->column = col;
    return (PyObject *)views;
}

/* offsets(i): a bytes column's count + 1 offsets as int64 bytes; present(i): one byte a sample. */
static PyObject *LoaderBatch_offsets(LoaderBatchObject *self, PyObject *argument) {
    const shardstore_column *col = batch_column(self, argument);
    if (col == NULL) return NULL;
    if (col->layout != SHARDSTORE_LAYOUT_BYTES) {
        PyErr_SetString(PyExc_TypeError, "offsets() is for bytes columns");
        return NULL;
    }
    return member_view(self->lease, col->offsets, (uint64_t)(self->batch.count + 1) * 8);
}

static PyObject *LoaderBatch_present(LoaderBatchObject *self, PyObject *argument) {
    const shardstore_column *col = batch_column(self, argument);
    if (col == NULL) return NULL;
    if (col->layout != SHARDSTORE_LAYOUT_BYTES) {
        PyErr_SetString(PyExc_TypeError, "present() is for bytes columns");
        return NULL;
    }
    return member_view(self->lease, col->present, (uint64_t)self->batch.count);
}

static PyObject *LoaderBatch_get_count(LoaderBatchObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLongLong((long long)self->batch.count);
}

static PyObject *LoaderBatch_get_number(LoaderBatchObject *self, void *unused) {
    (void)unused;
    return PyLong_FromLongLong((long long)self->batch.number);
}

static PyMethodDef LoaderBatch_methods[] = {
    {"keys", (PyCFunction)LoaderBatch_keys, METH_NOARGS, "Each sample's key (str, surrogateescape)."},
    {"positions", (PyCFunction)LoaderBatch_positions, METH_NOARGS, "The positions as int64 bytes (a memoryview)."},
    {"columns", (PyCFunction)LoaderBatch_columns, METH_NOARGS, "[(ext, layout, dtype, shape)] for each column."},
    {"data", (PyCFunction)LoaderBatch_data, METH_O, "Column i's data as a memoryview."},
    {"members", (PyCFunction)LoaderBatch_members, METH_O, "A bytes column's members: a sequence of memoryviews or None."},
    {"offsets", (PyCFunction)LoaderBatch_offsets, METH_O, "A bytes column's count + 1 offsets (int64 bytes)."},
    {"present", (PyCFunction)LoaderBatch_present, METH_O, "A bytes column's presence bytes (1: has a member)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef LoaderBatch_getset[] = {
    {"count", (getter)LoaderBatch_get_count, NULL, "The number of samples.", NULL},
    {"number", (getter)LoaderBatch_get_number, NULL, "The batch's number in the epoch.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LoaderBatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.LoaderBatch",
    .tp_doc = "One loader batch under its lease (wrapped by shardstore.CollatedBatch).",
    .tp_basicsize = sizeof(LoaderBatchObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)LoaderBatch_dealloc,
    .tp_methods = LoaderBatch_methods,
    .tp_getset = LoaderBatch_getset,
};

/* ---- Loader --------------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    shardstore_loader *loader;
    PyObject *dataset; /* the DatasetObject it reads (kept alive) */
    int busy;          /* a call in flight (the GIL released): one thread at a time */
} LoaderObject;

static PyObject *Loader_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    (void)args;
    (void)kwargs;
    LoaderObject *self = (LoaderObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->loader = NULL;
    self->dataset = NULL;
    self->busy = 0;
    return (PyObject *)self;
}

static int Loader_init(LoaderObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"dataset", "batch_size", "order",    "block_size", "window_blocks",
                               "seed",    "drop_last",  "threads",  "prefetch",   "tail",
                               "collate", "rank",       "world_size", NULL};
    PyObject *dataset = NULL;
    unsigned long long batch_size = 1, block_size = 1, window_blocks = 1, seed = 0;
    unsigned int order = 0, threads = 0, prefetch = 0, tail = 0, collate = 0;
    int drop_last = 0;
    long long rank = 0, world_size = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O!KIKKKpIIIILL", keywords, &DatasetType, &dataset, &batch_size,
                                     &order, &block_size, &window_blocks, &seed, &drop_last, &threads, &prefetch,
                                     &tail, &collate, &rank, &world_size)) {
        return -1;
    }
    if (self->loader != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this Loader is already open; create a new one instead");
        return -1;
    }
    DatasetObject *ds = (DatasetObject *)dataset;
    shardstore_loader_options options;
    shardstore_loader_options_init(&options);
    options.batch_size = batch_size;
    options.order = order;
    options.block_size = block_size;
    options.window_blocks = window_blocks;
    options.seed = seed;
    options.drop_last = drop_last;
    options.threads = threads;
    options.prefetch = prefetch;
    options.tail = tail;
    options.collate = collate;
    options.rank = rank;
    options.world_size = world_size;
    if (dataset_enter(ds) < 0) return -1;
    shardstore_dataset *handle = ds->dataset;
    shardstore_loader *loader = NULL;
    char *error = NULL;
    shardstore_status status;
    LIBRARY_CALL(status = shardstore_loader_open(handle, &options, &loader, &error));
    dataset_leave(ds);
    if (status != SHARDSTORE_OK) {
        raise_status(status, error);
        return -1;
    }
    self->loader = loader;
    Py_INCREF(dataset);
    self->dataset = dataset;
    return 0;
}

static void Loader_dealloc(LoaderObject *self) {
    if (self->loader != NULL) {
        shardstore_loader *loader = self->loader;
        self->loader = NULL;
        LIBRARY_CALL(shardstore_loader_close(loader));
    }
    Py_CLEAR(self->dataset);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Marks a call in flight; fails when the loader is closed or another thread is in it. */
static int loader_enter(LoaderObject *self) {
    if (self->loader == NULL) {
        PyObject *cls = closed_error != NULL ? closed_error : PyExc_ValueError;
        PyErr_SetString(cls, "the loader is closed; make a new shardstore.Loader");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "another thread is using this loader; a loader serves one thread at a time (make one per thread)");
        return -1;
    }
    self->busy = 1;
    return 0;
}

static void loader_leave(LoaderObject *self) { self->busy = 0; }

/* Runs `call` (a library call storing its status in `status`, its message in `error`) as a loader
   call: one thread at a time, the GIL released when `release` is 1; returns NULL with the error
   raised when it failed. */
#define LOADER_CALL(self, release, call)                 \
    do {                                                 \
        if (loader_enter(self) < 0) return NULL;         \
        shardstore_loader *loader = (self)->loader;      \
        char *error = NULL;                              \
        shardstore_status status;                        \
        if (release) {                                   \
            LIBRARY_CALL(status = (call));               \
        } else {                                         \
            status = (call);                             \
        }                                                \
        loader_leave(self);                              \
        if (status != SHARDSTORE_OK) {                   \
            raise_status(status, error);                 \
            return NULL;                                 \
        }                                                \
    } while (0)

static PyObject *Loader_next_batch(LoaderObject *self, PyObject *unused) {
    (void)unused;
    shardstore_batch batch;
    shardstore_lease *lease = NULL;
    LOADER_CALL(self, 1, shardstore_loader_next(loader, &batch, &lease, &error));
    if (lease == NULL) Py_RETURN_NONE;
    LeaseObject *owner = lease_wrap(lease);
    if (owner == NULL) return NULL;
    LoaderBatchObject *result = PyObject_New(LoaderBatchObject, &LoaderBatchType);
    if (result == NULL) {
        Py_DECREF(owner);
        return NULL;
    }
    result->lease = owner;
    result->batch = batch;
    return (PyObject *)result;
}

static PyObject *Loader_set_epoch(LoaderObject *self, PyObject *argument) {
    long long epoch = PyLong_AsLongLong(argument);
    if (epoch == -1 && PyErr_Occurred()) return NULL;
    LOADER_CALL(self, 1, shardstore_loader_set_epoch(loader, (int64_t)epoch, &error));
    Py_RETURN_NONE;
}

static PyObject *Loader_count(LoaderObject *self, PyObject *unused) {
    (void)unused;
    int64_t batches = 0;
    LOADER_CALL(self, 0, shardstore_loader_count(loader, &batches, &error));
    return PyLong_FromLongLong((long long)batches);
}

/* state() -> (seed, epoch, consumed, world_size) */
static PyObject *Loader_state(LoaderObject *self, PyObject *unused) {
    (void)unused;
    shardstore_loader_state state;
    LOADER_CALL(self, 0, shardstore_loader_state_get(loader, &state, &error));
    return Py_BuildValue("(KLLL)", (unsigned long long)state.seed, (long long)state.epoch, (long long)state.consumed,
                         (long long)state.world_size);
}

/* restore(seed, epoch, consumed, world_size) */
static PyObject *Loader_restore(LoaderObject *self, PyObject *args) {
    unsigned long long seed = 0;
    long long epoch = 0, consumed = 0, world_size = 1;
    if (!PyArg_ParseTuple(args, "KLLL", &seed, &epoch, &consumed, &world_size)) return NULL;
    shardstore_loader_state state = {.seed = seed, .epoch = epoch, .consumed = consumed, .world_size = world_size};
    LOADER_CALL(self, 1, shardstore_loader_restore(loader, &state, &error));
    Py_RETURN_NONE;
}

static PyObject *Loader_report(LoaderObject *self, PyObject *unused) {
    (void)unused;
    char *report = NULL;
    LOADER_CALL(self, 0, shardstore_loader_report(loader, &report, &error));
    PyObject *text = PyUnicode_FromString(report);
    shardstore_string_free(report);
    return text;
}

static PyObject *Loader_close(LoaderObject *self, PyObject *unused) {
    (void)unused;
    if (self->loader == NULL) Py_RETURN_NONE;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "another thread is using this loader; close it from that thread");
        return NULL;
    }
    shardstore_loader *loader = self->loader;
    self->loader = NULL;
    LIBRARY_CALL(shardstore_loader_close(loader));
    Py_RETURN_NONE;
}

static PyObject *Loader_get_closed(LoaderObject *self, void *unused) {
    (void)unused;
    return PyBool_FromLong(self->loader == NULL);
}

static PyMethodDef Loader_methods[] = {
    {"next_batch", (PyCFunction)Loader_next_batch, METH_NOARGS, "The next LoaderBatch, or None at the epoch's end."},
    {"set_epoch", (PyCFunction)Loader_set_epoch, METH_O, "Starts an epoch from its beginning."},
    {"count", (PyCFunction)Loader_count, METH_NOARGS, "The batches of the current epoch."},
    {"state", (PyCFunction)Loader_state, METH_NOARGS, "(seed, epoch, consumed, world_size)."},
    {"restore", (PyCFunction)Loader_restore, METH_VARARGS, "restore(seed, epoch, consumed, world_size)."},
    {"report", (PyCFunction)Loader_report, METH_NOARGS, "What the loader chose (threads, prefetch)."},
    {"close", (PyCFunction)Loader_close, METH_NOARGS, "Stops the reader threads; batches handed out stay valid."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Loader_getset[] = {
    {"closed", (getter)Loader_get_closed, NULL, "True once close() was called.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject LoaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shardstore._native.Loader",
    .tp_doc = "The library's loader over a Dataset (wrapped by shardstore.Loader).",
    .tp_basicsize = sizeof(LoaderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_new = Loader_new,
    .tp_init = (initproc)Loader_init,
    .tp_dealloc = (destructor)Loader_dealloc,
    .tp_methods = Loader_methods,
    .tp_getset = Loader_getset,
};

/* ---- Module --------------------------------------------------------------------------------- */

static PyObject *module_abi_version(PyObject *module, PyObject *unused) {
    return PyLong_FromUnsignedLong((unsigned long)shardstore_abi_version());
}

static PyObject *module_version(PyObject *module, PyObject *unused) {
    return optional_string(shardstore_version());
}

static PyMethodDef module_methods[] = {
    {"abi_version", module_abi_version, METH_NOARGS, "The ABI version of the loaded libShardStoreC."},
    {"version", module_version, METH_NOARGS, "The version of the loaded libShardStoreC."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "shardstore._native",
    .m_doc = "The CPython extension over libShardStoreC; use the shardstore package instead.",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    /* A newer library reads an older caller's structs (they only grow at their end). */
    if (shardstore_abi_version() < SHARDSTORE_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "libShardStoreC has ABI version %u but shardstore._native was built for %d; "
                     "reinstall the shardstore package",
                     (unsigned)shardstore_abi_version(), SHARDSTORE_ABI_VERSION);
        return NULL;
    }
    PyObject *errors = PyImport_ImportModule("shardstore._errors");
    if (errors == NULL) return NULL;
    error_by_code = PyObject_GetAttrString(errors, "_BY_CODE");
    error_base = PyObject_GetAttrString(errors, "Error");
    closed_error = PyObject_GetAttrString(errors, "DatasetClosedError");
    Py_DECREF(errors);
    if (error_by_code == NULL || error_base == NULL || closed_error == NULL) return NULL;
    if (!PyDict_Check(error_by_code)) {
        PyErr_SetString(PyExc_ImportError, "shardstore._errors._BY_CODE must be a dict");
        return NULL;
    }
    clone_views = views_check();
    str_key = PyUnicode_InternFromString("__key__");
    str_index = PyUnicode_InternFromString("__index__");
    if (str_key == NULL || str_index == NULL) return NULL;
    if (PyType_Ready(&LeaseType) < 0 || PyType_Ready(&BatchType) < 0 || PyType_Ready(&MemberViewsType) < 0 ||
        PyType_Ready(&LoaderBatchType) < 0 || PyType_Ready(&ColumnViewsType) < 0 || PyType_Ready(&LoaderType) < 0 || PyType_Ready(&DatasetType) < 0) {
        return NULL;
    }
    if (pthread_atfork(NULL, NULL, after_fork_in_child) != 0) {
        PyErr_SetString(PyExc_ImportError, "pthread_atfork failed; cannot track forks");
        return NULL;
    }
    PyObject *module = PyModule_Create(&native_module);
    if (module == NULL) return NULL;
    Py_INCREF(&DatasetType);
    Py_INCREF(&LeaseType);
    Py_INCREF(&BatchType);
    Py_INCREF(&MemberViewsType);
    Py_INCREF(&LoaderBatchType);
    Py_INCREF(&ColumnViewsType);
    Py_INCREF(&LoaderType);
    if (PyModule_AddObject(module, "Dataset", (PyObject *)&DatasetType) < 0 ||
        PyModule_AddObject(module, "Lease", (PyObject *)&LeaseType) < 0 ||
        PyModule_AddObject(module, "Batch", (PyObject *)&BatchType) < 0 ||
        PyModule_AddObject(module, "MemberViews", (PyObject *)&MemberViewsType) < 0 ||
        PyModule_AddObject(module, "LoaderBatch", (PyObject *)&LoaderBatchType) < 0 ||
        PyModule_AddObject(module, "ColumnViews", (PyObject *)&ColumnViewsType) < 0 ||
        PyModule_AddObject(module, "Loader", (PyObject *)&LoaderType) < 0 ||
        PyModule_AddIntConstant(module, "ABI_VERSION", SHARDSTORE_ABI_VERSION) < 0 ||
        PyModule_AddIntConstant(module, "CLONED_VIEWS", clone_views) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
