/* The two loops that run once per binlog event, compiled (binreplay._hotpath).
 *
 * Profiles of a replay (py-spy, benchmarks/RESULTS.md) showed Python time per event, not per
 * transaction, as the bottleneck: framing and checksumming every event, grouping it, then slicing
 * and merging it again into a BINLOG statement. These two functions do that work for the common
 * case only. Neither raises on bad input: when anything is not exactly the common case they return
 * None and the pure-Python code, which stays the single definition of every rule and every error
 * message, handles it. Without this module (no compiler at install) binreplay runs the same, slower.
 *
 *   frame_row_transaction   one MariaDB row transaction (GTID, TABLE_MAP / ROWS / informational
 *                           events, XID) framed and checked as binlog/file.py and
 *                           source/assembler.py check each event (source/assembler.py: the lane)
 *   merged_rows_statement   the BINLOG statement of a batch of row transactions, their row events
 *                           merged (apply/encoders.py: rows_statement)
 *
 * Event types are never hard-coded here: the callers pass tables indexed by type code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN 19
#define MAX_EVENT_SIZE (1u << 30)
#define CRC_RESIDUE 0x2144DF1Cu   /* CRC-32 of any bytes followed by their own CRC-32 */
#define STMT_END_F 0x1
#define MAX_MAPS 256               /* table maps in one transaction followed here; more: Python */

/* What each event type is to the lane (the `kinds` table). */
enum { K_OTHER = 0, K_ROWS = 1, K_MAP = 2, K_INFO = 3, K_XID = 4, K_GTID = 5 };
/* ... and to the statement builder. */
enum { S_SKIP = 0, S_ROWS = 1, S_MAP = 2, S_UNMERGEABLE = 3 };

static uint32_t crc_tables[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tables[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int j = 1; j < 8; j++)
            crc_tables[j][i] = (crc_tables[j - 1][i] >> 8) ^ crc_tables[0][crc_tables[j - 1][i] & 0xff];
}

static inline uint32_t u32le(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t uint_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* zlib's crc32 (slicing by 8). */
static uint32_t crc32_of(const uint8_t *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n && ((uintptr_t)p & 7)) {
        c = crc_tables[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = c ^ u32le(p), hi = u32le(p + 4);
        c = crc_tables[7][lo & 0xff] ^ crc_tables[6][(lo >> 8) & 0xff] ^ crc_tables[5][(lo >> 16) & 0xff] ^
            crc_tables[4][lo >> 24] ^ crc_tables[3][hi & 0xff] ^ crc_tables[2][(hi >> 8) & 0xff] ^
            crc_tables[1][(hi >> 16) & 0xff] ^ crc_tables[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = crc_tables[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* (t, start, end), `start` the previous span's end object when there is one (they are equal). */
static PyObject *span(int t, PyObject **start, long long end) {
    PyObject *s = PyTuple_New(3);
    PyObject *e = PyLong_FromLongLong(end);
    if (s == NULL || e == NULL) {
        Py_XDECREF(s);
        Py_XDECREF(e);
        return NULL;
    }
    PyTuple_SET_ITEM(s, 0, PyLong_FromLong(t));   /* a small int: cached, never fails */
    PyTuple_SET_ITEM(s, 1, *start);               /* the reference moves into the tuple */
    PyTuple_SET_ITEM(s, 2, e);
    *start = Py_NewRef(e);
    return s;
}

/* frame_row_transaction(buf, pos, size, check_crc, verified_to, kinds, id_ends, map_id_len,
 *                       crc_len, gtid_refused_flags, gtid_commit_id_flag)
 *   -> (end, spans, table_map_indexes, rows, (domain_id, server_id, seq_no, flags, commit_id)) | None
 *
 * From a MariaDB GTID event at `pos`, every event as BinlogFile.scan accepts it (its header's end
 * position where it really ends, or 0 after the GTID event as MariaDB 11.4+ writes it; within the
 * file; at least a header and at most 1 GiB long; its CRC32 when check_crc and it ends after
 * verified_to), and as the assembler's inline path accepts it: rows events naming a table id a TABLE_MAP of the transaction mapped,
 * long enough for their flags; informational events never among a statement's rows; an XID
 * with its body, not inside a statement. Anything else: None. The last item is the GTID event's
 * fields (commit_id None without FL_GROUP_COMMIT_ID), as source/event_bodies.mariadb_gtid reads them. */
static PyObject *frame_row_transaction(PyObject *self, PyObject *args) {
    Py_buffer buf, kinds_buf, ids_buf;
    long long pos, size, verified_to;
    int check_crc, map_id_len, crc_len;
    unsigned int refused_flags, commit_id_flag;
    if (!PyArg_ParseTuple(args, "y*LLpLy*y*iiII", &buf, &pos, &size, &check_crc, &verified_to, &kinds_buf,
                          &ids_buf, &map_id_len, &crc_len, &refused_flags, &commit_id_flag))
        return NULL;
    PyObject *result = NULL, *spans = NULL, *maps = NULL, *start = NULL;   /* start: the next span's */
    if (kinds_buf.len < 256 || ids_buf.len < 256 || size < 0 || size > buf.len || pos < 4 || map_id_len < 1 ||
        map_id_len > 8 || crc_len < 0) {
        PyErr_SetString(PyExc_ValueError, "frame_row_transaction: bad arguments");
        goto done;
    }
    const uint8_t *data = buf.buf, *kinds = kinds_buf.buf, *id_ends = ids_buf.buf;
    uint64_t mapped[MAX_MAPS];
    int n_mapped = 0, in_statement = 0, first = 1, has_commit_id = 0;
    uint64_t seq_no = 0, commit_id = 0;
    uint32_t domain_id = 0, server_id = 0;
    unsigned int gtid_flags = 0;
    long long rows = 0;
    start = PyLong_FromLongLong(pos);
    spans = PyList_New(0);
    maps = PyList_New(0);
    if (start == NULL || spans == NULL || maps == NULL)
        goto done;
    for (;;) {
        if (pos > size - HEADER_LEN)   /* (not pos + HEADER_LEN: pos comes from the caller) */
            goto bail;
        const uint8_t *p = data + pos;
        int t = p[4];
        uint32_t ev_size = u32le(p + 9), log_pos = u32le(p + 13);
        long long end = pos + ev_size;
        /* log_pos 0 after the GTID: MariaDB 11.4+ inside transactions (file.py accepts it there too) */
        if (ev_size < HEADER_LEN || ev_size > MAX_EVENT_SIZE || end > size ||
            ((long long)log_pos != end && (first || log_pos != 0)))
            goto bail;
        int kind = kinds[t];
        if (first != (kind == K_GTID))
            goto bail;
        if (check_crc && end > verified_to && crc32_of(p, ev_size) != CRC_RESIDUE)
            goto bail;
        long long body_end = end - crc_len;
        if (kind == K_GTID) {
            /* sequence number (8), domain id (4), flags (1)[, commit id (8)] */
            if (pos + HEADER_LEN + 13 > body_end)
                goto bail;
            unsigned int flags = p[HEADER_LEN + 12];
            if (flags & refused_flags || (flags & commit_id_flag && pos + HEADER_LEN + 21 > body_end))
                goto bail;
            seq_no = uint_le(p + HEADER_LEN, 8);
            domain_id = u32le(p + HEADER_LEN + 8);
            server_id = u32le(p + 5);
            gtid_flags = flags;
            has_commit_id = (flags & commit_id_flag) != 0;
            if (has_commit_id)
                commit_id = uint_le(p + HEADER_LEN + 13, 8);
            first = 0;
        } else if (kind == K_ROWS) {
            int id_end = id_ends[t];
            if (id_end == 0 || pos + id_end + 2 > body_end)
                goto bail;
            uint64_t table_id = uint_le(p + HEADER_LEN, id_end - HEADER_LEN);
            int found = 0;
            for (int i = n_mapped - 1; i >= 0 && !found; i--)
                found = mapped[i] == table_id;
            if (!found)
                goto bail;
            in_statement = !(p[id_end] & STMT_END_F);
            rows++;
        } else if (kind == K_MAP) {
            if (n_mapped == MAX_MAPS || pos + HEADER_LEN + map_id_len > body_end)
                goto bail;
            mapped[n_mapped++] = uint_le(p + HEADER_LEN, map_id_len);
            in_statement = 1;
            PyObject *index = PyLong_FromSsize_t(PyList_GET_SIZE(spans));
            if (index == NULL || PyList_Append(maps, index) < 0) {
                Py_XDECREF(index);
                goto done;
            }
            Py_DECREF(index);
        } else if (kind == K_INFO) {
            if (in_statement)
                goto bail;
        } else if (kind == K_XID) {
            if (in_statement || end - pos - crc_len < HEADER_LEN + 8)
                goto bail;
        } else {
            goto bail;
        }
        PyObject *s = span(t, &start, end);
        if (s == NULL || PyList_Append(spans, s) < 0) {
            Py_XDECREF(s);
            goto done;
        }
        Py_DECREF(s);
        pos = end;
        if (kind == K_XID) {
            PyObject *cid = has_commit_id ? PyLong_FromUnsignedLongLong(commit_id) : Py_NewRef(Py_None);
            if (cid == NULL)
                goto done;
            result = Py_BuildValue("(LOOL(kkKIN))", end, spans, maps, rows, (unsigned long)domain_id,
                                   (unsigned long)server_id, (unsigned long long)seq_no, gtid_flags, cid);
            goto done;
        }
    }
bail:
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(start);
    Py_XDECREF(spans);
    Py_XDECREF(maps);
    PyBuffer_Release(&buf);
    PyBuffer_Release(&kinds_buf);
    PyBuffer_Release(&ids_buf);
    return result;
}

/* ---- merged_rows_statement ----------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    Py_ssize_t len;
    uint64_t id;
} Piece;

typedef struct {
    Piece *items;
    Py_ssize_t n, cap;
} Pieces;

static int pieces_add(Pieces *v, const uint8_t *p, Py_ssize_t len, uint64_t id) {
    if (v->n == v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 256;
        Piece *items = PyMem_Realloc(v->items, (size_t)cap * sizeof(Piece));
        if (items == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        v->items = items;
        v->cap = cap;
    }
    v->items[v->n++] = (Piece){p, len, id};
    return 0;
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static uint16_t b64_pairs[4096];   /* 12 bits -> their two characters (one lookup per half group) */

static void b64_init(void) {
    for (int i = 0; i < 4096; i++) {
        char pair[2] = {B64[i >> 6], B64[i & 63]};
        memcpy(&b64_pairs[i], pair, 2);
    }
}

/* Standard base64 with padding, as base64.b64encode. */
static char *base64_into(char *out, const uint8_t *in, Py_ssize_t n) {
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        memcpy(out, &b64_pairs[v >> 12], 2);
        memcpy(out + 2, &b64_pairs[v & 0xfff], 2);
        out += 4;
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = '=';
        *out++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
        *out++ = '=';
    }
    return out;
}

/* merged_rows_statement(transactions, kinds, id_len, crc_len) -> bytes | None
 *
 * `BINLOG '<base64>'` of the row events of `transactions` (objects with `data` (bytes), `base`
 * and `spans`), merged as encoders._merged merges them: every TABLE_MAP once, in front, then the
 * rows events in order, the end-of-statement flag cleared on all but the last. None when they
 * cannot be merged (a table id mapped two ways, an event kinds[] marks unmergeable), when they
 * hold no rows events, or when anything is not as expected: the caller's Python path decides. */
static PyObject *merged_rows_statement(PyObject *self, PyObject *args) {
    PyObject *trxs;
    Py_buffer kinds_buf;
    int id_len, crc_len;
    if (!PyArg_ParseTuple(args, "O!y*ii", &PyList_Type, &trxs, &kinds_buf, &id_len, &crc_len))
        return NULL;
    PyObject *result = NULL, *cur_spans = NULL;
    Pieces maps = {0}, rows = {0};
    uint8_t *blob = NULL;
    PyObject *held = PyList_New(0);   /* every `data` read: alive while the GIL is released */
    const uint8_t *kinds = kinds_buf.buf;
    if (held == NULL)
        goto done;
    if (kinds_buf.len < 256 || id_len < 1 || id_len > 8 || crc_len < 0) {
        PyErr_SetString(PyExc_ValueError, "merged_rows_statement: bad arguments");
        goto done;
    }
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(trxs); i++) {
        PyObject *trx = Py_NewRef(PyList_GET_ITEM(trxs, i));   /* getattr may run code that drops it */
        PyObject *data = PyObject_GetAttrString(trx, "data");
        PyObject *base_obj = data ? PyObject_GetAttrString(trx, "base") : NULL;
        PyObject *spans = base_obj ? PyObject_GetAttrString(trx, "spans") : NULL;
        long long base = base_obj ? PyLong_AsLongLong(base_obj) : -1;
        int held_ok = data != NULL && PyList_Append(held, data) == 0;
        Py_DECREF(trx);
        Py_XDECREF(data);   /* (alive in `held`) */
        Py_XDECREF(base_obj);
        if (spans == NULL || !held_ok || PyErr_Occurred()) {
            Py_XDECREF(spans);
            goto done;
        }
        Py_XSETREF(cur_spans, spans);   /* ours until the next transaction's, or `done` */
        if (!PyBytes_Check(data) || !PyList_Check(spans) || base < 0)
            goto none;
        const uint8_t *bytes = (const uint8_t *)PyBytes_AS_STRING(data);
        Py_ssize_t nbytes = PyBytes_GET_SIZE(data);
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(spans); j++) {
            PyObject *s = PyList_GET_ITEM(spans, j);
            if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != 3 || !PyLong_CheckExact(PyTuple_GET_ITEM(s, 0)) ||
                !PyLong_CheckExact(PyTuple_GET_ITEM(s, 1)) || !PyLong_CheckExact(PyTuple_GET_ITEM(s, 2)))
                goto none;   /* (exact ints: reading them runs no Python code that could free `s`) */
            long t = PyLong_AsLong(PyTuple_GET_ITEM(s, 0));
            if (t < 0 || t > 255) {
                PyErr_Clear();   /* (an int past a long) */
                goto none;
            }
            int kind = kinds[t];
            if (kind == S_SKIP)
                continue;
            if (kind == S_UNMERGEABLE)
                goto none;
            long long start = PyLong_AsLongLong(PyTuple_GET_ITEM(s, 1));
            long long end = PyLong_AsLongLong(PyTuple_GET_ITEM(s, 2));
            if (PyErr_Occurred()) {
                PyErr_Clear();   /* out of range: the Python path decides */
                goto none;
            }
            /* base >= 0: no overflow below */
            if (start < base || end < start || end - base > nbytes || end - start < HEADER_LEN + id_len + crc_len + 1)
                goto none;
            start -= base;
            end -= base;
            const uint8_t *p = bytes + start;
            Py_ssize_t len = (Py_ssize_t)(end - start);
            uint64_t id = uint_le(p + HEADER_LEN, id_len);
            if (kind == S_MAP) {
                Py_ssize_t k = 0;
                while (k < maps.n && maps.items[k].id != id)
                    k++;
                if (k < maps.n) {   /* mapped before: the same table and layout, or no merging */
                    const Piece *seen = &maps.items[k];
                    if (seen->len != len ||
                        memcmp(seen->p + HEADER_LEN, p + HEADER_LEN, (size_t)(len - HEADER_LEN - crc_len)))
                        goto none;
                    continue;
                }
                if (pieces_add(&maps, p, len, id) < 0)
                    goto done;
            } else if (pieces_add(&rows, p, len, id) < 0) {
                goto done;
            }
            total += len;
        }
    }
    if (rows.n == 0)
        goto none;
    static const char head[] = "BINLOG '";
    Py_ssize_t encoded = (total + 2) / 3 * 4;
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)sizeof(head) - 1 + encoded + 1);
    blob = malloc((size_t)total);   /* (not PyMem_Malloc: used without the GIL) */
    if (result == NULL || blob == NULL) {
        Py_CLEAR(result);
        if (blob == NULL)
            PyErr_NoMemory();
        goto done;
    }
    char *out = PyBytes_AS_STRING(result);
    /* Copying and encoding megabytes touches no Python object: other threads (the workers
     * sending earlier batches) run meanwhile. */
    Py_BEGIN_ALLOW_THREADS
    uint8_t *at = blob;
    for (Py_ssize_t k = 0; k < maps.n; k++) {
        memcpy(at, maps.items[k].p, (size_t)maps.items[k].len);
        at += maps.items[k].len;
    }
    for (Py_ssize_t k = 0; k < rows.n; k++) {
        memcpy(at, rows.items[k].p, (size_t)rows.items[k].len);
        at[HEADER_LEN + id_len] &= (uint8_t)~STMT_END_F;
        if (k == rows.n - 1)
            at[HEADER_LEN + id_len] |= STMT_END_F;
        at += rows.items[k].len;
    }
    memcpy(out, head, sizeof(head) - 1);
    out = base64_into(out + sizeof(head) - 1, blob, total);
    *out = '\'';
    Py_END_ALLOW_THREADS
    goto done;
none:
    result = Py_NewRef(Py_None);
done:
    free(blob);
    Py_XDECREF(cur_spans);
    Py_XDECREF(held);
    PyMem_Free(maps.items);
    PyMem_Free(rows.items);
    PyBuffer_Release(&kinds_buf);
    return result;
}

/* pack_spans(spans) -> bytes: the (t, start, end) triples as native int64s (source/validated.py). */
static PyObject *pack_spans(PyObject *self, PyObject *spans) {
    if (!PyList_Check(spans)) {
        PyErr_SetString(PyExc_TypeError, "pack_spans: a list of (type, start, end)");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(spans);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * 3 * (Py_ssize_t)sizeof(int64_t));
    if (out == NULL)
        return NULL;
    int64_t *v = (int64_t *)PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyList_GET_ITEM(spans, i);
        if (!PyTuple_Check(s) || PyTuple_GET_SIZE(s) != 3) {
            Py_DECREF(out);
            PyErr_SetString(PyExc_TypeError, "pack_spans: a list of (type, start, end)");
            return NULL;
        }
        for (int k = 0; k < 3; k++) {
            PyObject *x = PyTuple_GET_ITEM(s, k);
            if (!PyLong_CheckExact(x)) {   /* (an __index__ could change `spans` under this loop) */
                Py_DECREF(out);
                PyErr_SetString(PyExc_TypeError, "pack_spans: a list of (type, start, end)");
                return NULL;
            }
            v[3 * i + k] = PyLong_AsLongLong(x);
            if (v[3 * i + k] == -1 && PyErr_Occurred()) {
                Py_DECREF(out);
                return NULL;
            }
        }
    }
    return out;
}

/* unpack_spans(bytes) -> list of (t, start, end): pack_spans undone. */
static PyObject *unpack_spans(PyObject *self, PyObject *packed) {
    if (!PyBytes_Check(packed) || PyBytes_GET_SIZE(packed) % (3 * sizeof(int64_t))) {
        PyErr_SetString(PyExc_TypeError, "unpack_spans: bytes from pack_spans");
        return NULL;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(packed) / (3 * (Py_ssize_t)sizeof(int64_t));
    const int64_t *v = (const int64_t *)PyBytes_AS_STRING(packed);
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    PyObject *start = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* events follow each other: a span's start is the previous one's end (share the object) */
        if (i == 0 || v[3 * i + 1] != v[3 * i - 1]) {
            Py_XDECREF(start);
            start = PyLong_FromLongLong(v[3 * i + 1]);
            if (start == NULL)
                goto fail;
        }
        PyObject *s = PyTuple_New(3), *e = PyLong_FromLongLong(v[3 * i + 2]), *t = PyLong_FromLongLong(v[3 * i]);
        if (s == NULL || e == NULL || t == NULL) {
            Py_XDECREF(s);
            Py_XDECREF(e);
            Py_XDECREF(t);
            goto fail;
        }
        PyTuple_SET_ITEM(s, 0, t);
        PyTuple_SET_ITEM(s, 1, start);
        PyTuple_SET_ITEM(s, 2, e);
        start = Py_NewRef(e);
        PyList_SET_ITEM(out, i, s);
    }
    Py_XDECREF(start);
    return out;
fail:
    Py_XDECREF(start);
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"pack_spans", pack_spans, METH_O, "A transaction's spans packed as int64 triples."},
    {"unpack_spans", unpack_spans, METH_O, "pack_spans undone."},
    {"frame_row_transaction", frame_row_transaction, METH_VARARGS,
     "One MariaDB row transaction framed and checked in one step, or None (see the module source)."},
    {"merged_rows_statement", merged_rows_statement, METH_VARARGS,
     "The merged BINLOG statement of a batch of row transactions, or None (see the module source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "binreplay._hotpath", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__hotpath(void) {
    crc_init();
    b64_init();
    return PyModule_Create(&module);
}
